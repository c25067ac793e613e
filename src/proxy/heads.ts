// Builds the request head Sluice sends to a backend (response heads: src/http/response-heads.ts).

import type { RouteConfig } from '../config/types.ts';
import { endToEndFields } from '../http/hop-by-hop.ts';
import type { BodyFraming, HeaderField, RequestHead } from '../http/message.ts';
import { field, serializeHead } from '../http/serialize.ts';
import { addForwardingFields, type ForwardingContext } from './forwarding.ts';
import { applyHeaderRules } from './header-rules.ts';

export interface UpstreamRequest {
  head: RequestHead;
  connectionTokens: readonly string[];
  framing: BodyFraming;
  route: RouteConfig;
  /** Origin-form target after prefix stripping. */
  path: string;
  /** The authority of an absolute-form target, which replaces Host (RFC 9112 3.2.2). */
  authority: string | undefined;
  /** The Upgrade value when the client asks to switch protocols. */
  upgrade: string | undefined;
  forwarding: ForwardingContext;
}

export function upstreamRequestHead(request: UpstreamRequest): string {
  const { head, framing } = request;
  let fields = endToEndFields(head.headers, request.connectionTokens);
  if (request.authority !== undefined) fields = replaceHost(fields, request.authority);
  fields = addForwardingFields(fields, request.forwarding);
  fields = applyHeaderRules(fields, request.route.headers);
  if (framing.kind === 'length') fields.push(field('Content-Length', String(framing.length)));
  else if (framing.kind === 'chunked') fields.push(field('Transfer-Encoding', 'chunked'));
  if (request.upgrade !== undefined)
    fields.push(field('Connection', 'upgrade'), field('Upgrade', request.upgrade));
  return serializeHead(`${head.method} ${request.path} HTTP/1.1`, fields);
}

function replaceHost(fields: readonly HeaderField[], authority: string): HeaderField[] {
  const out = fields.filter((header) => header.lower !== 'host');
  out.unshift(field('Host', authority));
  return out;
}
