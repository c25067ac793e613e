// One request/response exchange, as a state machine with one state value. It admits and routes
// the request, consults the cache, runs backend attempts (src/upstream/attempt.ts) with retries
// (./retry-schedule.ts), relays the response (./response-relay.ts) or a tunnel, and answers
// itself when nothing else can. It talks to the client only through a Downstream (./downstream.ts).
//
//   admit ─┬─ cacheWait ─┐
//          ├─────────────┴─ attempt ─┬─ relay ── done
//          │        ▲                ├─ tunnel ─ done
//          │        └── backoff ◄────┤
//          └─ answer (local or cached) ──────── done
//
// Events: a response head, an attempt failure, the relay's end, a deadline, the client gone;
// each is one switch on the state.
import { performance } from 'node:perf_hooks';
import type { CacheFlow, CacheStep } from '../cache/proxy-cache.ts';
import { requestFraming } from '../http/framing.ts';
import { connectionTokens } from '../http/hop-by-hop.ts';
import {
  type BodyFraming,
  type HeaderField,
  HttpError,
  headerValue,
  type RequestHead,
  type ResponseHead,
} from '../http/message.ts';
import { withHead } from '../http/one-write.ts';
import {
  clientResponseHead,
  interimHead,
  responseMode,
  switchingProtocolsHead,
} from '../http/response-heads.ts';
import { plainResponse } from '../http/responses.ts';
import { type AttemptUser, UpstreamAttempt } from '../upstream/attempt.ts';
import type { Backend } from '../upstream/backend.ts';
import { classify, connectTimeout, type Failure, responseTimeout } from '../upstream/failure.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { ProxyContext } from './context.ts';
import type { Downstream } from './downstream.ts';
import { type ExchangeRecord, report } from './exchange-report.ts';
import { requestIdOf } from './forwarding.ts';
import { type UpstreamRequest, upstreamRequestHead } from './heads.ts';
import { RequestBody } from './request-body.ts';
import { type RelayProgress, ResponseRelay } from './response-relay.ts';
import { AttemptFailure, RetrySchedule } from './retry-schedule.ts';

/** Methods whose requests may be sent twice (RFC 9110 9.2.2). */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** A request body up to this size is kept so the request can be replayed on another backend. */
const replayLimit = 64 * 1024;
/** A body up to this size goes to the client in the same write as its head. */
const oneWriteLimit = 16 * 1024;
/** The bounds of the jittered backoff between retries (ms). */
const backoff = { minMs: 25, maxMs: 250 };

export type ExchangeState =
  | 'admit'
  | 'cacheWait'
  | 'attempt'
  | 'backoff'
  | 'relay'
  | 'tunnel'
  | 'answer'
  | 'done';

export class Exchange implements AttemptUser, ExchangeRecord {
  private readonly client: Downstream;
  private readonly context: ProxyContext;
  readonly request: RequestHead;
  readonly requestId: string;
  readonly startedAt = performance.now();
  private current: ExchangeState = 'admit';
  /** Keep the client connection open after this exchange. */
  private keepClient: boolean;
  body = new RequestBody({ kind: 'none' }, null, 0);
  pool: BackendPool | undefined;
  private upstreamHead = '';
  private upgrade: string | undefined;
  private attempt: UpstreamAttempt | undefined;
  private readonly retries: RetrySchedule;
  private tried: Set<Backend> | undefined;
  attempts = 0;
  /** Some attempt wrote the request to a backend: from then on only idempotent requests are resent. */
  private sentToBackend = false;
  private lastFailureStatus = 502;
  /** The backend of the latest attempt, which the request's metrics are counted against. */
  lastBackend: Backend | undefined;
  firstByteAt = 0;
  private relay: ResponseRelay | undefined;
  /** An answer of Sluice's own or from the cache went out. */
  private answered = false;
  status = 0;
  bytesOut = 0;
  error: string | undefined;
  /** The shared cache, on routes with `cache: true` only (src/cache/proxy-cache.ts). */
  cache: CacheFlow | undefined;
  /** A cached answer waits for the client to read it: bytes still queued at the last look. */
  private drainMark: number | undefined;

  constructor(client: Downstream, context: ProxyContext, request: RequestHead) {
    this.client = client;
    this.context = context;
    this.request = request;
    this.requestId = requestIdOf(request.headers);
    this.keepClient = client.wantsKeepAlive(request);
    this.retries = new RetrySchedule(this, { attempts: context.config.retries.attempts, ...backoff });
  }

  get state(): ExchangeState {
    return this.current;
  }

  get clientAddress(): string {
    return this.client.address;
  }

