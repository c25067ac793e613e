// The admin port: liveness, readiness and a JSON view of every pool and backend.
import type { Server } from 'node:net';
import { createEndpointServer, type EndpointResponse } from '../http/endpoint.ts';
import type { BackendPool } from '../upstream/pool.ts';

export interface AdminState {
  pools: ReadonlyMap<string, BackendPool>;
  /** False once shutdown began, so load balancers in front stop sending traffic. */
  ready(): boolean;
}

export function createAdminServer(state: AdminState): Server {
  return createEndpointServer(({ head, path }) => {
    if (head.method !== 'GET' && head.method !== 'HEAD') return text(405, 'method not allowed');
    switch (path) {
      case '/healthz':
        return text(200, 'ok');
      case '/readyz':
        return state.ready() ? text(200, 'ready') : text(503, 'shutting down');
      case '/status':
        return {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(status(state)),
        };
      default:
        return text(404, 'not found');
    }
  });
}

function text(status: number, body: string): EndpointResponse {
  return { status, body: `${body}\n` };
}

function status(state: AdminState): unknown {
  return {
    ready: state.ready(),
    pools: [...state.pools.values()].map((pool) => ({
      name: pool.name,
      balance: pool.config.balance,
      panic: pool.panic,
      backends: pool.backends.map((backend) => ({
        name: backend.name,
        address: backend.address,
        weight: backend.weight,
        routable: backend.routable,
        inFlight: backend.inFlight,
        connections: { open: backend.connections.open, idle: backend.connections.idleCount },
      })),
    })),
  };
}
