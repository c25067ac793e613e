// The ground an exchange stands on (src/proxy/exchange.ts holds its state machine): what it
// knows about its request and its answer, and the ways it ends. It answers itself (an error of
// Sluice's own, or a stale copy from the cache), cuts an answer short, or finishes: hands the
// backend connection back or closes it, counts and logs the request, and tells the Downstream
// whether the connection carries on.
import { performance } from 'node:perf_hooks';
import type { CacheFlow } from '../cache/proxy-cache.ts';
import { NONE, requestFraming } from '../http/framing.ts';
import { HttpError, headerValue, type RequestHead } from '../http/message.ts';
import { withHead } from '../http/one-write.ts';
import { plainResponse } from '../http/responses.ts';
import type { UpstreamAttempt } from '../upstream/attempt.ts';
import type { Backend } from '../upstream/backend.ts';
import type { Failure } from '../upstream/failure.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { ClientHold } from './client-hold.ts';
import type { ProxyContext } from './context.ts';
import type { Downstream } from './downstream.ts';
import { type ExchangeRecord, report } from './exchange-report.ts';
import { requestIdOf } from './forwarding.ts';
import { RequestBody } from './request-body.ts';
import type { RelayOutput, ResponseRelay } from './response-relay.ts';
import { type AttemptFailure, type RetryHooks, RetrySchedule } from './retry-schedule.ts';

/** Methods whose requests may be sent twice (RFC 9110 9.2.2). */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export type ExchangeState =
  | 'admit'
  | 'cacheWait'
  | 'attempt'
  | 'backoff'
  | 'relay'
  | 'tunnel'
  | 'answer'
  | 'done';

export abstract class ExchangeCore implements RetryHooks, ExchangeRecord, RelayOutput {
  protected readonly client: Downstream;
  protected readonly context: ProxyContext;
  readonly request: RequestHead;
  readonly requestId: string;
  readonly startedAt = performance.now();
  protected current: ExchangeState = 'admit';
  /** Keep the client connection open after this exchange. */
  protected keepClient: boolean;
  body: RequestBody;
  /** Why the request's framing cannot be read (answered with 400 at start), if it cannot. */
  protected malformed: unknown;
  pool: BackendPool | undefined;
  protected upstreamHead = '';
  protected upgrade: string | undefined;
  protected attempt: UpstreamAttempt | undefined;
  /** Made at the first failure: most requests never need one. */
  protected retries: RetrySchedule | undefined;
  protected tried: Set<Backend> | undefined;
  attempts = 0;
  /** Some attempt wrote the request to a backend: from then on only idempotent requests are resent. */
  protected sentToBackend = false;
  protected lastFailureStatus = 502;
  /** The backend of the latest attempt, which the request's metrics are counted against. */
  lastBackend: Backend | undefined;
  firstByteAt = 0;
  /** The status the backend answered with (the client may get another: a 304 from the cache …). */
  backendStatus: number | undefined;
  protected relay: ResponseRelay | undefined;
  /** An answer of Sluice's own or from the cache went out. */
  protected answered = false;
  /** A backend's 1xx went to the client: another backend's answer must not follow it. */
  protected interimSent = false;
  /** A backend's answer under way that counts for it in its passive check once it is whole. */
  protected answering = false;
  status = 0;
  bytesOut = 0;
  error: string | undefined;
  /** The shared cache, on routes with `cache: true` only (src/cache/proxy-cache.ts). */
  cache: CacheFlow | undefined;
  /** A cached answer waits for the client to read it: bytes still queued at the last look. */
  protected drainMark: number | undefined;
  /** When the backend was paused for the client (./client-hold.ts); made at the first pause. */
  private hold: ClientHold | undefined;

  constructor(client: Downstream, context: ProxyContext, request: RequestHead) {
    this.client = client;
    this.context = context;
    this.request = request;
    this.requestId = requestIdOf(request.headers);
    this.keepClient = client.wantsKeepAlive(request);
    let framing = NONE;
    try {
      framing = requestFraming(request);
    } catch (error) {
      this.malformed = error;
    }
    const { maxBody, replayBody } = context.config.limits;
    this.body = new RequestBody(framing, maxBody, replayBody);
  }

