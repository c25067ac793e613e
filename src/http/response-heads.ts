// The response heads Sluice writes to a client: a backend's answer relayed (with Via appended and
// the framing the client's HTTP version needs), the 101 of an Upgrade, and 1xx interim answers.
// Shared by the proxy and the cache, which renders stored answers the same way.
import { endToEndFields, isHopByHop } from './hop-by-hop.ts';
import { type BodyFraming, type HeaderField, headerValue, type ResponseHead } from './message.ts';
import { headerTokens, serializeHead } from './serialize.ts';

/** Sluice's entry in Via, on requests and responses (RFC 9110 7.6.3). */
export const viaValue = '1.1 sluice';

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
  let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n${endToEndLinesWithVia(head.headers, response.connectionTokens)}`;
  if (response.extra) for (const header of response.extra) out += `${header.name}: ${header.value}\r\n`;
  if (framing.kind === 'length') out += `Content-Length: ${framing.length}\r\n`;
  else if (framing.kind !== 'none' && (mode === 'rechunk' || (framing.kind === 'chunked' && mode === 'raw')))
    out +=
      framing.codings === undefined
        ? 'Transfer-Encoding: chunked\r\n'
        : `Transfer-Encoding: ${framing.codings}, chunked\r\n`;
  else if (framing.kind === 'none') {
    if (response.requestMethod === 'HEAD' || head.status === 304) {
      // No body, but the Content-Length still describes the resource.
      const length = headerValue(head.headers, 'content-length');
      if (length !== undefined) out += `Content-Length: ${length}\r\n`;
    } else if (head.status !== 204) {
      // An empty body must be said explicitly, or the client waits for the connection to close.
      out += 'Content-Length: 0\r\n';
    }
  }
  if (!response.keepAlive) out += 'Connection: close\r\n';
  else if (response.clientMinor === 0) out += 'Connection: keep-alive\r\n';
  return `${out}\r\n`;
}

/** The 101 answer of an Upgrade keeps its Connection and Upgrade fields. */
export function switchingProtocolsHead(head: ResponseHead, connectionTokens: readonly string[]): string {
  const upgrade = headerValue(head.headers, 'upgrade');
  let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n${endToEndLinesWithVia(head.headers, connectionTokens)}`;
  out += 'Connection: upgrade\r\n';
  if (upgrade !== undefined) out += `Upgrade: ${upgrade}\r\n`;
  return `${out}\r\n`;
}

/** A 1xx interim response passed on to the client. */
export function interimHead(head: ResponseHead): string {
  return serializeHead(`HTTP/1.1 ${head.status} ${head.reason}`, endToEndFields(head.headers, []));
}

/**
 * The end-to-end response fields as header lines, with Sluice appended to Via (RFC 9110 7.6.3).
 * Written in one pass: this runs for every response.
 */
function endToEndLinesWithVia(headers: readonly HeaderField[], connectionTokens: readonly string[]): string {
  let lines = '';
  let via: string | undefined;
  for (const header of headers) {
    if (isHopByHop(header.lower, connectionTokens)) continue;
    if (header.lower === 'via') via = via === undefined ? header.value : `${via}, ${header.value}`;
    else lines += `${header.name}: ${header.value}\r\n`;
  }
  return `${lines}Via: ${via === undefined ? viaValue : `${via}, ${viaValue}`}\r\n`;
}

/** A 101 is followed only to a protocol Sluice offered (the allowed ones the client asked for). */
export function switchedAsOffered(head: ResponseHead, offered: string | undefined): boolean {
  if (offered === undefined) return false;
  const to = headerTokens(head.headers, 'upgrade')[0]?.split('/')[0];
  return to !== undefined && offered.split(', ').some((protocol) => protocol.split('/')[0] === to);
}
