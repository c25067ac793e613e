// The background revalidation of stale-while-revalidate (RFC 5861 3): a small internal fetcher
// that takes a connection from a backend's keep-alive pool, sends one conditional GET, reads the
// answer with Sluice's own parser and updates the store: a 304 freshens the entry, a storable
// 200 replaces it (bounded by maxObjectBytes, streamed into a CacheWriter), anything else that is
// not an error drops it (the origin no longer lets it be cached), and a 5xx or a failure leaves
// it for stale-if-error. No client waits on it; it gives up after `timeoutMs` in all. Failures
// count in sluice_backend_errors_total and, like real requests, in the passive health check.

import { connectionTokens } from '../http/hop-by-hop.ts';
import type { BodyFraming, RequestHead, ResponseHead } from '../http/message.ts';
import { ResponseReader } from '../http/response-reader.ts';
import type { Backend } from '../upstream/backend.ts';
import type { UpstreamConnection, UpstreamUser } from '../upstream/connection.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { FlightOutcome } from './coalesce.ts';
import { isStaleIfErrorStatus, prepareEntry, storageDecision, updateFrom304 } from './policy.ts';
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

class Refresh implements UpstreamUser {
  private readonly job: RefreshJob;
  private readonly resolve: (outcome: FlightOutcome) => void;
  private readonly parser = new ResponseReader('GET');
  private backend: Backend | undefined;
  private connection: UpstreamConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writer: CacheWriter | undefined;
  private outcome: FlightOutcome = 'failed';
  private requestTime = 0;
  private received = false;
  private reusable = false;
  private freshTried = false;
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
    this.backend = backend;
    backend.inFlight++;
    this.timer = setTimeout(() => this.fail('response_timeout'), this.job.timeoutMs);
    this.timer.unref();
    const idle = backend.connections.acquire();
    if (idle !== undefined) {
      this.attach(idle);
      this.send();
    } else this.open(backend);
  }

  private open(backend: Backend): void {
    const connection = backend.connections.connect((connected) => {
      if (this.connection === connected && !this.settled) this.send();
    });
    this.attach(connection);
  }

  private attach(connection: UpstreamConnection): void {
    connection.user = this;
    connection.requests++;
    this.connection = connection;
  }

  private send(): void {
    this.requestTime = this.job.cache.now();
    this.connection?.socket.write(this.job.head, 'latin1');
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.settled) return;
    this.received = true;
    let events: ReturnType<ResponseReader['feed']>;
    try {
      events = this.parser.feed(chunk);
    } catch {
      this.fail('bad_response');
      return;
    }
    for (const event of events) {
      if (event.type === 'head') this.onHead(event.head, event.framing);
      else if (event.type === 'data') this.onData(event.chunk);
      else if (event.type === 'end') this.complete(event.rest.length === 0);
      if (this.settled) return;
    }
  }

  onUpstreamClose(error: Error | undefined): void {
    if (this.settled) return;
    const connection = this.connection;
    // A kept-alive connection the backend closed just as it was reused: one fresh try.
    if (
      !this.received &&
      connection !== undefined &&
      connection.requests > 1 &&
      !this.freshTried &&
      this.backend
    ) {
      this.freshTried = true;
      this.connection = undefined;
      this.open(this.backend);
      return;
    }
    this.connection = undefined;
    if (error === undefined && this.received) {
      try {
        for (const event of this.parser.finish()) if (event.type === 'end') this.complete(false);
        return;
      } catch {
        // Cut short: fall through.
      }
    }
    this.fail(failureKind(error, this.received));
  }

  onUpstreamDrain(): void {}

  private onHead(head: ResponseHead, framing: BodyFraming): void {
    const { cache, entry, request } = this.job;
    const now = cache.now();
    this.backend?.reportOutcome(head.status < 502 || head.status > 504, this.job.pool.canEject);
    const tokens = connectionTokens(head.headers);
    this.reusable =
      framing.kind !== 'close' &&
      (head.versionMinor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive'));
    if (head.status === 304) {
      const freshened = updateFrom304(entry, head, this.requestTime, now, cache.policy);
      if (freshened !== undefined && cache.store.update(entry, freshened)) this.outcome = 'stored';
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
    this.backend?.metrics?.error(kind);
    if (!this.received) this.backend?.reportOutcome(false, this.job.pool.canEject);
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
    const connection = this.connection;
    const backend = this.backend;
    this.connection = undefined;
    if (connection !== undefined) {
      connection.user = undefined;
      if (this.reusable && backend !== undefined && !connection.closed) {
        if (connection.socket.isPaused()) connection.socket.resume();
        backend.connections.release(connection, this.job.cache.now());
      } else connection.destroy();
    }
    if (backend !== undefined) backend.inFlight--;
    this.resolve(this.outcome);
  }
}

function failureKind(error: Error | undefined, received: boolean): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (code === 'ETIMEDOUT') return 'connect_timeout';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'unreachable';
  return received ? 'closed_mid_response' : 'closed_before_response';
}