  /** A head went to the client: failures can only cut the answer short now. */
  private get headSent(): boolean {
    return this.answered || (this.relay?.headSent ?? false);
  }

  /**
   * Starts the exchange with the bytes that followed the head. Returns how many of them belong to
   * this request's body; the rest is the next pipelined request.
   */
  start(rest: Buffer): number {
    const { context, request } = this;
    let framing: BodyFraming;
    try {
      framing = requestFraming(request);
    } catch (error) {
      return this.rejectRequest(error);
    }
    const maxBody = context.config.limits.maxBody;
    this.body = new RequestBody(framing, maxBody, replayLimit);
    if (maxBody !== null && framing.kind === 'length' && framing.length > maxBody)
      return this.localResponse(413, 'request body too large', 'body_too_large');

    // A reverse proxy opens no tunnels to arbitrary hosts.
    if (request.method === 'CONNECT') return this.localResponse(501, 'CONNECT is not supported', 'connect');
    const host = headerValue(request.headers, 'host');
    const match = context.router.match(host, request.target);
    if (!match) return this.localResponse(404, 'no route for this host and path', 'no_route');
    const pool = context.pools.get(match.route.pool);
    if (!pool) return this.localResponse(503, 'no backend available', 'no_pool');
    this.pool = pool;

    const tokens = connectionTokens(request.headers);
    const upgradeValue = headerValue(request.headers, 'upgrade');
    if (upgradeValue !== undefined && tokens.includes('upgrade') && request.versionMinor === 1) {
      this.upgrade = upgradeValue;
    }
    const upstream: UpstreamRequest = {
      head: request,
      connectionTokens: tokens,
      framing,
      route: match.route,
      path: match.path,
      authority: absoluteAuthority(request.target),
      upgrade: this.upgrade,
      forwarding: {
        clientAddress: this.client.address,
        trusted: this.client.trusted,
        host,
        requestId: this.requestId,
      },
    };
    if (match.route.cache && context.cache) {
      // The upstream head is made only when the request goes to a backend (cacheStep).
      const eligible = framing.kind === 'none' && this.upgrade === undefined;
      this.cache = context.cache.open(
        request,
        pool,
        (head) => upstreamRequestHead({ ...upstream, head }),
        eligible,
      );
    } else this.upstreamHead = upstreamRequestHead(upstream);

    let used = 0;
    if (rest.length > 0 && !this.body.complete) used = this.onClientBody(rest);
    if (this.current === 'done') return used;
    // A body waits in the client socket until the backend connection is ready (bounded memory);
    // without one, nothing needs pausing (pipelined requests queue in the client connection).
    if (!this.body.complete) this.client.pause();
    if (this.cache) this.cacheStep(this.cache.begin());
    else {
      pool.retryBudget.recordRequest(context.clock.now);
      this.connectNext();
    }
    return used;
  }

  // Events.

  /** The deadline the current state armed passed. */
  expire(): void {
    switch (this.current) {
      case 'attempt':
        if (this.attempt?.sent) this.onFailure(responseTimeout);
        else this.onFailure(connectTimeout);
        return;
      case 'relay':
        if (this.relay?.held) this.heldHeadFailed(responseTimeout, true);
        else this.abort('response_timeout');
        return;
      case 'tunnel':
        this.abort('tunnel_idle');
        return;
      case 'answer':
        if (this.drainMark === undefined) return;
        if (this.client.queued < this.drainMark) {
          // A cached answer still reaching a slow client: it moves, so it gets more time.
          this.drainMark = this.client.queued;
          this.client.arm('idle');
        } else this.abort('response_timeout');
        return;
      case 'admit':
      case 'cacheWait':
      case 'backoff':
      case 'done':
        // No deadline is armed here: a backoff and a coalesced wait are bounded by themselves.
        return;
    }
  }

  /** The client connection closed under us. */
  onClientGone(): void {
    if (this.current === 'done') return;
    this.error ??= 'client_closed';
    this.status ||= 499;
    this.finish(false);
  }

  /** A failure of the current attempt before its final head (from it, or its deadline). */
  onFailure(failure: Failure): void {
    if (this.current !== 'attempt') return;
    const retry =
      failure.retry === 'safe' ||
      (failure.retry === 'idempotent' && this.body.replayable && this.mayReplay());
    if (retry) {
      this.attemptFailed(failure);
      return;
    }
    this.error = failure.kind;
    this.backendError(failure.kind);
    this.reportOutcome(false);
    this.failWith(failure.status, failure.message);
  }

