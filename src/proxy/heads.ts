// Builds the request head Sluice sends to a backend (response heads: src/http/response-heads.ts).

import type { FlowRequest } from '../cache/proxy-cache.ts';
import { endToEndFields } from '../http/hop-by-hop.ts';
import type { HeaderField, RequestHead } from '../http/message.ts';
import { field, fieldLines } from '../http/serialize.ts';
import { addForwardingFields } from './forwarding.ts';
import { applyHeaderRules, changesHeaders } from './header-rules.ts';
import { plainForwardedLines } from './plain-request.ts';
import type { UpstreamRequest } from './upstream-request.ts';

/**
 * The request as the backend gets it, except the request line and framing: end-to-end fields,
 * Host from the effective authority, forwarding fields, the route's rules. The cache keys and
 * matches Vary on this, so a stored answer is always the answer to what was really sent.
 */
export function forwardedFields(request: UpstreamRequest): HeaderField[] {
  let fields = endToEndFields(request.head.headers, request.connectionTokens);
  if (request.authority !== undefined) fields = replaceHost(fields, request.authority);
  fields = addForwardingFields(fields, request.forwarding);
  return applyHeaderRules(fields, request.route.headers);
}

/** The bytes of a request head for the backend: `fields` as forwardedFields made them. */
export function serializeUpstreamHead(
  method: string,
  fields: readonly HeaderField[],
  request: UpstreamRequest,
): string {
  return headWithLines(method, fieldLines(fields), request);
}

export function upstreamRequestHead(request: UpstreamRequest): string {
  const lines = plainForwardedLines(request) ?? fieldLines(forwardedFields(request));
  return headWithLines(request.head.method, lines, request);
}

/** The request line, the field lines, then framing and Upgrade as Sluice writes them. */
function headWithLines(method: string, lines: string, request: UpstreamRequest): string {
  const { framing } = request;
  let out = `${method} ${request.path} HTTP/1.1\r\n${lines}`;
  if (framing.kind === 'length') out += `Content-Length: ${framing.length}\r\n`;
  else if (framing.kind === 'chunked') out += 'Transfer-Encoding: chunked\r\n';
  if (request.upgrade !== undefined) out += `Connection: upgrade\r\nUpgrade: ${request.upgrade}\r\n`;
  return `${out}\r\n`;
}

/**
 * A request on a cache route, for its CacheFlow: the forwarded fields are made on first use,
 * since a hit never sends them (and one without Vary never reads them).
 */
export class CacheSubject implements FlowRequest {
  readonly client: RequestHead;
  readonly host: string | undefined;
  private readonly upstream: UpstreamRequest;
  private made: RequestHead | undefined;

  constructor(upstream: UpstreamRequest) {
    this.upstream = upstream;
    this.client = upstream.head;
    // forwardedFields sends the authority as Host; header rules might change it, or add fields.
    this.host = changesHeaders(upstream.route.headers) ? undefined : upstream.authority;
  }

  forwarded(): RequestHead {
    this.made ??= { ...this.upstream.head, headers: forwardedFields(this.upstream) };
    return this.made;
  }

  headFor(head: RequestHead): string {
    return serializeUpstreamHead(head.method, head.headers, this.upstream);
  }
}

function replaceHost(fields: readonly HeaderField[], authority: string): HeaderField[] {
  // The usual request: its Host, first, already says the authority (the parser lets no request
  // through with two).
  const first = fields[0];
  if (first?.lower === 'host' && first.value === authority) return fields as HeaderField[];
  const out = fields.filter((header) => header.lower !== 'host');
  out.unshift(field('Host', authority));
  return out;
}
