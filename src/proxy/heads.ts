// Builds the heads Sluice sends: the request to the backend and the response to the client.

import type { RouteConfig } from '../config/types.ts';
import { endToEndFields } from '../http/hop-by-hop.ts';
import type { BodyFraming, HeaderField, RequestHead, ResponseHead } from '../http/message.ts';
import { field, serializeHead } from '../http/serialize.ts';
import { addForwardingFields, type ForwardingContext, viaValue } from './forwarding.ts';
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

/** How the response body travels to the client, which may speak another HTTP version. */
export type ResponseMode =
  /** Bytes pass as they are. */
  | 'raw'
  /** Chunked from the backend, plain to an HTTP/1.0 client (then delimited by closing). */
  | 'dechunk'
  /** Delimited by close at the backend, chunked to an HTTP/1.1 client so it can keep the connection. */
  | 'rechunk';

export function responseMode(framing: BodyFraming, clientMinor: 0 | 1): ResponseMode {
  if (framing.kind === 'chunked' && clientMinor === 0) return 'dechunk';
  if (framing.kind === 'close' && clientMinor === 1) return 'rechunk';
  return 'raw';
}

export interface ClientResponse {
  head: ResponseHead;
  connectionTokens: readonly string[];
  framing: BodyFraming;
  mode: ResponseMode;
  requestMethod: string;
  keepAlive: boolean;
  clientMinor: 0 | 1;
  /** Extra fields Sluice adds (for example X-Cache later). */
  extra?: readonly HeaderField[];
}

export function clientResponseHead(response: ClientResponse): string {
  const { head, framing, mode } = response;
  const fields = withVia(head.headers, response.connectionTokens);
  if (response.extra) fields.push(...response.extra);
  if (framing.kind === 'length') fields.push(field('Content-Length', String(framing.length)));
  else if (mode === 'rechunk' || (framing.kind === 'chunked' && mode === 'raw'))
    fields.push(field('Transfer-Encoding', 'chunked'));
  else if (framing.kind === 'none') {
    if (response.requestMethod === 'HEAD' || head.status === 304) {
      // No body, but the Content-Length still describes the resource.
      const length = head.headers.find((header) => header.lower === 'content-length');
      if (length) fields.push(length);
    } else if (head.status !== 204) {
      // An empty body must be said explicitly, or the client waits for the connection to close.
      fields.push(field('Content-Length', '0'));
    }
  }
  if (!response.keepAlive) fields.push(field('Connection', 'close'));
  else if (response.clientMinor === 0) fields.push(field('Connection', 'keep-alive'));
  return serializeHead(`HTTP/1.1 ${head.status} ${head.reason}`, fields);
}

/** The 101 answer of an Upgrade keeps its Connection and Upgrade fields. */
export function switchingProtocolsHead(head: ResponseHead, connectionTokens: readonly string[]): string {
  const upgrade = head.headers.find((header) => header.lower === 'upgrade');
  const fields = withVia(head.headers, connectionTokens);
  fields.push(field('Connection', 'upgrade'));
  if (upgrade) fields.push(upgrade);
  return serializeHead(`HTTP/1.1 ${head.status} ${head.reason}`, fields);
}

/** A 1xx interim response passed on to the client. */
export function interimHead(head: ResponseHead): string {
  return serializeHead(`HTTP/1.1 ${head.status} ${head.reason}`, endToEndFields(head.headers, []));
}

/** End-to-end response fields with Sluice appended to Via (RFC 9110 7.6.3). */
function withVia(headers: readonly HeaderField[], connectionTokens: readonly string[]): HeaderField[] {
  const via: string[] = [];
  const fields: HeaderField[] = [];
  for (const header of endToEndFields(headers, connectionTokens)) {
    if (header.lower === 'via') via.push(header.value);
    else fields.push(header);
  }
  via.push(viaValue);
  fields.push(field('Via', via.join(', ')));
  return fields;
}
