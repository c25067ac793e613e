// The plain lane for the response head most backends send: HTTP/1.1, a final status with a body,
// one Content-Length, at most `Connection: keep-alive` or `close`, and every field line written
// `Name: value`. Such a head is checked in its bytes and relayed as its bytes: the client's head
// is the backend's status line and end-to-end field lines copied whole, then Via and the framing.
// No string is made for any field (making them was the largest part of relaying a small answer).
//
// Anything else (chunked, Via, other hop-by-hop fields, odd spacing, a 1xx, 204 or 304, an
// incomplete head) is left to the full parser (parser.ts), which also words the errors. What this
// lane takes, the full path takes with the same meaning, and the head it writes is byte for byte
// the one clientResponseHead writes: test/unit/http/plain-response.test.ts holds it to that.
import { TOKEN_BYTE, VALUE_BYTE } from './field-lines.ts';
import { NONE } from './framing.ts';
import type { BodyFraming, HeaderField, ResponseHead } from './message.ts';
import { defaultMaxResponseHead, parseResponseHead } from './parser.ts';
import { viaValue } from './response-heads.ts';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const statusLineStart = Buffer.from('HTTP/1.1 ', 'latin1');

const keepAliveToken: readonly string[] = Object.freeze(['keep-alive']);
const closeToken: readonly string[] = Object.freeze(['close']);
const noTokens: readonly string[] = Object.freeze([]);

// What the lane does with a field line, by its name.
/** End to end: relayed as it is. */
const relayed = 0;
/** Content-Length: read, and written again from the framing. */
const framed = 1;
/** Connection: read for its token, not relayed. */
const connectionField = 2;
/** Keep-Alive: hop-by-hop, not relayed. */
const dropped = 3;
/** A field the full path must handle (framing, Via, other hop-by-hop fields). */
const refused = 4;
type FieldRole = typeof relayed | typeof framed | typeof connectionField | typeof dropped | typeof refused;

/** Whether the `lower.length` token bytes at `at` spell `lower` in any case (OR 0x20 lower-cases a letter). */
function spells(buf: Buffer, at: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++)
    if (((buf[at + k] as number) | 0x20) !== lower.charCodeAt(k)) return false;
  return true;
}

/** The names the lane does not simply relay, by length: a name's length picks the few to compare. */
const rolesByLength: { lower: string; role: FieldRole }[][] = [];
for (const [lower, role] of [
  ['te', refused],
  ['via', refused],
  // A field named by a `Connection: close` token would be hop-by-hop.
  ['close', refused],
  ['trailer', refused],
  ['upgrade', refused],
  ['connection', connectionField],
  ['keep-alive', dropped],
  ['content-length', framed],
  ['proxy-connection', refused],
  ['transfer-encoding', refused],
  ['proxy-authenticate', refused],
  ['proxy-authorization', refused],
] as const) {
  rolesByLength[lower.length] ??= [];
  rolesByLength[lower.length]?.push({ lower, role });
}

/** The role of the field named by the `nameLength` bytes at `at`. */
function fieldRole(buf: Buffer, at: number, nameLength: number): FieldRole {
  const candidates = rolesByLength[nameLength];
  if (candidates !== undefined)
    for (const { lower, role } of candidates) if (spells(buf, at, lower)) return role;
  return relayed;
}

/** A Content-Length of 1 to 15 digits without a leading zero (or `0`), else -1. */
function plainLength(buf: Buffer, from: number, to: number): number {
  const digits = to - from;
  if (digits > 15 || (digits > 1 && buf[from] === 0x30)) return -1;
  let length = 0;
  for (let i = from; i < to; i++) {
    const digit = (buf[i] as number) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    length = length * 10 + digit;
  }
  return length;
}

/** The token of a Connection value that is exactly `keep-alive` or `close` (any case), else undefined. */
function plainToken(buf: Buffer, from: number, to: number): readonly string[] | undefined {
  if (to - from === 10 && spells(buf, from, 'keep-alive')) return keepAliveToken;
  if (to - from === 5 && spells(buf, from, 'close')) return closeToken;
  return undefined;
}

/** The bytes after the relayed lines: Via, then `Content-Length: `. */
const viaAndLength = Buffer.from(`Via: ${viaValue}\r\nContent-Length: `, 'latin1');
const connectionClose = Buffer.from('Connection: close\r\n', 'latin1');
const connectionKeepAlive = Buffer.from('Connection: keep-alive\r\n', 'latin1');

/**
 * A head the plain lane took. Its status, framing and Connection token are read; its reason and
 * fields are parsed by the full parser only when something asks for them (the cache and its
 * refresher), and from then on the client's head is written from those fields.
 */
export class PlainResponseHead implements ResponseHead {
  readonly versionMinor = 1;
  readonly status: number;
  readonly framing: BodyFraming;
  /** The Connection token, as connectionTokens gives it. */
  readonly tokens: readonly string[];
  /** The buffer the head starts, and `size` bytes later ends, in (the body may follow). */
  private readonly source: Buffer;
  private readonly size: number;
  /** Start and end offsets in `source` of the byte runs to relay: the status line and end-to-end fields. */
  private readonly runs: readonly number[];
  private readonly contentLength: number;
  private full: ResponseHead | undefined;

