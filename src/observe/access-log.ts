// The access log: one JSON line per finished request, written straight into a buffered writer
// (log-writer.ts), with no logger format pipeline on the request path.
// The process's own lines (start, stop, backend state changes) stay with winston.

import { ConfigError } from '../config/load.ts';
import type { AccessLogConfig } from '../config/types.ts';
import { systemErrorText } from '../http/failure-kinds.ts';
import { LogWriter, type LogWriterOptions } from './log-writer.ts';

/**
 * What one line says. `access`: a request that went to a pool (answered by a backend, the
 * cache, or failed there); `rejected`: one Sluice refused itself (400, 404, 408, 413, 414, 431 …).
 */
export interface AccessRecord {
  type: 'access' | 'rejected';
  requestId: string;
  client: string;
  clientPort: number | undefined;
  method?: string;
  host?: string;
  path?: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  protocol?: string;
  /** The status the client got. */
  status: number;
  pool?: string;
  backend?: string;
  /** host:port of that backend. */
  backendAddress?: string;
  /** The status the backend answered (differs from `status` when Sluice answered instead). */
  backendStatus?: number;
  attempts?: number;
  bytesIn?: number;
  bytesOut?: number;
  durationMs?: number;
  /** Time to the backend's first response byte. */
  upstreamMs?: number;
  cache?: string;
  error?: string;
  /** What was wrong with a rejected request, in words. */
  detail?: string;
  userAgent?: string;
  referer?: string;
  /** Some of the fields a client shapes were cut so that the line fits (see `fitLine`). */
  truncated?: true;
}

// The line is written byte by byte into the writer's buffer: no string is built for it, so
// nothing is flattened, encoded or collected afterwards (a string line cost about twice as much).
// Short pieces are copied by a loop: a call into Buffer's native writers costs more than the copy.

/** A character JSON does not allow raw in a string: `"`, `\\` or a control. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const needsEscape = /["\\\x00-\x1f]/;

const quote = 0x22;
/** The bytes of a constant piece of the line, encoded once. */
const fragment = (text: string) => Buffer.from(text, 'latin1');

const lineStartKey = fragment('{"timestamp":"');
const accessType = fragment('","level":"info","message":"access","type":"access","requestId":');
const rejectedType = fragment('","level":"info","message":"access","type":"rejected","requestId":');
const keys = {
  client: fragment(',"client":"'),
  clientPort: fragment(',"clientPort":'),
  method: fragment(',"method":"'),
  host: fragment(',"host":'),
  path: fragment(',"path":'),
  protocol: fragment(',"protocol":"'),
  status: fragment(',"status":'),
  pool: fragment(',"pool":"'),
  backend: fragment(',"backend":'),
  backendAddress: fragment(',"backendAddress":"'),
  backendStatus: fragment(',"backendStatus":'),
  attempts: fragment(',"attempts":'),
  bytesIn: fragment(',"bytesIn":'),
  bytesOut: fragment(',"bytesOut":'),
  durationMs: fragment(',"durationMs":'),
  upstreamMs: fragment(',"upstreamMs":'),
  cache: fragment(',"cache":"'),
  error: fragment(',"error":"'),
  detail: fragment(',"detail":'),
  userAgent: fragment(',"userAgent":'),
  referer: fragment(',"referer":'),
  truncated: fragment(',"truncated":true'),
};
const lineEnd = fragment('}\n');

function putBytes(buf: Buffer, at: number, bytes: Buffer): number {
  const length = bytes.length;
  for (let i = 0; i < length; i++) buf[at + i] = bytes[i] as number;
  return at + length;
}

/** A repeating piece of the line: long enough that one native copy beats the loop. */
function putPart(buf: Buffer, at: number, part: Buffer): number {
  buf.set(part, at);
  return at + part.length;
}

/**
 * Copies `value` if it is printable ASCII without `"` and `\\` (what needs no escape and
 * encodes as itself), and returns where it ends; -1 at the first character that is not, with
 * the bytes before it written but not counted.
 */
function putAscii(buf: Buffer, at: number, value: string): number {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === quote || c === 0x5c) return -1;
    buf[at + i] = c;
  }
  return at + length;
}

/** A value Sluice made or checked strictly (ASCII, nothing to escape), and its closing quote. */
function putPlain(buf: Buffer, at: number, value: string): number {
  let end = putAscii(buf, at, value);
  if (end === -1) end = at + buf.write(value, at, 'latin1');
  buf[end] = quote;
  return end + 1;
}

