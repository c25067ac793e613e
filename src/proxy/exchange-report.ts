// What an exchange leaves behind when it ends: its count in the request metrics and its line in
// the access log.
import { performance } from 'node:perf_hooks';
import type { CacheFlow } from '../cache/proxy-cache.ts';
import { headerValue, type RequestHead } from '../http/message.ts';
import type { Backend } from '../upstream/backend.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { ProxyContext } from './context.ts';

/** The figures of a finished exchange. */
export interface ExchangeRecord {
  readonly request: RequestHead;
  readonly requestId: string;
  readonly clientAddress: string;
  readonly clientPort: number | undefined;
  readonly startedAt: number;
  readonly pool: BackendPool | undefined;
  readonly cache: CacheFlow | undefined;
  /** The backend of the latest attempt. */
  readonly lastBackend: Backend | undefined;
  readonly attempts: number;
  readonly status: number;
  readonly firstByteAt: number;
  /** The status the backend answered with, if one did. */
  readonly backendStatus: number | undefined;
  readonly body: { readonly bytesIn: number };
  readonly bytesOut: number;
  readonly error: string | undefined;
}

export function report(record: ExchangeRecord, context: ProxyContext): void {
  const endedAt = performance.now();
  countRequest(record, endedAt, context);
  logAccess(record, endedAt, context);
}

/**
 * Counted when the request ends: against the backend that answered, the pool's `(cache)` or
 * `(none)` when no backend did, or as a rejection when it never reached a pool (404, 413 …).
 */
function countRequest(record: ExchangeRecord, endedAt: number, { metrics }: ProxyContext): void {
  const seconds = (endedAt - record.startedAt) / 1000;
  const pool = record.pool?.name;
  const target = record.cache?.answered
    ? pool === undefined
      ? undefined
      : metrics?.poolRequests(pool, '(cache)')
    : (record.lastBackend?.metrics ??
      (pool === undefined ? undefined : metrics?.poolRequests(pool, '(none)')));
  if (target) {
    const ttfb = record.firstByteAt === 0 ? undefined : (record.firstByteAt - record.startedAt) / 1000;
    target.requestFinished(
      record.request.method,
      record.status,
      seconds,
      record.body.bytesIn,
      record.bytesOut,
      ttfb,
    );
  } else metrics?.rejected(record.error ?? 'local');
}

function logAccess(record: ExchangeRecord, endedAt: number, { accessLog }: ProxyContext): void {
  if (!accessLog) return;
  const { request, lastBackend } = record;
  const headers = request.headers;
  accessLog.record({
    // Answered without any backend or cache: Sluice refused it (400, 404, 413, 501 …).
    type: record.attempts === 0 && !record.cache?.answered ? 'rejected' : 'access',
    requestId: record.requestId,
    client: record.clientAddress,
    clientPort: record.clientPort,
    method: request.method,
    host: headerValue(headers, 'host'),
    path: request.target,
    protocol: request.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0',
    status: record.status,
    pool: record.pool?.name,
    backend: lastBackend?.name,
    backendAddress: lastBackend?.address,
    backendStatus: record.backendStatus,
    attempts: record.attempts,
    bytesIn: record.body.bytesIn,
    bytesOut: record.bytesOut,
    durationMs: endedAt - record.startedAt,
    upstreamMs: record.firstByteAt === 0 ? undefined : record.firstByteAt - record.startedAt,
    cache: record.cache?.result,
    error: record.error,
    userAgent: headerValue(headers, 'user-agent'),
    referer: headerValue(headers, 'referer'),
  });
}
