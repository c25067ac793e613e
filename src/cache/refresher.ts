// The background revalidation of stale-while-revalidate (RFC 5861 3): a small internal fetcher
// that sends one conditional GET through an UpstreamAttempt (src/upstream/attempt.ts: pooled
// connection, one fresh retry, reuse), reads the answer with Sluice's own reader and updates the
// store: a 304 freshens the entry, a storable 200 replaces it (bounded by maxObjectBytes,
// streamed into a CacheWriter), anything else that is not an error drops it (the origin no
// longer lets it be cached), and a 5xx or a failure leaves it for stale-if-error. No client
// waits on it; it gives up after `timeoutMs` in all. Failures count in
// sluice_backend_errors_total and, like real requests, in the passive health check.

import type { BodyFraming, RequestHead, ResponseHead } from '../http/message.ts';
import { type ResponseEvent, ResponseReader } from '../http/response-reader.ts';
import { type AttemptUser, UpstreamAttempt } from '../upstream/attempt.ts';
import { classify, type Failure } from '../upstream/failure.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { FlightOutcome } from './coalesce.ts';
import { updateFrom304 } from './conditionals.ts';
import { isStaleIfErrorStatus, prepareEntry, storageDecision } from './policy.ts';
import type { CacheEntry, CacheStore, CacheWriter } from './store.ts';

/** What a refresh needs of the proxy cache. */
export interface RefreshCache {
  readonly store: CacheStore;
  readonly config: { maxObjectBytes: number };
  readonly policy: Parameters<typeof storageDecision>[2];
  now(): number;
}

export interface RefreshJob {
  pool: BackendPool;
  /** The conditional GET, serialized for the backend. */
  head: string;
  /** The request it stands for (a GET without the client's conditionals): storage and Vary. */
  request: RequestHead;
  /** The stale entry being revalidated. */
  entry: CacheEntry;
  cache: RefreshCache;
  timeoutMs: number;
}

/** Runs one background revalidation; resolves with its outcome, never rejects. */
export function refresh(job: RefreshJob): Promise<FlightOutcome> {
  return new Promise((resolve) => new Refresh(job, resolve).start());
}

class Refresh implements AttemptUser {
  private readonly job: RefreshJob;
  private readonly resolve: (outcome: FlightOutcome) => void;
  private readonly reader = new ResponseReader('GET');
  private attempt: UpstreamAttempt | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writer: CacheWriter | undefined;
  private outcome: FlightOutcome = 'failed';
  private requestTime = 0;
  private received = false;
  private reusable = false;
  private settled = false;

  constructor(job: RefreshJob, resolve: (outcome: FlightOutcome) => void) {
    this.job = job;
    this.resolve = resolve;
  }

  start(): void {
    const backend = this.job.pool.pick(undefined);
    if (backend === undefined) {
      this.end();
      return;
    }
    const cache = this.job.cache;
    const clock = {
      get now(): number {
        return cache.now();
      },
    };
    this.attempt = new UpstreamAttempt(backend, this.job.head, 'GET', this, clock);
    this.timer = setTimeout(() => this.fail('response_timeout'), this.job.timeoutMs);
    this.timer.unref();
    this.attempt.start();
  }

  onConnecting(): void {}

  heldBody(): readonly Buffer[] {
    return [];
  }

  onSent(): void {
    this.requestTime = this.job.cache.now();
  }

  /** A conditional GET is safe to send again. */
  mayResend(): boolean {
    return true;
  }

  onReceiving(): void {
    this.received = true;
  }

  onInterim(): void {}

  onDrain(): void {}

  /** No tunnel here: a half-close ends the refresh's connection. */
  onEnd(): boolean {
    return false;
  }

  onHead(head: ResponseHead, framing: BodyFraming, rest: Buffer): void {
    this.received = true;
    this.reusable = this.attempt?.reusable ?? false;
    this.takeHead(head, framing);
    if (!this.settled) this.read(() => this.reader.body(framing, rest));
  }

  onBody(chunk: Buffer): void {
    if (!this.settled) this.read(() => this.reader.feed(chunk));
  }

  onFailure(failure: Failure): void {
    this.fail(failure.kind);
  }

  onClose(error: Error | undefined): void {
    if (this.settled) return;
    if (error === undefined) {
      try {
        for (const event of this.reader.finish()) if (event.type === 'end') this.complete(false);
        return;
      } catch {
        // Cut short: fall through.
      }
    }
    this.fail(classify(error, 'body').kind);
  }

  private read(events: () => ResponseEvent[]): void {
    let read: ResponseEvent[];
    try {
      read = events();
    } catch {
      this.fail('bad_response');
      return;
    }
    for (const event of read) {
      if (event.type === 'data') this.onData(event.chunk);
      else if (event.type === 'end') this.complete(event.rest.length === 0);
      if (this.settled) return;
    }
  }

  private takeHead(head: ResponseHead, framing: BodyFraming): void {
    const { cache, entry, request } = this.job;
    const now = cache.now();
    this.attempt?.backend.reportOutcome(head.status < 502 || head.status > 504, this.job.pool.canEject);
    if (head.status === 304) {
      const freshened = updateFrom304(entry, head, this.requestTime, now, cache.policy);
      if (freshened?.keep && cache.store.update(entry, freshened)) this.outcome = 'stored';
      else {
        cache.store.delete(entry);
        this.outcome = 'uncacheable';
      }
      return;
    }
    // An error keeps the stale copy for stale-if-error.
    if (isStaleIfErrorStatus(head.status)) return;
    const decision = storageDecision(request, head, cache.policy);
    if (decision.store && !(framing.kind === 'length' && framing.length > cache.config.maxObjectBytes)) {
      this.writer = cache.store.beginWrite(entry.key, prepareEntry(request, head, this.requestTime, now));
    } else {
      cache.store.delete(entry);
      this.outcome = 'uncacheable';
    }
  }

  private onData(chunk: Buffer): void {
    const writer = this.writer;
    if (writer === undefined || writer.write(chunk)) return;
    // Too large to keep: the stale copy is outdated, and reading on is wasted work.
    this.writer = undefined;
    this.job.cache.store.delete(this.job.entry);
    this.outcome = 'uncacheable';
    this.reusable = false;
    this.end();
  }

  private complete(clean: boolean): void {
    const writer = this.writer;
    this.writer = undefined;
    if (writer !== undefined) this.outcome = writer.commit() === undefined ? 'uncacheable' : 'stored';
    if (!clean) this.reusable = false;
    this.end();
  }

  private fail(kind: string): void {
    if (this.settled) return;
    const backend = this.attempt?.backend;
    // A local resource error (EMFILE …) is this machine's, never the backend's.
    if (kind !== 'local_resource') {
      backend?.metrics.error(kind);
      if (!this.received) backend?.reportOutcome(false, this.job.pool.canEject);
    }
    this.writer?.abort();
    this.writer = undefined;
    this.reusable = false;
    this.outcome = 'failed';
    this.end();
  }

  private end(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.attempt?.close(this.reusable);
    this.resolve(this.outcome);
  }
}