  protected schedule(): RetrySchedule {
    if (this.retries === undefined) {
      const { attempts, backoffMin, backoffMax } = this.context.config.retries;
      this.retries = new RetrySchedule(this, { attempts, minMs: backoffMin, maxMs: backoffMax });
    }
    return this.retries;
  }

  get state(): ExchangeState {
    return this.current;
  }

  get clientAddress(): string {
    return this.client.address;
  }

  get clientPort(): number | undefined {
    return this.client.port;
  }

  /** A head went to the client: failures can only cut the answer short now. */
  protected get headSent(): boolean {
    return this.answered || (this.relay?.headSent ?? false);
  }

  /** Writes the answer the cache made and ends the exchange, or waits for the client to take it. */
  protected answerFromCache(): void {
    const cache = this.cache;
    if (!cache || this.current === 'done') return;
    this.current = 'answer';
    this.attempt?.close(true);
    if (this.context.draining) this.keepClient = false;
    const oneWrite = this.context.config.limits.oneWrite;
    const answer = cache.renderJoined(this.keepClient, oneWrite) ?? cache.render(this.keepClient);
    this.status = answer.status;
    this.answered = true;
    if (!this.client.gone) {
      if ('bytes' in answer) this.client.write(answer.bytes);
      else if (answer.bodyBytes <= oneWrite) this.client.write(withHead(answer.head, answer.body));
      else this.client.writeAll(answer.head, answer.body);
    }
    // Head and body, as a relayed answer counts them.
    this.bytesOut += 'bytes' in answer ? answer.bytes.length : answer.head.length + answer.bodyBytes;
    if (!this.client.needsDrain) {
      this.finish(true);
      return;
    }
    // Backpressure: the next request waits until the client has read this answer.
    this.drainMark = this.client.queued;
    this.client.arm('idle');
  }

  /**
   * Writes to the client; a full socket pauses the backend, and the client's clock runs until it
   * drains (timeouts.clientIdle, as nginx's send_timeout): the backend is not late while paused.
   */
  send(data: Buffer | string): void {
    if (this.client.gone) return;
    const flushed = this.client.write(data);
    this.bytesOut += data.length;
    this.hold?.sent(data.length);
    if (!flushed) {
      this.attempt?.pause();
      if (this.attempt) {
        this.hold ??= new ClientHold();
        this.hold.held(performance.now());
      }
      this.cache?.backendPaused(true);
      this.client.arm('idle');
    }
  }

  /** The client drained its socket: the backend flows again, on its own clock. */
  protected release(): void {
    this.attempt?.resume();
    this.hold?.released(performance.now());
    this.cache?.backendPaused(false);
  }

  protected mayReplay(): boolean {
    return (
      idempotentMethods.has(this.request.method) ||
      headerValue(this.request.headers, 'idempotency-key') !== undefined
    );
  }

  /** Counts a failure against the backend of the latest attempt. */
  protected backendError(kind: string): void {
    this.lastBackend?.metrics.error(kind);
  }

  /** Tells the backend's passive health check how this attempt went. */
  protected reportOutcome(ok: boolean): void {
    const pool = this.pool;
    if (pool && this.attempt) this.attempt.backend.reportOutcome(ok, pool.canEject);
  }

  /** Answers the client with an error of Sluice's own if nothing was sent yet, else aborts. */
  protected failWith(status: number, message: string): void {
    if (this.headSent) {
      this.abort(this.error ?? 'failed');
      return;
    }
    // A stale copy may answer instead (stale-if-error, every backend down).
    const fallback = this.cache?.onFailure();
    if (fallback === 'stale') {
      if (this.attempt) this.attempt.reusable = false;
      this.answerFromCache();
      return;
    }
    // A stale copy that must be revalidated and could not be: 504 (RFC 9111 5.2.2.2), not 502.
    if (fallback === 'must-revalidate' && status >= 502 && status <= 504) {
      status = 504;
      message = `stored copy must be revalidated: ${message}`;
    }
    this.status = status;
    this.current = 'answer';
    if (!this.body.complete) this.keepClient = false;
    const answer = plainResponse(status, message, {
      close: !this.keepClient,
      head: this.request.method === 'HEAD',
      extra: this.cache?.headerLine,
    });
    this.client.write(answer);
    this.bytesOut += answer.length;
    this.answered = true;
    this.finish(false);
  }

