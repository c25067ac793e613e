// The access log: one JSON line per finished request, built directly as a string (no logger
// format pipeline on the request path) and handed to a buffered writer (log-writer.ts).
// The process's own lines (start, stop, backend state changes) stay with winston.
import type { AccessLogConfig } from '../config/types.ts';
import { LogWriter } from './log-writer.ts';

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
}

/**
 * A character JSON does not allow raw in a string: `"`, `\\` or a control. One native regex
 * scan costs less than a JavaScript loop over the characters, most of all before V8 has
 * optimized the loop (thousands of requests after start).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const needsEscape = /["\\\x00-\x1f]/;

function str(value: string): string {
  return needsEscape.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/**
 * Milliseconds with three decimals, from whole microseconds: integers print far cheaper than
 * doubles (V8's shortest-decimal search is most of a double's cost).
 */
function ms(value: number): string {
  const us = Math.round(value * 1000);
  const whole = Math.trunc(us / 1000);
  const frac = us - whole * 1000;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/**
 * One line, newline included; fields that are undefined are left out. Values a client or the
 * config can shape are escaped; those Sluice made or checked strictly (the client's IP, the
 * method, a token by the parser; pool names, addresses, cache results and error kinds) are not.
 */
export function accessLine(r: AccessRecord, timestamp: string): string {
  let line = `{"timestamp":"${timestamp}","level":"info","message":"access","type":"${r.type}","requestId":${str(r.requestId)},"client":"${r.client}"`;
  if (r.clientPort !== undefined) line += `,"clientPort":${r.clientPort}`;
  if (r.method !== undefined) line += `,"method":"${r.method}"`;
  if (r.host !== undefined) line += `,"host":${str(r.host)}`;
  if (r.path !== undefined) line += `,"path":${str(r.path)}`;
  if (r.protocol !== undefined) line += `,"protocol":"${r.protocol}"`;
  line += `,"status":${r.status}`;
  if (r.pool !== undefined) line += `,"pool":"${r.pool}"`;
  if (r.backend !== undefined) line += `,"backend":${str(r.backend)}`;
  if (r.backendAddress !== undefined) line += `,"backendAddress":"${r.backendAddress}"`;
  if (r.backendStatus !== undefined) line += `,"backendStatus":${r.backendStatus}`;
  if (r.attempts !== undefined) line += `,"attempts":${r.attempts}`;
  if (r.bytesIn !== undefined) line += `,"bytesIn":${r.bytesIn}`;
  if (r.bytesOut !== undefined) line += `,"bytesOut":${r.bytesOut}`;
  if (r.durationMs !== undefined) line += `,"durationMs":${ms(r.durationMs)}`;
  if (r.upstreamMs !== undefined) line += `,"upstreamMs":${ms(r.upstreamMs)}`;
  if (r.cache !== undefined) line += `,"cache":"${r.cache}"`;
  if (r.error !== undefined) line += `,"error":"${r.error}"`;
  if (r.detail !== undefined) line += `,"detail":${str(r.detail)}`;
  if (r.userAgent !== undefined) line += `,"userAgent":${str(r.userAgent)}`;
  if (r.referer !== undefined) line += `,"referer":${str(r.referer)}`;
  return `${line}}\n`;
}

export class AccessLog {
  readonly writer: LogWriter;
  /** The time of the last line, and its ISO string. */
  private stampedAt = 0;
  private stamp = '';
  /** The second of `stampedAt`, and the ISO string of it to the dot (`2026-11-28T09:00:00.`). */
  private secondAt = 0;
  private secondStamp = '';

  constructor(writer: LogWriter) {
    this.writer = writer;
  }

  static open(config: AccessLogConfig): AccessLog {
    return new AccessLog(
      new LogWriter({
        destination: config.to === 'stdout' ? { kind: 'stdout' } : { kind: 'file', path: config.to },
        bufferBytes: config.buffer,
        flushMs: config.flush,
      }),
    );
  }

  record(r: AccessRecord): void {
    this.writer.write(accessLine(r, this.timestamp()));
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
