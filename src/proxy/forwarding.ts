// The fields a reverse proxy adds so the backend knows who really asked (X-Forwarded-*,
// Forwarded of RFC 7239, Via) and a request id that follows the request through the logs.
import { BlockList, isIPv6 } from 'node:net';
import type { HeaderField } from '../http/message.ts';
import { viaValue } from '../http/response-heads.ts';
import { field, fieldLines } from '../http/serialize.ts';
import { newRequestId } from './request-id.ts';

const forwardingFields = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
/**
 * Fields that claim who the client is or how it reached the edge. Backends and frameworks
 * believe them (Rails, Express `trust proxy`, nginx's realip, CGI's REMOTE_ADDR guesses), so
 * from an untrusted peer every one of them is dropped; Sluice sets X-Real-IP, X-Forwarded-Port
 * and X-Forwarded-Prefix itself.
 */
const identityFields = new Set([
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-proxyuser-ip',
  'wl-proxy-client-ip',
  'proxy-client-ip',
  'x-envoy-external-address',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-forwarded-protocol',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded',
  'forwarded-for',
  'x-original-forwarded-for',
  'x-original-host',
  'x-original-url',
  'x-rewrite-url',
  'x-host',
  'x-url-scheme',
  'front-end-https',
  // Who an authenticating proxy says the user is (oauth2-proxy, Apache, nginx auth_request).
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-groups',
  'x-forwarded-access-token',
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-access-token',
  'x-remote-user',
  'remote-user',
  'x-webauth-user',
  // The client certificate a TLS terminator checked (Sluice terminates no TLS: always forged).
  'x-forwarded-client-cert',
  'x-client-cert',
  'x-ssl-client-cert',
  'ssl-client-cert',
  'x-client-verify',
  'x-ssl-client-verify',
  'x-ssl-client-dn',
  'x-client-dn',
]);
const validRequestId = /^[\x21-\x7e]{1,200}$/;

/** Decides whether a peer is a proxy whose forwarding fields may be believed. */
export class TrustedPeers {
  private readonly list = new BlockList();
  private readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address = '', prefix] = entry.split('/');
      const type = isIPv6(address) ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(address, type);
      else this.list.addSubnet(address, Number(prefix), type);
    }
  }

  has(address: string): boolean {
    return !this.empty && this.list.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
  }
}

/** A peer address as a plain IP: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes `1.2.3.4`. */
export function plainAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export interface ForwardingContext {
  clientAddress: string;
  /** The client is a trusted proxy: keep the forwarding fields it sent and append to them. */
  trusted: boolean;
  /** The effective authority (absolute-form target, else Host, else the address connected to). */
  host: string | undefined;
  requestId: string;
  /** The port the client connected to (X-Forwarded-Port). */
  port?: number;
  /** The path prefix a route stripped (X-Forwarded-Prefix), if any. */
  prefix?: string;
  /** Sluice's own Via entry (with its instance id, so a loop is recognised). */
  via?: string;
  /** Keep fields whose names contain `_` (default: dropped, as nginx does). */
  underscores?: boolean;
}

/** Whether `name` (canonical, lower case) says who the client is or how it came. */
export function isIdentityField(name: string): boolean {
  return forwardingFields.has(name) || identityFields.has(name) || name === 'via' || name === 'x-request-id';
}

/** `x_forwarded_for` and `x-forwarded-for` are one field to a CGI or WSGI backend. */
export function canonicalName(lower: string): string {
  return lower.includes('_') ? lower.replaceAll('_', '-') : lower;
}

/** The request id the client sent when it is sane, otherwise a new one. */
export function requestIdOf(headers: readonly HeaderField[]): string {
  for (const header of headers) {
    if (header.lower === 'x-request-id')
      return validRequestId.test(header.value) ? header.value : newRequestId();
  }
  return newRequestId();
}

/** What a trusted peer already wrote in the fields Sluice writes: Sluice appends to it or keeps it. */
interface PeerForwarding {
  forwardedFor?: string;
  forwarded?: string;
  proto?: string;
  forwardedHost?: string;
  realIp?: string;
  forwardedPort?: string;
  forwardedPrefix?: string;
  via?: string;
}

/**
 * Appends the forwarding fields to end-to-end request fields (already free of hop-by-hop ones).
 * Values from an untrusted client are dropped, so a client cannot forge its address.
 */
