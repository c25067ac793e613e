// The admin port: liveness, readiness, Prometheus metrics, a JSON view of every pool and
// backend, draining a backend, and purging the cache. Bound to loopback by default; who may use
// it is decided in guard.ts (an optional bearer token, no state changes from browsers).
import type { Server } from 'node:net';
import { createEndpointServer, type EndpointRequest, type EndpointResponse } from '../http/endpoint.ts';
import type { RenderedMetrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { adminRefusal, probePaths } from './guard.ts';
import { backendStatus, type LoadView, localLoad, poolsStatus } from './status.ts';

export interface AdminState {
  /** The pools as they are now (a reload replaces them). */
  pools(): ReadonlyMap<string, BackendPool>;
  /** False once shutdown began, so load balancers in front stop sending traffic. */
  ready(): boolean;
  /** The proxy's clock, in ms. */
  now(): number;
  /** Served on `GET /metrics` (404 without it). */
  metrics?: { render(): Promise<RenderedMetrics> };
  /** The response cache, purged by `POST /cache/purge` (404 without it). */
  cache?: CachePurger;
  /** Set in a cluster's supervisor: the traffic is in its workers. */
  cluster?: ClusterAdmin;
  /** `adminToken` of the config: the bearer token the admin port asks for, if any. */
  token?: () => string | undefined;
  /** A refused request, by reason (401/403). */
  onRefused?: (reason: string) => void;
  /** A bug in a handler (the request got 500; the process goes on). */
  onError?: (error: unknown) => void;
  /**
   * A connection closed or refused at the admin port's limit: `admin_idle_evicted`,
   * `admin_max_connections` (a probe answered over the limit is neither).
   */
  onShed?: (reason: string) => void;
}

/** What the admin port needs of the cache: purges by URL and by URL prefix, optionally per pool. */
export interface CachePurger {
  purgeUrl(url: string, pool?: string): number | Promise<number>;
  purgePrefix(prefix: string, pool?: string): number | Promise<number>;
}

/** A supervisor's side of the admin port (src/cluster/). */
export interface ClusterAdmin {
  /**
   * Asks the workers once: backends' in-flight requests and connections and pools' panic summed
   * over them, and more of `/status` (each worker, the spare).
   */
  status(): Promise<{ load: LoadView; more: Record<string, unknown> }>;
  /** `POST /workers/restart`: starts a rolling restart, or says why not. */
  restart(): { started: boolean; message: string };
}

/**
 * Admin connections at once, within the descriptors kept back from client connections
 * (proxy/descriptors.ts): a flood of them cannot take the descriptors the proxy and its health
 * checks need. Prometheus and probes hold one or two each; an idle one makes room for a newcomer,
 * and a probe is answered over the limit (on a connection that then closes).
 */
const maxAdminConnections = 16;

const backendPath = /^\/backends\/([^/]+)\/([^/]+?)(?:\/(drain|undrain))?$/;

export function createAdminServer(state: AdminState): Server {
  return createEndpointServer(
    (request) => {
      const { head, path } = request;
      const refusal = adminRefusal(head, path, state.token?.());
      if (refusal) {
        state.onRefused?.(refusal.reason);
        return {
          ...text(refusal.status, refusal.message),
          headers: refusal.status === 401 ? { 'www-authenticate': 'Bearer' } : {},
        };
      }
      const backendMatch = backendPath.exec(path);
      if (backendMatch) return backendRoute(state, request, backendMatch);
      if (path === '/cache/purge') return purgeRoute(state, request);
      if (path === '/workers/restart') return restartRoute(state, request);
      if (head.method !== 'GET' && head.method !== 'HEAD') return text(405, 'method not allowed');
      switch (path) {
        case '/healthz':
          return text(200, 'ok');
        case '/readyz':
          return state.ready() ? text(200, 'ready') : text(503, 'shutting down');
        case '/metrics':
          return state.metrics ? metrics(state.metrics) : text(404, 'not found');
        case '/status':
          return status(state);
        default:
          return text(404, 'not found');
      }
    },
    {
      onError: state.onError,
      maxConnections: maxAdminConnections,
      // A full port must not fail the container's healthcheck or move keepalived's VIP.
      exempt: (path) => probePaths.has(path),
      onShed: (reason) => state.onShed?.(`admin_${reason}`),
    },
  );
}

/** `GET /status`: every pool and backend; with workers, their load summed and each worker. */
async function status(state: AdminState): Promise<EndpointResponse> {
  const { cluster } = state;
  if (!cluster) return json(200, { ready: state.ready(), pools: poolsStatus(state.pools(), state.now()) });
  const { load, more } = await cluster.status();
  return json(200, { ready: state.ready(), pools: poolsStatus(state.pools(), state.now(), load), ...more });
}

/** `POST /workers/restart`: new workers start and take traffic, then the old ones drain and exit. */
function restartRoute(state: AdminState, request: EndpointRequest): EndpointResponse {
  if (!state.cluster) return text(404, 'not a cluster (workers: 1)');
  if (request.head.method !== 'POST') return text(405, 'use POST');
  const { started, message } = state.cluster.restart();
  return json(started ? 202 : 409, { started, message });
}

/** `GET /backends/POOL/NAME`, `POST /backends/POOL/NAME/drain`, `POST …/undrain` (names URL-encoded). */
async function backendRoute(
  state: AdminState,
  request: EndpointRequest,
  match: RegExpExecArray,
): Promise<EndpointResponse> {
  const [, poolName = '', backendName = '', action] = match;
  const poolKey = decodeName(poolName);
  const backendKey = decodeName(backendName);
  if (poolKey === undefined || backendKey === undefined) return text(400, 'invalid percent-encoding');
  const pool = state.pools().get(poolKey);
  const backend = pool?.backends.find((candidate) => candidate.name === backendKey);
  if (!backend) return text(404, 'no such backend');
  const now = state.now();
  const load = state.cluster ? (await state.cluster.status()).load : localLoad;
  if (action === undefined) {
    if (request.head.method !== 'GET' && request.head.method !== 'HEAD')
      return text(405, 'method not allowed');
    return json(200, backendStatus(backend, now, load));
  }
  if (request.head.method !== 'POST') return text(405, 'use POST');
  if (action === 'drain') {
    backend.health.drain(now);
    // No new requests will come: idle connections close now, busy ones when their exchange ends.
    backend.connections.retire();
  } else {
    backend.health.undrain(now);
    backend.connections.reopen();
  }
  return json(202, backendStatus(backend, now, load));
}

/**
 * `POST /cache/purge?url=http://host/path` removes every stored variant of that URL;
 * `POST /cache/purge?prefix=http://host/path/` every URL that starts with it. `&pool=NAME` limits
 * either to one pool. Answers `{ "purged": n }`.
 */
async function purgeRoute(state: AdminState, request: EndpointRequest): Promise<EndpointResponse> {
  if (!state.cache) return text(404, 'no cache');
  if (request.head.method !== 'POST') return text(405, 'use POST');
  const { query } = request;
  const url = query.get('url');
  const prefix = query.get('prefix');
  const pool = query.get('pool') ?? undefined;
  if ((url === null) === (prefix === null))
    return json(400, { error: 'give exactly one of url= and prefix= (an absolute http:// URL)' });
  const target = (url ?? prefix) as string;
  if (!/^https?:\/\/[^/?#]+/i.test(target))
    return json(400, { error: `expected an absolute http:// URL (got ${JSON.stringify(target)})` });
  // As a drain of an unknown pool: a typo must not look like an empty cache.
  if (pool !== undefined && !state.pools().has(pool))
    return json(404, { error: `no pool ${JSON.stringify(pool)}` });
  const purged = await (url !== null
    ? state.cache.purgeUrl(target, pool)
    : state.cache.purgePrefix(target, pool));
  return json(200, { purged });
}

function decodeName(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

function text(status: number, body: string): EndpointResponse {
  return { status, body: `${body}\n` };
}

function json(status: number, body: unknown): EndpointResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: `${JSON.stringify(body)}\n` };
}

async function metrics(registry: { render(): Promise<RenderedMetrics> }): Promise<EndpointResponse> {
  const { contentType, body } = await registry.render();
  return { status: 200, headers: { 'content-type': contentType }, body };
}
