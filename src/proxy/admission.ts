// Admission of a parsed request: the refusals Sluice answers itself (a body over maxBody,
// CONNECT, a loop, a path it will not forward, no route, no pool), then exactly what goes
// upstream: the effective authority, the normalized and stripped path, the Upgrade offered, the
// forwarding context, and the head for the backend, or the cache flow that makes it later
// (routes with `cache: true`; it keys and matches Vary on the fields as forwarded).

import { normalizeAuthority } from '../cache/keys.ts';
import type { CacheFlow } from '../cache/proxy-cache.ts';
import type { RouteConfig } from '../config/types.ts';
import { connectionTokens } from '../http/hop-by-hop.ts';
import { type BodyFraming, headerValue, type RequestHead } from '../http/message.ts';
import { backendReading, normalizeTarget } from '../http/normalize.ts';
import { headerTokens } from '../http/serialize.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { ProxyContext } from './context.ts';
import type { Downstream } from './downstream.ts';
import { CacheSubject, upstreamRequestHead } from './heads.ts';
import type { UpstreamRequest } from './upstream-request.ts';

/** A request Sluice answers itself; `reason` labels sluice_requests_rejected_total. */
export interface Refusal {
  readonly kind: 'refuse';
  readonly status: number;
  readonly message: string;
  readonly reason: string;
  /** What follows on the connection cannot be read as requests: answer, then close. */
  readonly close?: true;
}

export interface Admitted {
  readonly kind: 'admit';
  readonly pool: BackendPool;
  /** The Upgrade protocols offered to the backend (the allowed ones the client asked for). */
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
  client: Pick<Downstream, 'address' | 'trusted' | 'localAuthority' | 'localPort'>,
  requestId: string,
): Admitted | Refusal {
  const maxBody = context.config.limits.maxBody;
  if (maxBody !== null && framing.kind === 'length' && framing.length > maxBody)
    return refuse(413, 'request body too large', 'body_too_large');
  // A reverse proxy opens no tunnels to arbitrary hosts. What the client sends next is meant for
  // the tunnel, not as requests: closed after the answer, so none of it is read as one.
  if (request.method === 'CONNECT')
    return { ...refuse(501, 'CONNECT is not supported', 'connect'), close: true };
  // Read before any Connection-named field is dropped: a loop must not hide behind `Connection: via`.
  const own = context.via;
  for (const entry of headerTokens(request.headers, 'via'))
    if (entry === own || entry.startsWith(`${own} `))
      return refuse(508, 'loop detected: this request already passed through this Sluice', 'loop');
  const absolute = splitAbsolute(request.target);
  const authority = normalizeAuthority(
    absolute?.authority ?? headerValue(request.headers, 'host') ?? client.localAuthority,
  );
  let target = absolute?.path ?? request.target;
  let plain = true;
  if (target !== '*') {
    const normalized = normalizeTarget(target);
    if (!normalized.ok) return refuse(400, normalized.message, 'bad_path');
    target = normalized.target;
    plain = normalized.plain;
  }
  const match = context.router.match(authority, target);
  // `/admin;x/users` or `/%2Fadmin/users` is /admin/users to some backends: its route must not
  // depend on who reads it.
  const reading = plain ? undefined : backendReading(target);
  if (reading !== undefined && context.router.match(authority, reading)?.route !== match?.route)
    return refuse(400, 'path routes elsewhere as a backend may read it', 'bad_path');
  if (!match) return refuse(404, 'no route for this host and path', 'no_route');
  const pool = context.pools.get(match.route.pool);
  if (!pool) return refuse(503, 'no backend available', 'no_pool');

  const tokens = connectionTokens(request.headers);
  const upgrade =
    request.versionMinor === 1 && tokens.includes('upgrade') ? allowedUpgrade(request, context) : undefined;
  const upstream: UpstreamRequest = {
    // The cache keys on this head: the normalized target under the effective authority.
    head: target === request.target ? request : { ...request, target },
    connectionTokens: tokens,
    framing,
    route: match.route,
    path: match.path,
    authority,
    upgrade,
    forwarding: {
      clientAddress: client.address,
      trusted: client.trusted,
      host: authority,
      requestId,
      port: client.localPort,
      prefix: strippedPrefix(match.route, target, match.path),
      via: context.via,
      underscores: context.config.underscoresInHeaders,
    },
  };
  if (match.route.cache && context.cache) {
    // The upstream head is made only when the request goes to a backend.
    const eligible = framing.kind === 'none' && upgrade === undefined;
    const cache = context.cache.open(new CacheSubject(upstream), pool, eligible);
    return { kind: 'admit', pool, upgrade, upstreamHead: '', cache };
  }
  return { kind: 'admit', pool, upgrade, upstreamHead: upstreamRequestHead(upstream), cache: undefined };
}

/** The Upgrade protocols of the request that the config allows, as a list; undefined for none. */
function allowedUpgrade(request: RequestHead, context: ProxyContext): string | undefined {
  const allowed = context.config.upgrades;
  const offered = headerTokens(request.headers, 'upgrade').filter((protocol) =>
    allowed.includes(protocol.split('/')[0] as string),
  );
  return offered.length > 0 ? offered.join(', ') : undefined;
}

/** `/v1` when stripPrefix turned `/v1/users` into `/users`. */
function strippedPrefix(route: RouteConfig, target: string, path: string): string | undefined {
  if (!route.stripPrefix || path === target) return undefined;
  const prefix = route.path.endsWith('/') ? route.path.slice(0, -1) : route.path;
  return prefix === '' ? undefined : prefix;
}

/** `http://host:port/path?q` → its authority and origin-form part; undefined for other forms. */
function splitAbsolute(target: string): { authority: string; path: string } | undefined {
  if (target.charCodeAt(0) === 0x2f) return undefined; // origin-form, the usual case
  const match = /^https?:\/\/([^/?#]*)(.*)$/is.exec(target);
  if (!match) return undefined;
  const authority = match[1] as string;
  const at = authority.lastIndexOf('@');
  const rest = match[2] as string;
  return {
    authority: at === -1 ? authority : authority.slice(at + 1),
    path: rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`,
  };
}