  constructor(
    source: Buffer,
    size: number,
    status: number,
    contentLength: number,
    tokens: readonly string[],
    runs: number[],
  ) {
    this.source = source;
    this.size = size;
    this.status = status;
    this.contentLength = contentLength;
    this.framing = contentLength === 0 ? NONE : { kind: 'length', length: contentLength };
    this.tokens = tokens;
    this.runs = runs;
  }

  /** Nothing read or changed the fields: the client's head can be the backend's bytes. */
  get untouched(): boolean {
    return this.full === undefined;
  }

  get reason(): string {
    return this.parsed().reason;
  }

  get headers(): HeaderField[] {
    return this.parsed().headers;
  }

  set headers(headers: HeaderField[]) {
    this.parsed().headers = headers;
  }

  private parsed(): ResponseHead {
    this.full ??= (parseResponseHead(this.source.subarray(0, this.size)) as { head: ResponseHead }).head;
    return this.full;
  }

  /** The head for the client: what clientResponseHead writes for this head with no extra fields. */
  clientHead(keepAlive: boolean, clientMinor: 0 | 1): Buffer {
    const { source, runs } = this;
    const connectionLine = !keepAlive ? connectionClose : clientMinor === 0 ? connectionKeepAlive : undefined;
    let digits = 1;
    for (let rest = this.contentLength; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let size = viaAndLength.length + digits + 4 + (connectionLine?.length ?? 0);
    for (let k = 0; k < runs.length; k += 2) size += (runs[k + 1] as number) - (runs[k] as number);
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let k = 0; k < runs.length; k += 2) at += source.copy(out, at, runs[k], runs[k + 1]);
    at += viaAndLength.copy(out, at);
    let rest = this.contentLength;
    for (let i = at + digits - 1; i >= at; i--) {
      const next = Math.floor(rest / 10);
      out[i] = 0x30 + rest - next * 10;
      rest = next;
    }
    at += digits;
    out[at++] = CR;
    out[at++] = LF;
    if (connectionLine !== undefined) at += connectionLine.copy(out, at);
    out[at++] = CR;
    out[at] = LF;
    return out;
  }
}

/**
 * The plain head at the start of `buf` and its size, or undefined when the head is not plain
 * or not complete (then the full parser decides). `buf` must not change while the head is used.
 */
export function parsePlainResponse(buf: Buffer): { head: PlainResponseHead; size: number } | undefined {
  // Status line: `HTTP/1.1 ` three digits, SP, and a reason (possibly empty).
  for (let k = 0; k < 9; k++) if (buf[k] !== statusLineStart[k]) return undefined;
  const d0 = (buf[9] as number) - 0x30;
  const d1 = (buf[10] as number) - 0x30;
  const d2 = (buf[11] as number) - 0x30;
  if (d0 < 2 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || buf[12] !== SP) return undefined;
  const status = d0 * 100 + d1 * 10 + d2;
  if (status === 204 || status === 304) return undefined;
  let i = 13;
  while (VALUE_BYTE[buf[i] as number] === 1) i++;
  if (buf[i] !== CR || buf[i + 1] !== LF) return undefined;

  const runs: number[] = [];
  let runStart = 0;
  let contentLength = -1;
  let tokens: readonly string[] | undefined;
  let pos = i + 2;
  for (;;) {
    if (pos > defaultMaxResponseHead) return undefined;
    if (buf[pos] === CR) break;
    let colon = pos;
    while (TOKEN_BYTE[buf[colon] as number] === 1) colon++;
    if (colon === pos || buf[colon] !== 0x3a || buf[colon + 1] !== SP) return undefined;
    // `Name: value` exactly: one SP, a value that neither starts nor ends with whitespace.
    const from = colon + 2;
    const start = buf[from] as number;
    if (start === SP || start === HTAB || VALUE_BYTE[start] !== 1) return undefined;
    let to = from + 1;
    while (VALUE_BYTE[buf[to] as number] === 1) to++;
    if (buf[to] !== CR || buf[to + 1] !== LF || buf[to - 1] === SP || buf[to - 1] === HTAB) return undefined;
    const role = fieldRole(buf, pos, colon - pos);
    if (role !== relayed) {
      if (role === refused) return undefined;
      if (role === framed) {
        if (contentLength !== -1) return undefined;
        contentLength = plainLength(buf, from, to);
        if (contentLength === -1) return undefined;
      } else if (role === connectionField) {
        if (tokens !== undefined) return undefined;
        tokens = plainToken(buf, from, to);
        if (tokens === undefined) return undefined;
      }
      if (pos > runStart) runs.push(runStart, pos);
      runStart = to + 2;
    }
    pos = to + 2;
  }
  const size = pos + 2;
  if (buf[pos + 1] !== LF || size > defaultMaxResponseHead || contentLength === -1) return undefined;
  if (pos > runStart) runs.push(runStart, pos);
  const head = new PlainResponseHead(buf, size, status, contentLength, tokens ?? noTokens, runs);
  return { head, size };
}
