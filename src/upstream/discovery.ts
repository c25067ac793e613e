// Turns configured server addresses into concrete backends: an IP stays one backend, a DNS
// name becomes one backend per address it resolves to.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ServerConfig } from '../config/types.ts';

export interface ResolvedServer {
  server: ServerConfig;
  /** Stable label: the server's name, plus the resolved IP for DNS names. */
  name: string;
  host: string;
  port: number;
}

export type Resolver = (hostname: string) => Promise<string[]>;

const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, order: 'ipv4first' })).map((entry) => entry.address);

export async function resolveServers(
  servers: readonly ServerConfig[],
  resolve: Resolver = systemResolver,
): Promise<ResolvedServer[]> {
  const resolved = await Promise.all(
    servers.map(async (server): Promise<ResolvedServer[]> => {
      if (isIP(server.host)) return [{ server, name: server.name, host: server.host, port: server.port }];
      const addresses = [...new Set(await resolve(server.host))];
      return addresses.map((address) => ({
        server,
        name: `${server.name}/${address}`,
        host: address,
        port: server.port,
      }));
    }),
  );
  return resolved.flat();
}