/** A value a client or the config can shape, as a JSON string in UTF-8. */
function putString(buf: Buffer, at: number, value: string): number {
  buf[at] = quote;
  const plain = putAscii(buf, at + 1, value);
  if (plain !== -1) {
    buf[plain] = quote;
    return plain + 1;
  }
  if (needsEscape.test(value)) return at + buf.write(JSON.stringify(value), at);
  const end = at + 1 + buf.write(value, at + 1);
  buf[end] = quote;
  return end + 1;
}

/** A whole number in decimal digits; anything else as JavaScript prints it. */
function putInt(buf: Buffer, at: number, value: number): number {
  // Int32 arithmetic (`| 0`) divides by 10 with a multiplication; a double needs a division.
  if (!(value >= 0 && value <= 0x7fffffff && (value | 0) === value))
    return Number.isSafeInteger(value) && value >= 0
      ? putLargeInt(buf, at, value)
      : at + buf.write(String(value), at, 'latin1');
  let end = at + 1;
  for (let rest = value; rest >= 10; rest = (rest / 10) | 0) end++;
  let rest = value;
  for (let i = end - 1; i >= at; i--) {
    const next = (rest / 10) | 0;
    buf[i] = 0x30 + rest - next * 10;
    rest = next;
  }
  return end;
}

/** A whole number past 2^31 (bytes of a long download). */
function putLargeInt(buf: Buffer, at: number, value: number): number {
  const high = Math.floor(value / 1e9);
  const low = value - high * 1e9;
  const end = putInt(buf, at, high);
  for (let i = end + 8, rest = low; i >= end; i--) {
    const next = (rest / 10) | 0;
    buf[i] = 0x30 + rest - next * 10;
    rest = next;
  }
  return end + 9;
}

/** Milliseconds with three decimals, from whole microseconds: `12.046`. */
function putMs(buf: Buffer, at: number, value: number): number {
  const us = Math.round(value * 1000);
  if (!(Number.isSafeInteger(us) && us >= 0)) return at + buf.write(String(value), at, 'latin1');
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  const end = putInt(buf, at, whole);
  buf[end] = 0x2e;
  buf[end + 1] = 0x30 + Math.floor(frac / 100);
  buf[end + 2] = 0x30 + (Math.floor(frac / 10) % 10);
  buf[end + 3] = 0x30 + (frac % 10);
  return end + 4;
}

// A key (with its opening quote for plain values) and its value; nothing when the value is undefined.
function plainField(buf: Buffer, at: number, key: Buffer, value: string | undefined): number {
  return value === undefined ? at : putPlain(buf, putBytes(buf, at, key), value);
}
function stringField(buf: Buffer, at: number, key: Buffer, value: string | undefined): number {
  return value === undefined ? at : putString(buf, putBytes(buf, at, key), value);
}
function intField(buf: Buffer, at: number, key: Buffer, value: number | undefined): number {
  return value === undefined ? at : putInt(buf, putBytes(buf, at, key), value);
}
function msField(buf: Buffer, at: number, key: Buffer, value: number | undefined): number {
  return value === undefined ? at : putMs(buf, putBytes(buf, at, key), value);
}

/**
 * The most bytes the line of `r` can take: the fixed part with every key and number, and six
 * bytes per character of a string (a control escaped as `\\u001f`; UTF-8 takes at most three).
 */
export function lineBound(r: AccessRecord, timestamp: string): number {
  const strings =
    timestamp.length +
    r.requestId.length +
    r.client.length +
    (r.method?.length ?? 0) +
    (r.host?.length ?? 0) +
    (r.path?.length ?? 0) +
    (r.pool?.length ?? 0) +
    (r.backend?.length ?? 0) +
    (r.backendAddress?.length ?? 0) +
    (r.cache?.length ?? 0) +
    (r.error?.length ?? 0) +
    (r.detail?.length ?? 0) +
    (r.userAgent?.length ?? 0) +
    (r.referer?.length ?? 0);
  return 1024 + 6 * strings;
}

// Pieces of the line that repeat from line to line are encoded once and copied whole: the start
// of the line is the same for every line of a millisecond, and a backend's part for every line it
// answers. That is about half of a line's bytes, which then need no check character by character.