  /** The final head (or a 101) of the current attempt. */
  onHead(head: ResponseHead, framing: BodyFraming, rest: Buffer): void {
    if (this.current !== 'attempt') return;
    if (head.status !== 101) this.beginResponse(head, framing, rest);
    else if (this.upgrade !== undefined) this.startTunnel(head, rest);
    else {
      this.error = 'unexpected_upgrade';
      this.failWith(502, 'backend switched protocols unasked');
    }
  }

  /** Response bytes after the head: relayed, or passed through the tunnel. */
  onBody(chunk: Buffer): void {
    switch (this.current) {
      case 'relay':
        this.client.arm('response');
        this.relayed(this.relay?.feed(chunk) ?? 'done');
        return;
      case 'tunnel':
        this.client.arm('idle');
        this.send(chunk);
        return;
      default:
        return;
    }
  }

  /** The backend connection ended after the head. */
  onClose(error: Error | undefined): void {
    switch (this.current) {
      case 'tunnel':
        this.client.end();
        this.finish(false);
        return;
      case 'relay': {
        const relay = this.relay;
        if (relay?.held) this.heldHeadFailed(classify(error, 'held'), false);
        else if (error === undefined && relay?.closeEnds()) this.finish(true);
        else {
          const { kind } = classify(error, 'body');
          this.backendError(kind);
          this.abort(kind);
        }
        return;
      }
      default:
        return;
    }
  }

  // The client side.

  /** Whether bytes the client sends now belong to this exchange (its body or its tunnel). */
  get consumesClientBytes(): boolean {
    return this.current === 'tunnel' || (!this.body.complete && this.current !== 'done');
  }

  /** Takes body (or tunnel) bytes from the client; returns how many belonged to this request. */
  onClientBody(chunk: Buffer): number {
    if (this.current === 'tunnel') {
      this.client.arm('idle');
      if (this.attempt && !this.attempt.write(chunk)) this.client.pause();
      return chunk.length;
    }
    let piece: Buffer;
    try {
      piece = this.body.take(chunk);
    } catch (error) {
      this.abortOrReject(error);
      return chunk.length;
    }
    const attempt = this.attempt;
    if (attempt?.sent) {
      this.client.arm('response');
      if (!attempt.write(piece)) this.client.pause();
    } else this.body.held.push(piece);
    return piece.length;
  }

  onClientDrain(): void {
    if (this.current === 'answer' && this.drainMark !== undefined) this.finish(true);
    else if (this.current === 'relay' || this.current === 'tunnel') this.attempt?.resume();
  }

  /** The client half-closed; in a tunnel that is passed on. */
  onClientEnd(): void {
    if (this.current === 'tunnel') this.attempt?.endWrite();
  }

  // The backend side (AttemptUser).

  onConnecting(): void {
    this.client.arm('connect');
  }

  heldBody(): readonly Buffer[] {
    return this.body.held;
  }

  onSent(): void {
    this.sentToBackend = true;
    this.body.sent();
    if (!this.body.complete) this.client.resume();
    this.client.arm('response');
  }

  mayResend(): boolean {
    return this.body.replayable && this.mayReplay();
  }

  onReceiving(): void {
    this.client.arm('response');
    if (this.firstByteAt === 0) this.firstByteAt = performance.now();
  }

  onInterim(head: ResponseHead): void {
    // 1xx interim answers go on to HTTP/1.1 clients (RFC 9110 15.2).
    if (this.request.versionMinor === 1) this.send(interimHead(head));
  }

  onDrain(): void {
    if (this.current === 'tunnel' || !this.body.complete) this.client.resume();
  }

  // Transitions.

  /** Follows the cache's lookup: answer from it, go to the backend, or wait for a coalesced miss. */
  private cacheStep(step: CacheStep): void {
    const cache = this.cache as CacheFlow;
    if (step.kind === 'forward') {
      this.upstreamHead = step.head ?? cache.headFor(this.request);
      this.pool?.retryBudget.recordRequest(this.context.clock.now);
      this.connectNext();
    } else if (step.kind === 'answer') {
      this.current = 'answer';
      // After the caller's loop: a pipelined request behind this one is read on completion.
      queueMicrotask(() => this.answerFromCache());
    } else {
      this.current = 'cacheWait';
      this.client.arm(undefined);
      void step.ready.then(() => {
        if (this.current === 'cacheWait') this.cacheStep(cache.begin());
      });
    }
  }