  /** A response Sluice makes before any backend is involved. Returns bytes of body consumed (none). */
  protected localResponse(status: number, message: string, reason: string): number {
    this.error = reason;
    this.failWith(status, message);
    return 0;
  }

  protected rejectRequest(error: unknown): number {
    const status = error instanceof HttpError ? error.status : 400;
    this.keepClient = false;
    this.body.complete = false;
    return this.localResponse(status, error instanceof Error ? error.message : 'bad request', 'bad_request');
  }

  protected abortOrReject(error: unknown): void {
    if (this.headSent) this.abort('bad_request_body');
    else {
      this.keepClient = false;
      this.body.complete = false;
      this.error = 'bad_request_body';
      this.status = error instanceof HttpError ? error.status : 400;
      this.failWith(this.status, error instanceof Error ? error.message : 'bad request');
    }
  }

  /**
   * This machine ran out of something (EMFILE …): 503, counted as a local error only, never
   * against the backend, and no other backend tried (it would fail the same way).
   */
  protected localFailure(failure: Failure): void {
    this.context.metrics?.localError(failure.local as string);
    this.context.logger.warn('local resource error', { requestId: this.requestId, error: failure.local });
    this.error = `local_${(failure.local as string).toLowerCase()}`;
    this.attempt?.close(false);
    this.failWith(failure.status, failure.message);
  }

  /**
   * Whether an unfinished body was the client's to send when a deadline passed: yes unless the
   * backend stopped taking it. Also when the client sent `Expect: 100-continue` and the backend
   * never said Continue: a client must not wait for it indefinitely (RFC 9110 10.1.1), and many
   * servers wait for the body without one, so that silence is not counted against the backend.
   */
  protected awaitingClient(attempt: UpstreamAttempt): boolean {
    return !attempt.backlogged;
  }

  /** The client waits for a 100 Continue before it sends its body. */
  protected get expectsContinue(): boolean {
    return headerValue(this.request.headers, 'expect')?.toLowerCase() === '100-continue';
  }

  /** The client did not send its body in time: 408, never counted against the backend. */
  protected clientTooSlow(): void {
    this.error = 'client_body_timeout';
    this.context.metrics?.rejected('client_body_timeout');
    this.keepClient = false;
    this.failWith(408, 'request body not received in time');
  }

  /** Gives up mid-response: the client sees a truncated answer, never a hang, never a whole-looking one. */
  protected abort(reason: string): void {
    this.error ??= reason;
    this.keepClient = false;
    if (this.relay?.closeDelimited) this.client.reset();
    else this.client.destroy();
    this.finish(false);
  }

  /**
   * The backend closed or reset after its head went to the client. When it gave up on writes
   * Sluice held back for a client that did not read (./client-hold.ts), that is the client's
   * doing: the answer is cut all the same, but nothing is counted against the backend.
   */
  protected closedMidResponse(kind: string): void {
    if (this.hold?.blamesClient(performance.now())) {
      this.answering = false;
      this.abort('client_not_reading');
    } else this.failedMidResponse(kind);
  }

  /** The backend failed after its head went to the client: counted, told to its passive check, cut. */
  protected failedMidResponse(kind: string): void {
    this.answering = false;
    this.backendError(kind);
    this.reportOutcome(false);
    this.abort(kind);
  }

  protected finish(success: boolean): void {
    if (this.current === 'done') return;
    this.current = 'done';
    this.retries?.cancel();
    const overrun = this.relay?.overrun ?? false;
    // Bytes past the answer's framing: nobody asked for them (see settling.ts).
    if (overrun) this.attempt?.backend.connections.sawUnasked();
    if (success && this.answering) this.reportOutcome(true);
    this.attempt?.close(success && !overrun && this.body.complete);
    this.body.release();
    this.cache?.done(success);
    try {
      report(this, this.context);
    } finally {
      // Whatever the logging did, the connection goes on: its next request is never left waiting.
      this.client.done(this.keepClient && (success || this.body.complete));
    }
  }

  abstract mayRetry(): boolean;
  abstract takeBudget(): boolean;
  abstract next(): void;
  abstract giveUp(failure: AttemptFailure): void;
}