/** The line up to the request id's value, for one timestamp and type. */
class LineStarts {
  private timestamp = '';
  private access: Buffer | undefined;
  private rejected: Buffer | undefined;

  get(timestamp: string, type: AccessRecord['type']): Buffer {
    if (timestamp !== this.timestamp) {
      this.timestamp = timestamp;
      this.access = undefined;
      this.rejected = undefined;
    }
    if (type === 'access') {
      this.access ??= lineStart(timestamp, accessType);
      return this.access;
    }
    this.rejected ??= lineStart(timestamp, rejectedType);
    return this.rejected;
  }
}

function lineStart(timestamp: string, type: Buffer): Buffer {
  const out = Buffer.allocUnsafe(lineStartKey.length + timestamp.length + type.length);
  // An ISO time: ASCII digits and separators only.
  putBytes(out, putAscii(out, putBytes(out, 0, lineStartKey), timestamp), type);
  return out;
}

/** A backend's `,"pool":…,"backend":…,"backendAddress":…`, by its address. */
interface BackendPart {
  readonly pool: string;
  readonly backend: string;
  readonly bytes: Buffer;
}

/** Backends change with the config only: a bound keeps this a cache whatever the records hold. */
const maxBackendParts = 1024;

class BackendParts {
  private readonly byAddress = new Map<string, BackendPart>();

  get(pool: string, backend: string, address: string): Buffer {
    const known = this.byAddress.get(address);
    if (known !== undefined && known.pool === pool && known.backend === backend) return known.bytes;
    if (this.byAddress.size >= maxBackendParts) this.byAddress.clear();
    const scratch = Buffer.allocUnsafe(1024 + 6 * (pool.length + backend.length + address.length));
    let end = plainField(scratch, 0, keys.pool, pool);
    end = stringField(scratch, end, keys.backend, backend);
    end = plainField(scratch, end, keys.backendAddress, address);
    const bytes = Buffer.from(scratch.subarray(0, end));
    this.byAddress.set(address, { pool, backend, bytes });
    return bytes;
  }
}

const lineStarts = new LineStarts();
const backendParts = new BackendParts();

/**
 * Writes the line of `r` (newline included) into `buf` at `at`, which must have `lineBound` bytes
 * of room; returns where it ends. Fields that are undefined are left out. Values a client or the
 * config can shape are escaped; those Sluice made or checked strictly (the client's IP, the
 * method, a token by the parser; pool names, addresses, cache results and error kinds) are not.
 */
export function writeAccessLine(buf: Buffer, at: number, r: AccessRecord, timestamp: string): number {
  let i = putPart(buf, at, lineStarts.get(timestamp, r.type));
  i = putString(buf, i, r.requestId);
  i = plainField(buf, i, keys.client, r.client);
  i = intField(buf, i, keys.clientPort, r.clientPort);
  i = plainField(buf, i, keys.method, r.method);
  i = stringField(buf, i, keys.host, r.host);
  i = stringField(buf, i, keys.path, r.path);
  i = plainField(buf, i, keys.protocol, r.protocol);
  i = intField(buf, i, keys.status, r.status);
  const { pool, backend, backendAddress } = r;
  if (pool !== undefined && backend !== undefined && backendAddress !== undefined)
    i = putPart(buf, i, backendParts.get(pool, backend, backendAddress));
  else {
    i = plainField(buf, i, keys.pool, pool);
    i = stringField(buf, i, keys.backend, backend);
    i = plainField(buf, i, keys.backendAddress, backendAddress);
  }
  i = intField(buf, i, keys.backendStatus, r.backendStatus);
  i = intField(buf, i, keys.attempts, r.attempts);
  i = intField(buf, i, keys.bytesIn, r.bytesIn);
  i = intField(buf, i, keys.bytesOut, r.bytesOut);
  i = msField(buf, i, keys.durationMs, r.durationMs);
  i = msField(buf, i, keys.upstreamMs, r.upstreamMs);
  i = plainField(buf, i, keys.cache, r.cache);
  i = plainField(buf, i, keys.error, r.error);
  i = stringField(buf, i, keys.detail, r.detail);
  i = stringField(buf, i, keys.userAgent, r.userAgent);
  i = stringField(buf, i, keys.referer, r.referer);
  if (r.truncated) i = putBytes(buf, i, keys.truncated);
  return putBytes(buf, i, lineEnd);
}