export function addForwardingFields(
  headers: readonly HeaderField[],
  context: ForwardingContext,
): HeaderField[] {
  const out: HeaderField[] = [];
  const peer: PeerForwarding = {};
  let hasRequestId = false;
  for (const header of headers) {
    if (header.lower.includes('_') && !context.underscores) continue;
    const name = canonicalName(header.lower);
    if (forwardingFields.has(name)) {
      if (!context.trusted || name !== header.lower) continue;
      if (name === 'x-forwarded-for') peer.forwardedFor = join(peer.forwardedFor, header.value);
      else if (name === 'forwarded') peer.forwarded = join(peer.forwarded, header.value);
      else if (name === 'x-forwarded-proto') peer.proto ??= header.value;
      else peer.forwardedHost ??= header.value;
      continue;
    }
    if (identityFields.has(name)) {
      // Only a trusted peer's own spellings of the fields Sluice writes survive (first of each).
      if (context.trusted && name === header.lower) {
        if (name === 'x-real-ip') peer.realIp ??= header.value;
        else if (name === 'x-forwarded-port') peer.forwardedPort ??= header.value;
        else if (name === 'x-forwarded-prefix') peer.forwardedPrefix ??= header.value;
      }
      continue;
    }
    if (name === 'via') {
      if (name === header.lower) peer.via = join(peer.via, header.value);
      continue;
    }
    if (name === 'x-request-id') {
      if (hasRequestId || name !== header.lower) continue;
      hasRequestId = true;
      out.push(header.value === context.requestId ? header : field(header.name, context.requestId));
      continue;
    }
    out.push(header);
  }
  pushOwnFields(out, context, peer);
  if (!hasRequestId) out.push(field('X-Request-Id', context.requestId));
  return out;
}

/** Sluice's fields from X-Forwarded-For to Via, after what `peer` wrote (X-Request-Id is not one). */
function pushOwnFields(out: HeaderField[], context: ForwardingContext, peer: PeerForwarding): void {
  const client = context.clientAddress;
  out.push(field('X-Forwarded-For', join(peer.forwardedFor, client)));
  out.push(field('X-Forwarded-Proto', peer.proto ?? 'http'));
  if (context.host !== undefined) out.push(field('X-Forwarded-Host', peer.forwardedHost ?? context.host));
  out.push(field('Forwarded', join(peer.forwarded, forwardedElement(client, context.host))));
  out.push(field('X-Real-IP', peer.realIp ?? client));
  const port = peer.forwardedPort ?? context.port?.toString();
  if (port !== undefined) out.push(field('X-Forwarded-Port', port));
  const prefix = peer.forwardedPrefix ?? context.prefix;
  if (prefix !== undefined) out.push(field('X-Forwarded-Prefix', prefix));
  out.push(field('Via', join(peer.via, context.via ?? viaValue)));
}

/** The last block made: a connection's requests usually repeat its client, host and port. */
let lastBlock = { context: undefined as ForwardingContext | undefined, lines: '' };

/**
 * Sluice's field lines from X-Forwarded-For to Via, each with its CRLF, for a request whose
 * client sent none of the fields Sluice writes: what addForwardingFields appends then.
 */
export function ownFieldLines(context: ForwardingContext): string {
  const last = lastBlock.context;
  if (
    last !== undefined &&
    last.clientAddress === context.clientAddress &&
    last.host === context.host &&
    last.port === context.port &&
    last.prefix === context.prefix &&
    last.via === context.via
  )
    return lastBlock.lines;
  const fields: HeaderField[] = [];
  pushOwnFields(fields, context, {});
  lastBlock = { context, lines: fieldLines(fields) };
  return lastBlock.lines;
}

function join(list: string | undefined, value: string): string {
  return list === undefined ? value : `${list}, ${value}`;
}

/** The last element made: a connection's requests usually repeat its client and host. */
let lastElement = { client: '', host: undefined as string | undefined, element: '' };

/** One RFC 7239 element; IPv6 addresses and hosts with odd characters are quoted. */
function forwardedElement(client: string, host: string | undefined): string {
  if (client === lastElement.client && host === lastElement.host) return lastElement.element;
  const element = makeForwardedElement(client, host);
  lastElement = { client, host, element };
  return element;
}

function makeForwardedElement(client: string, host: string | undefined): string {
  // A peer address with a colon is IPv6 (cheaper than net.isIPv6's regex on every request).
  const forNode = client.includes(':') ? `"[${client}]"` : client;
  let element = `for=${forNode}`;
  if (host !== undefined)
    element += `;host=${/^[A-Za-z0-9.-]+$/.test(host) ? host : `"${host.replace(/["\\]/g, '')}"`}`;
  return `${element};proto=http`;
}
