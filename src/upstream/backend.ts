// One backend server of a pool and its live state.
import type { Candidate } from '../balance/selector.ts';
import type { ServerConfig } from '../config/types.ts';
import { ConnectionPool, type ConnectionPoolOptions } from './connection-pool.ts';

export class Backend implements Candidate {
  readonly name: string;
  readonly pool: string;
  /** The IP (or name) and port Sluice connects to. */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly connections: ConnectionPool;
  inFlight = 0;
  /** Whether the selector may send new requests here (health checks will drive this). */
  routable = true;

  constructor(
    pool: string,
    name: string,
    host: string,
    port: number,
    server: ServerConfig,
    options: ConnectionPoolOptions,
  ) {
    this.pool = pool;
    this.name = name;
    this.host = host;
    this.port = port;
    this.weight = server.weight;
    this.connections = new ConnectionPool(this, options);
  }

  get effectiveWeight(): number {
    return this.weight;
  }

  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }
}
