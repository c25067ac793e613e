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
import type { BodyFraming, HeaderField, ResponseHead } from '../http/message.ts';
import { PlainResponseHead } from '../http/plain-response.ts';
import {
  clientResponseHead,
  interimHead,
  responseMode,
  switchedAsOffered,
  switchingProtocolsHead,
} from '../http/response-heads.ts';
import { type AttemptUser, UpstreamAttempt } from '../upstream/attempt.ts';
import { classify, connectTimeout, type Failure, responseTimeout } from '../upstream/failure.ts';
import { admit } from './admission.ts';
import { ExchangeCore } from './exchange-core.ts';
import { type RelayProgress, ResponseRelay } from './response-relay.ts';
import { AttemptFailure } from './retry-schedule.ts';

export class Exchange extends ExchangeCore implements AttemptUser {
  /**
   * Starts the exchange with the bytes that followed the head. Returns how many of them belong to
   * this request's body; the rest is the next pipelined request.
   */
  start(rest: Buffer): number {
    const { context, request } = this;
    if (this.malformed !== undefined) return this.rejectRequest(this.malformed);
    const admitted = admit(request, this.body.framing, context, this.client, this.requestId);
    if (admitted.kind === 'refuse') {
      if (admitted.close) this.keepClient = false;
      return this.localResponse(admitted.status, admitted.message, admitted.reason);
    }
    const { pool } = admitted;
    this.pool = pool;
    this.upgrade = admitted.upgrade;
    this.upstreamHead = admitted.upstreamHead;
    this.cache = admitted.cache;

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
        // Still waiting for the client's body, and not because the backend stopped taking it.
        if (this.attempt?.sent && !this.body.complete && this.awaitingClient(this.attempt))
          this.clientTooSlow();
        else if (this.attempt?.sent) this.onFailure(responseTimeout);
        else this.onFailure(connectTimeout);
        return;
      case 'relay':
        if (this.relay?.held) this.heldHeadFailed(responseTimeout, true);
        // The client read nothing for clientIdle: the backend was paused for it, not late.
        else if (this.client.needsDrain) this.abort('client_send_timeout');
        else this.failedMidResponse('response_timeout');
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

  /** The client connection closed under us, or the shutdown deadline cut it. */
  onClientGone(): void {
    if (this.current === 'done') return;
    this.error ??= this.context.cutting ? 'shutdown' : 'client_closed';
    this.status ||= 499;
    this.finish(false);
  }

  /** A failure of the current attempt before its final head (from it, or its deadline). */
  onFailure(failure: Failure): void {
    if (this.current !== 'attempt') return;
    if (failure.local !== undefined) {
      this.localFailure(failure);
      return;
    }
    const retry =
      failure.retry === 'safe' ||
      (failure.retry === 'idempotent' && this.body.replayable && this.mayReplay());
    if (retry) {
      this.attemptFailed(failure);
      return;
    }
    this.error = failure.kind;
    this.backendError(failure.kind);
    // A backend that gave up on a body the client was still sending (its own body timeout being
    // shorter than Sluice's rule for slow clients) did not fail: its passive check is not charged.
    if (this.body.complete || !this.sentToBackend) this.reportOutcome(false);
    this.failWith(failure.status, failure.message);
  }

  /** The final head (or a 101) of the current attempt. */
  onHead(head: ResponseHead, framing: BodyFraming, rest: Buffer, tokens: readonly string[]): void {
    if (this.current !== 'attempt') return;
    this.backendStatus = head.status;
    if (head.status !== 101) this.beginResponse(head, framing, rest, tokens);
    else if (switchedAsOffered(head, this.upgrade)) this.startTunnel(head, rest, tokens);
    else {
      this.error = 'unexpected_upgrade';
      this.failWith(502, 'backend switched to a protocol nobody asked for');
    }
  }

  /** Response bytes after the head: relayed, or passed through the tunnel. */
  onBody(chunk: Buffer): void {
    switch (this.current) {
      case 'relay':
        this.client.arm(this.client.needsDrain ? 'idle' : 'response');
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
        // A reset is passed on as one: the client must not take a failure for a clean end.
        if (error) this.client.reset();
        else this.client.end();
        this.finish(false);
        return;
      case 'relay': {
        const relay = this.relay;
        if (relay?.held) this.heldHeadFailed(classify(error, 'held'), false);
        else if (error === undefined && relay?.closeEnds()) this.finish(true);
        else this.closedMidResponse(classify(error, 'body').kind);
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
    let taken: { used: number; out: Buffer };
    try {
      taken = this.body.take(chunk);
    } catch (error) {
      this.abortOrReject(error);
      return chunk.length;
    }
    const attempt = this.attempt;
    if (attempt?.sent) {
      const flushed = attempt.write(taken.out);
      // The response-header time starts once the whole request went out; until then the client
      // must keep its body moving (1 KiB per clientBody period), unless the backend stops taking it.
      if (this.body.complete) this.client.arm('response');
      else if (!flushed) {
        this.client.pause();
        this.client.arm('response');
      } else if (this.body.progressed()) this.client.arm('body');
    } else this.body.hold(taken.out);
    return taken.used;
  }

  onClientDrain(): void {
    if (this.current === 'answer' && this.drainMark !== undefined) this.finish(true);
    else if (this.current === 'relay' || this.current === 'tunnel') {
      this.release();
      // The backend's clock again: it is its turn.
      if (this.current === 'relay') this.client.arm('response');
    }
  }

  /** The client half-closed; in a tunnel that is passed on. */
  onClientEnd(): void {
    if (this.current === 'tunnel') this.attempt?.endWrite();
  }

  /**
   * The backend half-closed; in a tunnel that is passed on, and the client's bytes still go to
   * the backend until the client ends too. Elsewhere the connection is over.
   */
  onEnd(): boolean {
    if (this.current !== 'tunnel') return false;
    this.client.end();
    return true;
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
    if (!this.body.complete) {
      this.client.resume();
      this.body.restartWindow();
      // With Expect: 100-continue the backend speaks first; the client's time starts after.
      this.client.arm(this.expectsContinue ? 'response' : 'body');
    } else this.client.arm('response');
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
    if (this.request.versionMinor !== 1) return;
    this.interimSent = true;
    this.send(interimHead(head));
  }

  onDrain(): void {
    if (this.current === 'tunnel') this.client.resume();
    else if (!this.body.complete) {
      // The backend takes the body again: the client's clientBody periods start anew.
      this.client.resume();
      this.body.restartWindow();
      if (this.current === 'attempt') this.client.arm('body');
    }
  }

  // Transitions.

  /** Follows the cache's lookup: answer from it, go to the backend, or wait for a coalesced miss. */
  private cacheStep(step: CacheStep): void {
    const cache = this.cache as CacheFlow;
    if (step.kind === 'forward') {
      this.upstreamHead = step.head ?? cache.headFor(cache.request);
      this.pool?.retryBudget.recordRequest(this.context.clock.now);
      this.connectNext();
    } else if (step.kind === 'answer') {
      // At once, as a local answer is: the client connection reads a pipelined request waiting
      // behind this one when start() returns (src/proxy/client-connection.ts readRequests).
      this.answerFromCache();
    } else {
      this.current = 'cacheWait';
      this.client.arm(undefined);
      void step.ready.then(() => {
        if (this.current === 'cacheWait') this.cacheStep(cache.begin());
      });
    }
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
      if (this.retries?.retrying) this.retries.stop(failure);
      else {
        this.error ??= failure.kind;
        this.failWith(failure.status, failure.message);
      }
      return;
    }
    // A retry counts once another backend takes it (audit O), against the one that failed.
    if (this.retries?.retrying) this.lastBackend?.metrics.retry(this.error ?? 'unknown');
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

  private beginResponse(
    head: ResponseHead,
    framing: BodyFraming,
    rest: Buffer,
    tokens: readonly string[],
  ): void {
    const attempt = this.attempt as UpstreamAttempt;
    // Gateway errors from the backend count against it, as connect failures do (passive checks);
    // any other answer counts for it once it is whole (finish), as one cut part way counts against.
    const gatewayError = head.status >= 502 && head.status <= 504;
    if (gatewayError) this.reportOutcome(false);
    this.retries?.succeeded();
    this.status = head.status;
    let extra: HeaderField[] | undefined;
    let sink: ((data: Buffer) => void) | undefined;
    if (this.cache) {
      const action = this.cache.onResponse(head, framing);
      if (action.kind !== 'pass') {
        if (!gatewayError) this.reportOutcome(true);
        if (framing.kind !== 'none' || rest.length > 0) attempt.reusable = false;
        if (action.kind === 'restart') this.restart(action.head);
        else this.answerFromCache();
        return;
      }
      extra = action.extra;
      sink = action.sink;
    }
    this.answering = !gatewayError;
    const clientMinor = this.request.versionMinor;
    if (
      clientMinor === 0 &&
      framing.kind !== 'none' &&
      framing.kind !== 'length' &&
      framing.codings !== undefined
    ) {
      // HTTP/1.0 has no Transfer-Encoding: the body would reach the client still gzipped (…).
      attempt.reusable = false;
      this.error = 'transfer_coding';
      this.failWith(502, 'the backend used a transfer coding an HTTP/1.0 client cannot take');
      return;
    }
    const mode = responseMode(framing, clientMinor);
    // A body the client is still sending cannot be skipped safely: close after this answer.
    if (!this.body.complete || mode === 'dechunk' || (framing.kind === 'close' && clientMinor === 0))
      this.keepClient = false;
    if (this.context.draining) this.keepClient = false;
    // A plain head nothing has read or changed is relayed as the backend's bytes.
    const clientHead =
      head instanceof PlainResponseHead && head.untouched && extra === undefined
        ? head.clientHead(this.keepClient, clientMinor)
        : clientResponseHead({
            head,
            connectionTokens: tokens,
            framing,
            mode,
            requestMethod: this.request.method,
            keepAlive: this.keepClient,
            clientMinor,
            extra,
          });
    this.current = 'relay';
    this.relay = new ResponseRelay(framing, mode, sink, this);
    this.relayed(this.relay.begin(clientHead, rest, this.context.config.limits.oneWrite));
  }

  private relayed(progress: RelayProgress): void {
    if (progress === 'done') this.finish(true);
    else if (progress === 'bad') this.failedMidResponse('bad_chunked_response');
  }

  /** A 304 for another representation: the same request again, unconditional, on a fresh attempt. */
  private restart(head: string): void {
    this.attempt?.close(true);
    this.upstreamHead = head;
    this.firstByteAt = 0;
    this.connectNext();
  }

  private startTunnel(head: ResponseHead, rest: Buffer, tokens: readonly string[]): void {
    this.reportOutcome(true);
    this.retries?.succeeded();
    this.status = 101;
    this.current = 'tunnel';
    this.keepClient = false;
    this.answered = true;
    this.send(switchingProtocolsHead(head, tokens));
    if (rest.length > 0) this.send(rest);
    this.client.arm('idle');
    this.client.startTunnel();
  }

  /** The backend stalled or died between a held head and its body: nothing reached the client yet. */
  private heldHeadFailed(failure: Failure, timedOut: boolean): void {
    this.relay = undefined;
    this.answering = false;
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
    this.reportOutcome(false);
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
    this.schedule().failed(new AttemptFailure(failure.kind, failure.status, failure.message));
  }

  // RetryHooks.

  mayRetry(): boolean {
    return (
      this.body.replayable &&
      (!this.sentToBackend || this.mayReplay()) &&
      this.current !== 'done' &&
      !this.headSent &&
      !this.interimSent &&
      !this.client.gone &&
      this.pool?.canPick(this.tried) === true
    );
  }

  takeBudget(): boolean {
    return this.pool?.retryBudget.tryAcquire(this.context.clock.now) ?? false;
  }

  next(): void {
    this.connectNext();
  }

  giveUp(failure: AttemptFailure): void {
    if (this.current === 'done') return;
    this.error = failure.kind;
    this.failWith(failure.status, failure.message);
  }
}
