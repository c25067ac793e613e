// The admin port: liveness, readiness, Prometheus metrics, a JSON view of every pool and
// backend, and draining a backend. Bound to loopback by default: it has no authentication.
import type { Server } from 'node:net';
import { createEndpointServer, type EndpointRequest, type EndpointResponse } from '../http/endpoint.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { backendStatus, poolsStatus } from './status.ts';

export interface AdminState {
  /** The pools as they are now (a reload replaces them). */
  pools(): ReadonlyMap<string, BackendPool>;
  /** False once shutdown began, so load balancers in front stop sending traffic. */
  ready(): boolean;
  /** The proxy's clock, in ms. */
  now(): number;
  /** Served on `GET /metrics` (404 without it). */
  metrics?: Metrics;
}

const backendPath = /^\/backends\/([^/]+)\/([^/]+?)(?:\/(drain|undrain))?$/;

export function createAdminServer(state: AdminState): Server {
  return createEndpointServer((request) => {
    const { head, path } = request;
    const backendMatch = backendPath.exec(path);
    if (backendMatch) return backendRoute(state, request, backendMatch);
    if (head.method !== 'GET' && head.method !== 'HEAD') return text(405, 'method not allowed');
    switch (path) {
      case '/healthz':
        return text(200, 'ok');
      case '/readyz':
        return state.ready() ? text(200, 'ready') : text(503, 'shutting down');
      case '/metrics':
        return state.metrics ? metrics(state.metrics) : text(404, 'not found');
      case '/status':
        return json(200, { ready: state.ready(), pools: poolsStatus(state.pools(), state.now()) });
      default:
        return text(404, 'not found');
    }
  });
}

/** `GET /backends/POOL/NAME`, `POST /backends/POOL/NAME/drain`, `POST …/undrain` (names URL-encoded). */
function backendRoute(state: AdminState, request: EndpointRequest, match: RegExpExecArray): EndpointResponse {
  const [, poolName = '', backendName = '', action] = match;
  const pool = state.pools().get(decodeURIComponent(poolName));
  const backend = pool?.backends.find((candidate) => candidate.name === decodeURIComponent(backendName));
  if (!backend) return text(404, 'no such backend');
  const now = state.now();
  if (action === undefined) {
    if (request.head.method !== 'GET' && request.head.method !== 'HEAD')
      return text(405, 'method not allowed');
    return json(200, backendStatus(backend, now));
  }
  if (request.head.method !== 'POST') return text(405, 'use POST');
  if (action === 'drain') {
    backend.health.drain(now);
    // No new requests will come; idle connections have nothing left to do.
    backend.connections.closeIdle();
  } else backend.health.undrain(now);
  return json(202, backendStatus(backend, now));
}

function text(status: number, body: string): EndpointResponse {
  return { status, body: `${body}\n` };
}

function json(status: number, body: unknown): EndpointResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: `${JSON.stringify(body)}\n` };
}

async function metrics(registry: Metrics): Promise<EndpointResponse> {
  const { contentType, body } = await registry.render();
  return { status: 200, headers: { 'content-type': contentType }, body };
}