  /** Writes the answer the cache made and ends the exchange, or waits for the client to take it. */
  private answerFromCache(): void {
    const cache = this.cache;
    if (!cache || this.current === 'done') return;
    this.current = 'answer';
    this.attempt?.close(true);
    if (this.context.draining) this.keepClient = false;
    const answer = cache.render(this.keepClient);
    this.status = answer.status;
    this.answered = true;
    if (!this.client.gone) {
      if (answer.bodyBytes <= oneWriteLimit) this.client.write(withHead(answer.head, answer.body));
      else this.client.writeAll(answer.head, answer.body);
    }
    this.bytesOut += answer.bodyBytes;
    if (!this.client.needsDrain) {
      this.finish(true);
      return;
    }
    // Backpressure: the next request waits until the client has read this answer.
    this.drainMark = this.client.queued;
    this.client.arm('idle');
  }

  private connectNext(): void {
    const pool = this.pool;
    if (!pool) return;
    const backend = pool.pick(this.tried);
    if (!backend) {
      const failure =
        this.attempts === 0
          ? new AttemptFailure('no_backend', 503, 'no backend available')
          : new AttemptFailure(this.error ?? 'no_backend', this.lastFailureStatus, 'backend failed');
      if (this.retries.retrying) this.retries.stop(failure);
      else {
        this.error ??= failure.kind;
        this.failWith(failure.status, failure.message);
      }
      return;
    }
    this.lastBackend = backend;
    this.attempts++;
    this.current = 'attempt';
    this.relay = undefined;
    this.attempt = new UpstreamAttempt(
      backend,
      this.upstreamHead,
      this.request.method,
      this,
      this.context.clock,
    );
    this.attempt.start();
  }

  private beginResponse(head: ResponseHead, framing: BodyFraming, rest: Buffer): void {
    const attempt = this.attempt as UpstreamAttempt;
    // Gateway errors from the backend count against it, as connect failures do (passive checks).
    this.reportOutcome(head.status < 502 || head.status > 504);
    this.retries.succeeded();
    this.status = head.status;
    let extra: HeaderField[] | undefined;
    let sink: ((data: Buffer) => void) | undefined;
    if (this.cache) {
      const action = this.cache.onResponse(head, framing);
      if (action.kind !== 'pass') {
        if (framing.kind !== 'none' || rest.length > 0) attempt.reusable = false;
        if (action.kind === 'restart') this.restart(action.head);
        else this.answerFromCache();
        return;
      }
      extra = action.extra;
      sink = action.sink;
    }
    const clientMinor = this.request.versionMinor;
    const mode = responseMode(framing, clientMinor);
    // A body the client is still sending cannot be skipped safely: close after this answer.
    if (!this.body.complete || mode === 'dechunk' || (framing.kind === 'close' && clientMinor === 0))
      this.keepClient = false;
    if (this.context.draining) this.keepClient = false;
    const headText = clientResponseHead({
      head,
      connectionTokens: connectionTokens(head.headers),
      framing,
      mode,
      requestMethod: this.request.method,
      keepAlive: this.keepClient,
      clientMinor,
      extra,
    });
    this.current = 'relay';
    this.relay = new ResponseRelay(framing, mode, sink, (data) => this.send(data));
    this.relayed(this.relay.begin(headText, rest, oneWriteLimit));
  }

  private relayed(progress: RelayProgress): void {
    if (progress === 'done') this.finish(true);
    else if (progress === 'bad') this.abort('bad_chunked_response');
  }

  /** A 304 for another representation: the same request again, unconditional, on a fresh attempt. */
  private restart(head: string): void {
    this.attempt?.close(true);
    this.upstreamHead = head;
    this.firstByteAt = 0;
    this.connectNext();
  }

  private startTunnel(head: ResponseHead, rest: Buffer): void {
    this.reportOutcome(true);
    this.retries.succeeded();
    this.status = 101;
    this.current = 'tunnel';
    this.keepClient = false;
    this.answered = true;
    this.send(switchingProtocolsHead(head, connectionTokens(head.headers)));
    if (rest.length > 0) this.send(rest);
    this.client.arm('idle');
    this.client.startTunnel();
  }

  /** Writes to the client; a full socket pauses the backend. */
  private send(data: Buffer | string): void {
    if (this.client.gone) return;
    const flushed = this.client.write(data);
    this.bytesOut += data.length;
    if (!flushed) this.attempt?.pause();
  }

  /** The backend stalled or died between a held head and its body: nothing reached the client yet. */
  private heldHeadFailed(failure: Failure, timedOut: boolean): void {
    this.relay = undefined;
    this.current = 'attempt';
    // A backend that died there (nginx killed between its head and body writes) is like one that
    // died before answering: another backend may answer a request that is safe to send again.
    // Not with the cache, which has begun to take this response in.
    if (!timedOut && !this.cache) {
      this.onFailure(failure);
      return;
    }
    this.error = failure.kind;
    this.backendError(failure.kind);
    this.failWith(failure.status, failure.message);
  }