/** The fields a client shapes: what a line too long for its destination gives up, longest first. */
const cuttable = ['path', 'userAgent', 'referer', 'detail', 'host', 'requestId'] as const;

/**
 * Writes into `buf` (`lineBound(r)` bytes of room) the line of `r` with its longest
 * client-shaped fields cut until the line takes at most `max` bytes, marked `"truncated":true`
 * (as HAProxy cuts a line at `log-max-len`); returns where it ends. What is left when every such
 * field is empty is Sluice's own and short.
 */
export function fitLine(buf: Buffer, r: AccessRecord, timestamp: string, max: number): number {
  const fitted: AccessRecord = { ...r, truncated: true };
  for (;;) {
    const end = writeAccessLine(buf, 0, fitted, timestamp);
    let longest: (typeof cuttable)[number] | undefined;
    for (const key of cuttable)
      if ((fitted[key]?.length ?? 0) > (longest === undefined ? 0 : (fitted[longest]?.length ?? 0)))
        longest = key;
    if (end <= max || longest === undefined) return end;
    const value = fitted[longest] as string;
    // A character takes at least one byte: cutting the excess in characters cuts at least as many bytes.
    fitted[longest] = value.slice(0, Math.max(0, value.length - (end - max)));
  }
}

export class AccessLog {
  readonly writer: LogWriter;
  /** The longest line the destination takes whole (see `LogWriter.atomicBytes`). */
  private readonly maxLine: number;
  /** The time of the last line, and its ISO string. */
  private stampedAt = 0;
  private stamp = '';
  /** The second of `stampedAt`, and the ISO string of it to the dot (`2026-11-28T09:00:00.`). */
  private secondAt = 0;
  private secondStamp = '';

  /** `maxLine`: lines longer than this are cut to fit (`fitLine`). */
  constructor(writer: LogWriter, maxLine = Number.POSITIVE_INFINITY) {
    this.writer = writer;
    this.maxLine = maxLine;
  }

  /**
   * `shared`: other processes write to the same stdout (workers); there a line must be one
   * atomic write, or two workers' lines could interleave mid-line.
   */
  static open(config: AccessLogConfig, onError?: LogWriterOptions['onError'], shared = false): AccessLog {
    const writer = new LogWriter({
      destination: config.to === 'stdout' ? { kind: 'stdout' } : { kind: 'file', path: config.to },
      bufferBytes: config.buffer,
      flushMs: config.flush,
      ...(onError ? { onError } : {}),
    });
    return new AccessLog(writer, shared ? writer.atomicBytes : undefined);
  }

  record(r: AccessRecord): void {
    const timestamp = this.timestamp();
    const bound = lineBound(r, timestamp);
    const at = this.writer.reserve(bound);
    if (at >= 0) {
      const end = writeAccessLine(this.writer.buffer, at, r, timestamp);
      if (end - at <= this.maxLine) {
        this.writer.commit(end);
        return;
      }
    }
    // Longer than the whole buffer, or than one atomic write: written out on its own.
    const line = Buffer.allocUnsafe(bound);
    let end = writeAccessLine(line, 0, r, timestamp);
    if (end > this.maxLine) end = fitLine(line, r, timestamp, this.maxLine);
    this.writer.write(line.subarray(0, end));
  }

  /** The ISO time of now, made once per millisecond (the date and time to the second once per second). */
  private timestamp(): string {
    const now = Date.now();
    if (now !== this.stampedAt) {
      this.stampedAt = now;
      const second = now - (now % 1000);
      if (second !== this.secondAt) {
        this.secondAt = second;
        this.secondStamp = new Date(second).toISOString().slice(0, 20);
      }
      const ms = now - second;
      this.stamp = `${this.secondStamp}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
    }
    return this.stamp;
  }
}

/** The access log `config` asks for; a file that cannot be opened is the config's problem, named by its key. */
export function openAccessLog(
  config: AccessLogConfig,
  onError?: LogWriterOptions['onError'],
  shared = false,
): AccessLog {
  try {
    return AccessLog.open(config, onError, shared);
  } catch (error) {
    const why = systemErrorText(error as Error);
    throw new ConfigError([`accessLog.to: cannot open ${JSON.stringify(config.to)}: ${why}`]);
  }
}
