// Admission of a parsed request: the refusals Sluice answers itself (a body over maxBody,
// CONNECT, no route, no pool), then the route's pool, the Upgrade the client asks for, and the
// head for the backend, or the cache flow that makes it later (routes with `cache: true`).
import type { CacheFlow } from '../cache/proxy-cache.ts';
import { connectionTokens } from '../http/hop-by-hop.ts';
import { type BodyFraming, headerValue, type RequestHead } from '../http/message.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { ProxyContext } from './context.ts';
import type { Downstream } from './downstream.ts';
import { type UpstreamRequest, upstreamRequestHead } from './heads.ts';

/** A request Sluice answers itself; `reason` labels sluice_requests_rejected_total. */
export interface Refusal {
  readonly kind: 'refuse';
  readonly status: number;
  readonly message: string;
  readonly reason: string;
}

export interface Admitted {
  readonly kind: 'admit';
  readonly pool: BackendPool;
  /** The Upgrade value when the client asks to switch protocols. */
  readonly upgrade: string | undefined;
  /** The head for the backend ('' when the cache makes it). */
  readonly upstreamHead: string;
  readonly cache: CacheFlow | undefined;
}

function refuse(status: number, message: string, reason: string): Refusal {
  return { kind: 'refuse', status, message, reason };
}

export function admit(
  request: RequestHead,
  framing: BodyFraming,
  context: ProxyContext,
  client: Pick<Downstream, 'address' | 'trusted'>,
  requestId: string,
): Admitted | Refusal {
  const maxBody = context.config.limits.maxBody;
  if (maxBody !== null && framing.kind === 'length' && framing.length > maxBody)
    return refuse(413, 'request body too large', 'body_too_large');
  // A reverse proxy opens no tunnels to arbitrary hosts.
  if (request.method === 'CONNECT') return refuse(501, 'CONNECT is not supported', 'connect');
  const host = headerValue(request.headers, 'host');
  const match = context.router.match(host, request.target);
  if (!match) return refuse(404, 'no route for this host and path', 'no_route');
  const pool = context.pools.get(match.route.pool);
  if (!pool) return refuse(503, 'no backend available', 'no_pool');

  const tokens = connectionTokens(request.headers);
  const upgradeValue = headerValue(request.headers, 'upgrade');
  const upgrade =
    upgradeValue !== undefined && tokens.includes('upgrade') && request.versionMinor === 1
      ? upgradeValue
      : undefined;
  const upstream: UpstreamRequest = {
    head: request,
    connectionTokens: tokens,
    framing,
    route: match.route,
    path: match.path,
    authority: absoluteAuthority(request.target),
    upgrade,
    forwarding: { clientAddress: client.address, trusted: client.trusted, host, requestId },
  };
  if (match.route.cache && context.cache) {
    // The upstream head is made only when the request goes to a backend.
    const eligible = framing.kind === 'none' && upgrade === undefined;
    const cache = context.cache.open(
      request,
      pool,
      (head) => upstreamRequestHead({ ...upstream, head }),
      eligible,
    );
    return { kind: 'admit', pool, upgrade, upstreamHead: '', cache };
  }
  return { kind: 'admit', pool, upgrade, upstreamHead: upstreamRequestHead(upstream), cache: undefined };
}

function absoluteAuthority(target: string): string | undefined {
  const match = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (!match) return undefined;
  const authority = match[1] ?? '';
  const at = authority.lastIndexOf('@');
  return at === -1 ? authority : authority.slice(at + 1);
}