  /**
   * An attempt failed before any response byte reached the client, in a way that is safe to
   * retry: mark the backend, then let the retry schedule try another one after a backoff.
   */
  private attemptFailed(failure: Failure): void {
    this.error = failure.kind;
    this.lastFailureStatus = failure.status;
    this.backendError(failure.kind);
    this.reportOutcome(false);
    const failed = this.attempt;
    failed?.close(false);
    this.attempt = undefined;
    // No deadline while the schedule waits out its backoff; the next attempt sets its own.
    this.current = 'backoff';
    this.client.arm(undefined);
    if (failed) {
      this.tried ??= new Set();
      this.tried.add(failed.backend);
    }
    this.retries.failed(new AttemptFailure(failure.kind, failure.status, failure.message));
  }

  // RetryHooks.

  mayRetry(): boolean {
    return (
      this.body.replayable &&
      (!this.sentToBackend || this.mayReplay()) &&
      this.current !== 'done' &&
      !this.headSent &&
      !this.client.gone
    );
  }

  takeBudget(): boolean {
    return this.pool?.retryBudget.tryAcquire(this.context.clock.now) ?? false;
  }

  next(): void {
    this.lastBackend?.metrics?.retry(this.error ?? 'unknown');
    this.connectNext();
  }

  giveUp(failure: AttemptFailure): void {
    if (this.current === 'done') return;
    this.error = failure.kind;
    this.failWith(failure.status, failure.message);
  }

  private mayReplay(): boolean {
    return (
      idempotentMethods.has(this.request.method) ||
      headerValue(this.request.headers, 'idempotency-key') !== undefined
    );
  }

  /** Counts a failure against the backend of the latest attempt. */
  private backendError(kind: string): void {
    this.lastBackend?.metrics?.error(kind);
  }

  /** Tells the backend's passive health check how this attempt went. */
  private reportOutcome(ok: boolean): void {
    const pool = this.pool;
    if (pool && this.attempt) this.attempt.backend.reportOutcome(ok, pool.canEject);
  }

  // Endings.

  /** Answers the client with an error of Sluice's own if nothing was sent yet, else aborts. */
  private failWith(status: number, message: string): void {
    if (this.headSent) {
      this.abort(this.error ?? 'failed');
      return;
    }
    // A stale copy may answer instead (stale-if-error, every backend down).
    if (this.cache?.onFailure()) {
      if (this.attempt) this.attempt.reusable = false;
      this.answerFromCache();
      return;
    }
    this.status = status;
    this.current = 'answer';
    if (!this.body.complete) this.keepClient = false;
    this.client.write(
      plainResponse(status, message, {
        close: !this.keepClient,
        head: this.request.method === 'HEAD',
        extra: this.cache?.headerLine,
      }),
    );
    this.answered = true;
    this.finish(false);
  }

  /** A response Sluice makes before any backend is involved. Returns bytes of body consumed (none). */
  private localResponse(status: number, message: string, reason: string): number {
    this.error = reason;
    this.failWith(status, message);
    return 0;
  }

  private rejectRequest(error: unknown): number {
    const status = error instanceof HttpError ? error.status : 400;
    this.keepClient = false;
    this.body.complete = false;
    return this.localResponse(status, error instanceof Error ? error.message : 'bad request', 'bad_request');
  }

  private abortOrReject(error: unknown): void {
    if (this.headSent) this.abort('bad_request_body');
    else {
      this.keepClient = false;
      this.body.complete = false;
      this.error = 'bad_request_body';
      this.status = error instanceof HttpError ? error.status : 400;
      this.failWith(this.status, error instanceof Error ? error.message : 'bad request');
    }
  }

  /** Gives up mid-response: the client sees a truncated answer, never a hang. */
  private abort(reason: string): void {
    this.error ??= reason;
    this.keepClient = false;
    this.client.destroy();
    this.finish(false);
  }

  private finish(success: boolean): void {
    if (this.current === 'done') return;
    this.current = 'done';
    this.retries.cancel();
    this.attempt?.close(success && !(this.relay?.overrun ?? false) && this.body.complete);
    this.body.held = [];
    this.cache?.done(success);
    report(this, this.context);
    this.client.done(this.keepClient && (success || this.body.complete));
  }
}

function absoluteAuthority(target: string): string | undefined {
  const match = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (!match) return undefined;
  const authority = match[1] ?? '';
  const at = authority.lastIndexOf('@');
  return at === -1 ? authority : authority.slice(at + 1);
}
