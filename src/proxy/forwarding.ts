// The fields a reverse proxy adds so the backend knows who really asked (X-Forwarded-*,
// Forwarded of RFC 7239, Via) and a request id that follows the request through the logs.
import { randomUUID } from 'node:crypto';
import { BlockList, isIPv6 } from 'node:net';
import type { HeaderField } from '../http/message.ts';
import { viaValue } from '../http/response-heads.ts';
import { field } from '../http/serialize.ts';

const forwardingFields = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
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
  /** The Host the client asked for. */
  host: string | undefined;
  requestId: string;
}

/** The request id the client sent when it is sane, otherwise a new one. */
export function requestIdOf(headers: readonly HeaderField[]): string {
  for (const header of headers) {
    if (header.lower === 'x-request-id')
      return validRequestId.test(header.value) ? header.value : randomUUID();
  }
  return randomUUID();
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
  let forwardedFor: string | undefined;
  let forwarded: string | undefined;
  let proto: string | undefined;
  let forwardedHost: string | undefined;
  let via: string | undefined;
  let hasRequestId = false;
  for (const header of headers) {
    if (forwardingFields.has(header.lower)) {
      if (!context.trusted) continue;
      if (header.lower === 'x-forwarded-for') forwardedFor = join(forwardedFor, header.value);
      else if (header.lower === 'forwarded') forwarded = join(forwarded, header.value);
      else if (header.lower === 'x-forwarded-proto') proto ??= header.value;
      else forwardedHost ??= header.value;
      continue;
    }
    if (header.lower === 'via') {
      via = join(via, header.value);
      continue;
    }
    if (header.lower === 'x-request-id') {
      if (hasRequestId) continue;
      hasRequestId = true;
      out.push(header.value === context.requestId ? header : field(header.name, context.requestId));
      continue;
    }
    out.push(header);
  }
  const client = context.clientAddress;
  out.push(field('X-Forwarded-For', join(forwardedFor, client)));
  out.push(field('X-Forwarded-Proto', proto ?? 'http'));
  if (context.host !== undefined) out.push(field('X-Forwarded-Host', forwardedHost ?? context.host));
  out.push(field('Forwarded', join(forwarded, forwardedElement(client, context.host))));
  out.push(field('Via', join(via, viaValue)));
  if (!hasRequestId) out.push(field('X-Request-Id', context.requestId));
  return out;
}

function join(list: string | undefined, value: string): string {
  return list === undefined ? value : `${list}, ${value}`;
}

/** One RFC 7239 element; IPv6 addresses and hosts with odd characters are quoted. */
function forwardedElement(client: string, host: string | undefined): string {
  // A peer address with a colon is IPv6 (cheaper than net.isIPv6's regex on every request).
  const forNode = client.includes(':') ? `"[${client}]"` : client;
  let element = `for=${forNode}`;
  if (host !== undefined)
    element += `;host=${/^[A-Za-z0-9.-]+$/.test(host) ? host : `"${host.replace(/["\\]/g, '')}"`}`;
  return `${element};proto=http`;
}
