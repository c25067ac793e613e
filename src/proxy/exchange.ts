// One request/response exchange: pick a backend, send the request, stream the body both ways
// with backpressure, retry where it is safe, and hand the connection back when done.
import { performance } from 'node:perf_hooks';
import pRetry, { AbortError } from 'p-retry';
import type { CacheFlow, CacheStep } from '../cache/proxy-cache.ts';
import { ChunkedDecoder, encodeChunk, lastChunk } from '../http/chunked.ts';
import { requestFraming, responseFraming } from '../http/framing.ts';
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
import { parseResponseHead } from '../http/parser.ts';
import {
  clientResponseHead,
  interimHead,
  type ResponseMode,
  responseMode,
  switchingProtocolsHead,
} from '../http/response-heads.ts';
import { plainResponse } from '../http/responses.ts';
import type { Backend } from '../upstream/backend.ts';
import type { UpstreamConnection, UpstreamUser } from '../upstream/connection.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { ClientConnection } from './client-connection.ts';
import type { ProxyContext } from './context.ts';
import { requestIdOf } from './forwarding.ts';
import { type UpstreamRequest, upstreamRequestHead } from './heads.ts';

/** Methods whose requests may be sent twice (RFC 9110 9.2.2). */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** A request body up to this size is kept so the request can be replayed on another backend. */
const replayLimit = 64 * 1024;
/** A body up to this size goes to the client in the same write as its head. */
const oneWriteLimit = 16 * 1024;

type Phase = 'connecting' | 'waiting' | 'streaming' | 'tunnel' | 'done';

export class Exchange implements UpstreamUser {
  private readonly client: ClientConnection;
  private readonly context: ProxyContext;
  readonly request: RequestHead;
  readonly requestId: string;
  private readonly startedAt = performance.now();
  private phase: Phase = 'connecting';
  /** Keep the client connection open after this exchange. */
  private keepClient: boolean;

  // The request and its body.
  private framing: BodyFraming = { kind: 'none' };
  private pool: BackendPool | undefined;
  private upstreamHead = '';
  private upgrade: string | undefined;
  private bodyRemaining = 0;
  private bodyDecoder: ChunkedDecoder | undefined;
  /** Every byte of the request body has been read from the client. */
  requestComplete = true;
  /** Body bytes read before the backend connection was ready, or kept for a replay. */
  private held: Buffer[] = [];
  private replayable = true;
  private bytesIn = 0;

  // The backend side.
  private backend: Backend | undefined;
  private upstream: UpstreamConnection | undefined;
  private tried: Set<Backend> | undefined;
  private attempts = 0;
  private staleRetried = false;
  /** Some attempt wrote the request to a backend: from then on only idempotent requests are resent. */
  private sentToBackend = false;
  /** Retries made (attempts after the first on another backend). */
  private retries = 0;
  private lastFailureStatus = 502;
  private pendingAttempt: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private retryAbort: AbortController | undefined;
  private requestSent = false;
  private upstreamReusable = false;
  private firstByteAt = 0;
  private connectStartedAt = 0;
  /** The backend of the latest attempt, which the request's metrics are counted against. */
  private lastBackend: Backend | undefined;

  // The response.
  private responseBuffer: Buffer | undefined;
  private response: ResponseHead | undefined;
  private responseFraming: BodyFraming = { kind: 'none' };
  private mode: ResponseMode = 'raw';
  private responseRemaining = 0;
  private responseDecoder: ChunkedDecoder | undefined;
  private status = 0;
  private bytesOut = 0;
  /** While set, body bytes for the client are collected here instead of written. */
  private gathered: Buffer[] | undefined;
  /** A response head waiting for the first bytes of its small body (see beginResponse). */
  private heldHead: string | undefined;
  private error: string | undefined;

  // The shared cache, on routes with `cache: true` only (src/cache/proxy-cache.ts).
  private cache: CacheFlow | undefined;
  /** Takes each decoded body chunk of a response being stored. */
  private sink: ((data: Buffer) => void) | undefined;
  /** A cached answer waits for the client to read it: bytes still queued at the last look. */
  private drainMark: number | undefined;

  constructor(client: ClientConnection, request: RequestHead) {
    this.client = client;
    this.context = client.context;
    this.request = request;
    this.requestId = requestIdOf(request.headers);
    this.keepClient = client.wantsKeepAlive(request);
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
    this.framing = framing;
    if (framing.kind === 'length') this.bodyRemaining = framing.length;
    if (framing.kind === 'chunked') this.bodyDecoder = new ChunkedDecoder();
    this.requestComplete = framing.kind === 'none';
    const maxBody = context.config.limits.maxBody;
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
    if (rest.length > 0 && !this.requestComplete) used = this.onClientBody(rest);
    if (this.phase === 'done') return used;
    // A body waits in the client socket until the backend connection is ready (bounded memory);
    // without one, nothing needs pausing (pipelined requests queue in the client connection).
    if (!this.requestComplete) this.client.pauseReading();
    if (this.cache) this.cacheStep(this.cache.begin());
    else {
      pool.retryBudget.recordRequest(context.clock.now);
      this.connectNext();
    }
    return used;
  }

  /** Follows the cache's lookup: answer from it, go to the backend, or wait for a coalesced miss. */
  private cacheStep(step: CacheStep): void {
    if (step.kind === 'forward') {
      this.upstreamHead = step.head ?? (this.cache as CacheFlow).headFor(this.request);
      this.pool?.retryBudget.recordRequest(this.context.clock.now);
      this.connectNext();
    } else if (step.kind === 'answer') {
      // After the caller's loop: a pipelined request behind this one is read on completion.
      queueMicrotask(() => this.answerFromCache());
    } else {
      this.client.deadline = 0;
      void step.ready.then(() => {
        if (this.phase !== 'done' && this.cache) this.cacheStep(this.cache.begin());
      });
    }
  }

  /** Writes the answer the cache made and ends the exchange. */
  private answerFromCache(): void {
    const cache = this.cache;
    if (!cache || this.phase === 'done') return;
    if (this.context.draining) this.keepClient = false;
    const answer = cache.render(this.keepClient);
    this.status = answer.status;
    this.client.headSent = true;
    const socket = this.client.socket;
    if (!socket.destroyed) {
      if (answer.bodyBytes <= oneWriteLimit) socket.write(withHead(answer.head, answer.body));
      else {
        socket.cork();
        socket.write(answer.head, 'latin1');
        for (const part of answer.body) socket.write(part);
        socket.uncork();
      }
    }
    this.bytesOut += answer.bodyBytes;
    if (!socket.writableNeedDrain) {
      this.finish(true);
      return;
    }
    // Backpressure: the next request waits until the client has read this answer.
    this.detachUpstream();
    this.phase = 'streaming';
    this.drainMark = socket.writableLength;
    this.client.deadline = this.context.clock.now + this.context.config.timeouts.clientIdle;
  }

  /** Hands the backend connection back (or closes it) before the exchange itself ends. */
  private detachUpstream(): void {
    const upstream = this.upstream;
    this.upstream = undefined;
    if (upstream && this.backend) {
      upstream.user = undefined;
      if (this.upstreamReusable && !upstream.closed)
        this.backend.connections.release(upstream, this.context.clock.now);
      else upstream.destroy();
    }
  }

  /** A 304 for another representation: the same request again, unconditional, on a fresh attempt. */
  private restartUpstream(head: string): void {
    this.detachUpstream();
    this.releaseBackend();
    this.upstreamHead = head;
    this.firstByteAt = 0;
    this.connectNext();
  }

  /** Whether bytes the client sends now belong to this exchange (its body or its tunnel). */
  get consumesClientBytes(): boolean {
    return this.phase === 'tunnel' || (!this.requestComplete && this.phase !== 'done');
  }

  /** Takes body (or tunnel) bytes from the client; returns how many belonged to this request. */
  onClientBody(chunk: Buffer): number {
    if (this.phase === 'tunnel') {
      this.client.deadline = this.context.clock.now + this.context.config.timeouts.clientIdle;
      if (this.upstream && !this.upstream.socket.write(chunk)) this.client.pauseReading();
      return chunk.length;
    }
    let used: number;
    try {
      used = this.takeBody(chunk);
    } catch (error) {
      this.abortOrReject(error);
      return chunk.length;
    }
    const body = used === chunk.length ? chunk : chunk.subarray(0, used);
    this.bytesIn += used;
    const maxBody = this.context.config.limits.maxBody;
    if (maxBody !== null && this.bytesIn > maxBody) {
      this.abortOrReject(new HttpError(413, 'request body too large'));
      return chunk.length;
    }
    if (this.requestSent && this.upstream) {
      this.client.deadline = this.context.clock.now + this.context.config.timeouts.responseHeaders;
      if (!this.upstream.socket.write(body)) this.client.pauseReading();
    } else {
      this.held.push(body);
    }
    return used;
  }

  private takeBody(chunk: Buffer): number {
    if (this.bodyDecoder) {
      const used = this.bodyDecoder.feed(chunk);
      if (this.bodyDecoder.done) this.requestComplete = true;
      return used;
    }
    const used = Math.min(this.bodyRemaining, chunk.length);
    this.bodyRemaining -= used;
    if (this.bodyRemaining === 0) this.requestComplete = true;
    return used;
  }

  onClientDrain(): void {
    if (this.drainMark !== undefined) this.finish(true);
    else if (this.phase === 'streaming' || this.phase === 'tunnel') this.upstream?.socket.resume();
  }

  /** The client connection closed under us. */
  onClientGone(): void {
    if (this.phase === 'done') return;
    this.error ??= 'client_closed';
    this.status ||= 499;
    this.finish(false);
  }

  /** The client half-closed; in a tunnel that is passed on. */
  onClientEnd(): void {
    if (this.phase === 'tunnel') this.upstream?.socket.end();
  }

  /** The deadline of the current phase passed. */
  expire(): void {
    switch (this.phase) {
      case 'connecting':
        this.attemptFailed('connect_timeout', 504);
        return;
      case 'waiting':
        this.error = 'response_timeout';
        this.backendError('response_timeout');
        this.reportOutcome(false);
        if (this.response === undefined && !this.client.headSent) this.failWith(504, 'backend timed out');
        else this.abort('response_timeout');
        return;
      case 'streaming':
      case 'tunnel':
        if (this.heldHead !== undefined) {
          this.heldHeadFailed('response_timeout', true);
          return;
        }
        if (this.drainMark !== undefined && this.client.socket.writableLength < this.drainMark) {
          // A cached answer still reaching a slow client: it moves, so it gets more time.
          this.drainMark = this.client.socket.writableLength;
          this.client.deadline = this.context.clock.now + this.context.config.timeouts.clientIdle;
          return;
        }
        this.abort(this.phase === 'tunnel' ? 'tunnel_idle' : 'response_timeout');
        return;
      case 'done':
        return;
    }
  }

  // The backend side.

  private connectNext(): void {
    const pool = this.pool;
    if (!pool) return;
    const backend = pool.pick(this.tried);
    if (!backend) {
      const failure =
        this.attempts === 0
          ? new AttemptFailure('no_backend', 503, 'no backend available')
          : new AttemptFailure(this.error ?? 'no_backend', this.lastFailureStatus, 'backend failed');
      if (this.pendingAttempt) this.settleAttempt(new AbortError(failure));
      else {
        this.error ??= failure.kind;
        this.failWith(failure.status, failure.message);
      }
      return;
    }
    this.backend = backend;
    this.lastBackend = backend;
    this.attempts++;
    backend.inFlight++;
    this.phase = 'connecting';
    const idle = backend.connections.acquire();
    if (idle) {
      this.attach(idle);
      this.sendRequest();
      return;
    }
    this.openConnection(backend);
  }

  private openConnection(backend: Backend): void {
    this.client.deadline = this.context.clock.now + this.context.config.timeouts.connect;
    this.connectStartedAt = performance.now();
    const connection = backend.connections.connect((connected) => {
      if (this.upstream !== connected || this.phase !== 'connecting') return;
      backend.metrics?.connectTimed((performance.now() - this.connectStartedAt) / 1000);
      this.sendRequest();
    });
    this.attach(connection);
  }

  private attach(connection: UpstreamConnection): void {
    connection.user = this;
    connection.requests++;
    this.upstream = connection;
    this.requestSent = false;
  }

  private sendRequest(): void {
    const upstream = this.upstream;
    if (!upstream) return;
    this.phase = 'waiting';
    const message = withHead(this.upstreamHead, this.held);
    if (typeof message === 'string') upstream.socket.write(message, 'latin1');
    else upstream.socket.write(message);
    this.requestSent = true;
    this.sentToBackend = true;
    if (this.requestComplete) {
      // A small complete body stays held so the request can be replayed after a failure.
      let heldBytes = 0;
      for (const body of this.held) heldBytes += body.length;
      if (heldBytes > replayLimit) this.dropHeld();
    } else {
      this.dropHeld();
      this.client.resumeReading();
    }
    this.client.deadline = this.context.clock.now + this.context.config.timeouts.responseHeaders;
  }

  private dropHeld(): void {
    this.held = [];
    this.replayable = this.framing.kind === 'none';
  }

  onUpstreamDrain(): void {
    if (this.phase === 'tunnel' || !this.requestComplete) this.client.resumeReading();
  }

  onUpstreamData(chunk: Buffer): void {
    const context = this.context;
    if (this.phase === 'tunnel') {
      this.client.deadline = context.clock.now + context.config.timeouts.clientIdle;
      this.writeClient(chunk);
      return;
    }
    this.client.deadline = context.clock.now + context.config.timeouts.responseHeaders;
    if (this.firstByteAt === 0) this.firstByteAt = performance.now();
    if (this.heldHead !== undefined) {
      const head = this.heldHead;
      this.heldHead = undefined;
      this.sendHeadWith(head, chunk);
      return;
    }
    if (this.response) {
      if (this.forwardBody(chunk)) this.finish(true);
      return;
    }
    this.readResponseHead(chunk);
  }

  private readResponseHead(chunk: Buffer): void {
    let buffer = this.responseBuffer ? Buffer.concat([this.responseBuffer, chunk]) : chunk;
    for (;;) {
      let parsed: { head: ResponseHead; size: number } | null;
      try {
        parsed = parseResponseHead(buffer);
      } catch {
        this.error = 'bad_response';
        this.backendError('bad_response');
        this.reportOutcome(false);
        this.failWith(502, 'backend sent a malformed response');
        return;
      }
      if (!parsed) {
        this.responseBuffer = buffer;
        return;
      }
      const { head } = parsed;
      buffer = buffer.subarray(parsed.size);
      this.responseBuffer = undefined;
      if (head.status >= 200) {
        this.beginResponse(head, buffer);
        return;
      }
      if (head.status === 101) {
        if (this.upgrade !== undefined) this.startTunnel(head, buffer);
        else {
          this.error = 'unexpected_upgrade';
          this.failWith(502, 'backend switched protocols unasked');
        }
        return;
      }
      // 1xx interim answers go on to HTTP/1.1 clients (RFC 9110 15.2).
      if (this.request.versionMinor === 1) this.writeClient(interimHead(head));
      if (buffer.length === 0) return;
    }
  }

  private beginResponse(head: ResponseHead, rest: Buffer): void {
    let framing: BodyFraming;
    try {
      framing = responseFraming(head, this.request.method);
    } catch {
      this.error = 'bad_response';
      this.backendError('bad_response');
      this.reportOutcome(false);
      this.failWith(502, 'backend sent a malformed response');
      return;
    }
    // Gateway errors from the backend count against it, as connect failures do (passive checks).
    this.reportOutcome(head.status < 502 || head.status > 504);
    this.settleAttempt();
    this.response = head;
    this.status = head.status;
    this.responseFraming = framing;
    this.phase = 'streaming';
    const tokens = connectionTokens(head.headers);
    this.upstreamReusable =
      framing.kind !== 'close' &&
      (head.versionMinor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive'));
    let extra: HeaderField[] | undefined;
    if (this.cache) {
      const action = this.cache.onResponse(head, framing);
      if (action.kind !== 'pass') {
        this.response = undefined;
        if (framing.kind !== 'none' || rest.length > 0) this.upstreamReusable = false;
        if (action.kind === 'restart') this.restartUpstream(action.head);
        else this.answerFromCache();
        return;
      }
      extra = action.extra;
      this.sink = action.sink;
    }
    const clientMinor = this.request.versionMinor;
    this.mode = responseMode(framing, clientMinor);
    // A body the client is still sending cannot be skipped safely: close after this answer.
    if (!this.requestComplete || this.mode === 'dechunk' || (framing.kind === 'close' && clientMinor === 0))
      this.keepClient = false;
    if (this.context.draining) this.keepClient = false;
    if (framing.kind === 'length') this.responseRemaining = framing.length;
    if (framing.kind === 'chunked') this.responseDecoder = new ChunkedDecoder();

    const headText = clientResponseHead({
      head,
      connectionTokens: tokens,
      framing,
      mode: this.mode,
      requestMethod: this.request.method,
      keepAlive: this.keepClient,
      clientMinor,
      extra,
    });
    if (framing.kind === 'none') {
      this.client.headSent = true;
      this.writeClient(headText);
      this.finish(true);
    } else if (rest.length > 0 || framing.kind !== 'length' || framing.length > oneWriteLimit) {
      this.sendHeadWith(headText, rest);
    } else {
      // The head of a small body came alone (nginx writes the head, then sendfiles the body):
      // keep it for the body's first bytes, so both go in one write, and so a backend that
      // stalls or dies right here still gets the client a clean 504 or 502, not a cut answer.
      this.heldHead = headText;
    }
  }

  /** Writes the head and the body bytes that came with it in one write. */
  private sendHeadWith(headText: string, chunk: Buffer): void {
    const body: Buffer[] = [];
    this.gathered = body;
    const complete = chunk.length > 0 && this.forwardBody(chunk);
    this.gathered = undefined;
    this.client.headSent = true;
    this.writeClient(withHead(headText, body));
    if (complete) this.finish(true);
  }

  /** Passes response body bytes on; returns true when the body is complete. */
  private forwardBody(chunk: Buffer): boolean {
    const framing = this.responseFraming;
    if (framing.kind === 'length') {
      const used = Math.min(this.responseRemaining, chunk.length);
      this.responseRemaining -= used;
      // Bytes past the declared length: the backend is out of step.
      if (used < chunk.length) this.upstreamReusable = false;
      const data = used === chunk.length ? chunk : chunk.subarray(0, used);
      this.sink?.(data);
      this.writeClient(data);
      return this.responseRemaining === 0;
    }
    if (framing.kind === 'chunked' && this.responseDecoder) {
      const decoder = this.responseDecoder;
      let used: number;
      try {
        used = decoder.feed(
          chunk,
          this.mode === 'dechunk' || this.sink
            ? (data) => {
                this.sink?.(data);
                if (this.mode === 'dechunk') this.writeClient(data);
              }
            : undefined,
        );
      } catch {
        this.abort('bad_chunked_response');
        return false;
      }
      if (used < chunk.length) this.upstreamReusable = false;
      if (this.mode === 'raw') this.writeClient(used === chunk.length ? chunk : chunk.subarray(0, used));
      return decoder.done;
    }
    if (framing.kind === 'close') {
      this.sink?.(chunk);
      this.writeClient(this.mode === 'rechunk' ? encodeChunk(chunk) : chunk);
    }
    return false;
  }

  /** Writes to the client (strings are heads, latin1); a full socket pauses the backend. */
  private writeClient(data: Buffer | string): void {
    if (this.gathered && typeof data !== 'string') {
      this.gathered.push(data);
      return;
    }
    const socket = this.client.socket;
    if (socket.destroyed) return;
    const flushed = typeof data === 'string' ? socket.write(data, 'latin1') : socket.write(data);
    this.bytesOut += data.length;
    if (!flushed) this.upstream?.socket.pause();
  }

  private startTunnel(head: ResponseHead, rest: Buffer): void {
    this.reportOutcome(true);
    this.settleAttempt();
    this.status = 101;
    this.phase = 'tunnel';
    this.keepClient = false;
    this.upstreamReusable = false;
    this.client.headSent = true;
    this.writeClient(switchingProtocolsHead(head, connectionTokens(head.headers)));
    if (rest.length > 0) this.writeClient(rest);
    this.client.deadline = this.context.clock.now + this.context.config.timeouts.clientIdle;
    this.client.startTunnel();
  }

  onUpstreamClose(error: Error | undefined): void {
    switch (this.phase) {
      case 'done':
        return;
      case 'tunnel':
        this.client.socket.end();
        this.finish(false);
        return;
      case 'connecting':
        this.attemptFailed(errorKind(error, 'refused'), 502);
        return;
      case 'streaming':
        if (this.heldHead !== undefined) {
          this.heldHeadFailed(errorKind(error, 'closed_mid_response'), false);
          return;
        }
        if (this.responseFraming.kind === 'close' && !error) {
          if (this.mode === 'rechunk') this.writeClient(lastChunk);
          this.finish(true);
        } else {
          const kind = errorKind(error, 'closed_mid_response');
          this.backendError(kind);
          this.abort(kind);
        }
        return;
      case 'waiting':
        this.waitingFailed(errorKind(error, 'closed_before_response'));
        return;
    }
  }

  /** The backend stalled or died between a held head and its body: nothing reached the client yet. */
  private heldHeadFailed(kind: string, timedOut: boolean): void {
    this.heldHead = undefined;
    this.upstreamReusable = false;
    // A backend that died there (nginx killed between its head and body writes) is like one that
    // died before answering: another backend may answer a request that is safe to send again.
    // Not with the cache, which has begun to take this response in.
    if (!timedOut && !this.cache) {
      this.response = undefined;
      this.attemptFailed(kind, 502);
      return;
    }
    this.error = kind;
    this.backendError(kind);
    this.failWith(timedOut ? 504 : 502, timedOut ? 'backend timed out' : 'backend failed');
  }

  /** The connection failed after the request went out but before any response byte. */
  private waitingFailed(kind: string): void {
    const nothingReceived = this.responseBuffer === undefined && this.firstByteAt === 0;
    const upstream = this.upstream;
    // The request may have reached the backend: only an idempotent one is sent again (RFC 9112
    // 9.3.1), never a POST without Idempotency-Key.
    if (nothingReceived && this.replayable && upstream && this.mayReplay()) {
      // A kept-alive connection the backend closed just as we reused it: one fresh try, same
      // backend, and no mark against it (the race is the connection's, not the backend's).
      if (upstream.requests > 1 && !this.staleRetried) {
        this.staleRetried = true;
        this.retryOnFreshConnection();
        return;
      }
      this.attemptFailed(kind, 502);
      return;
    }
    this.error = kind;
    this.backendError(kind);
    this.reportOutcome(false);
    this.failWith(502, 'backend failed');
  }

  /** Same backend, new connection. */
  private retryOnFreshConnection(): void {
    const backend = this.backend;
    if (!backend) return;
    this.dropUpstream();
    this.phase = 'connecting';
    this.openConnection(backend);
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
    if (pool) this.backend?.reportOutcome(ok, pool.canEject);
  }

  /**
   * An attempt failed before any response byte reached the client, in a way that is safe to
   * retry: mark the backend, then let p-retry try another one after a jittered backoff.
   */
  private attemptFailed(kind: string, status: number): void {
    this.error = kind;
    this.lastFailureStatus = status;
    this.backendError(kind);
    this.reportOutcome(false);
    const failed = this.backend;
    this.dropUpstream();
    this.releaseBackend();
    // No deadline while p-retry waits out its backoff; the next attempt sets its own.
    this.phase = 'connecting';
    this.client.deadline = 0;
    if (failed) {
      this.tried ??= new Set();
      this.tried.add(failed);
    }
    const failure = new AttemptFailure(kind, status, status === 504 ? 'backend timed out' : 'backend failed');
    if (this.pendingAttempt) this.settleAttempt(failure);
    else this.startRetries(failure);
  }

  /**
   * The first attempt runs outside p-retry, so the hot path makes no promises; p-retry takes over
   * at the first failure (replayed to it as attempt 1) and paces the rest: 25-50 ms, then 50-100 ms.
   */
  private startRetries(first: AttemptFailure): void {
    const retries = this.context.config.retries.attempts - 1;
    if (retries <= 0 || !this.mayRetry()) {
      this.failWith(first.status, first.message);
      return;
    }
    const abort = new AbortController();
    this.retryAbort = abort;
    pRetry((attempt) => (attempt === 1 ? Promise.reject(first) : this.attemptOnce()), {
      retries,
      minTimeout: 25,
      maxTimeout: 250,
      factor: 2,
      randomize: true,
      signal: abort.signal,
      shouldRetry: ({ error }) =>
        error instanceof AttemptFailure &&
        this.mayRetry() &&
        (this.pool?.retryBudget.tryAcquire(this.context.clock.now) ?? false),
    }).then(
      () => {},
      (error: unknown) => {
        if (this.phase === 'done') return;
        const failure = error instanceof AttemptFailure ? error : first;
        this.error = failure.kind;
        this.failWith(failure.status, failure.message);
      },
    );
  }

  private mayRetry(): boolean {
    return (
      this.replayable &&
      (!this.sentToBackend || this.mayReplay()) &&
      this.phase !== 'done' &&
      !this.client.headSent &&
      !this.client.socket.destroyed
    );
  }

  /** One retry: resolves once a response head arrives, rejects if the attempt fails. */
  private attemptOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pendingAttempt = { resolve, reject };
      this.retries++;
      this.lastBackend?.metrics?.retry(this.error ?? 'unknown');
      this.connectNext();
    });
  }

  /** Ends the attempt p-retry is waiting for: success without an error. */
  private settleAttempt(error?: Error): void {
    const pending = this.pendingAttempt;
    if (!pending) return;
    this.pendingAttempt = undefined;
    if (error) pending.reject(error);
    else pending.resolve();
  }

  // Endings.

  /** Answers the client with an error of Sluice's own if nothing was sent yet, else aborts. */
  private failWith(status: number, message: string): void {
    if (this.client.headSent) {
      this.abort(this.error ?? 'failed');
      return;
    }
    // A stale copy may answer instead (stale-if-error, every backend down).
    if (this.cache?.onFailure()) {
      this.upstreamReusable = false;
      this.answerFromCache();
      return;
    }
    this.status = status;
    if (!this.requestComplete) this.keepClient = false;
    this.client.socket.write(
      plainResponse(status, message, {
        close: !this.keepClient,
        head: this.request.method === 'HEAD',
        extra: this.cache?.headerLine,
      }),
      'latin1',
    );
    this.client.headSent = true;
    this.finish(false);
  }

  /** A response Sluice makes before any backend is involved. Returns bytes of body consumed (none). */
  private localResponse(status: number, message: string, reason: string): number {
    this.error = reason;
    this.phase = 'waiting';
    this.failWith(status, message);
    return 0;
  }

  private rejectRequest(error: unknown): number {
    const status = error instanceof HttpError ? error.status : 400;
    this.keepClient = false;
    this.requestComplete = false;
    return this.localResponse(status, error instanceof Error ? error.message : 'bad request', 'bad_request');
  }

  private abortOrReject(error: unknown): void {
    if (this.client.headSent) this.abort('bad_request_body');
    else {
      this.keepClient = false;
      this.requestComplete = false;
      this.error = 'bad_request_body';
      this.status = error instanceof HttpError ? error.status : 400;
      this.failWith(this.status, error instanceof Error ? error.message : 'bad request');
    }
  }

  /** Gives up mid-response: the client sees a truncated answer, never a hang. */
  private abort(reason: string): void {
    this.error ??= reason;
    this.keepClient = false;
    this.client.socket.destroy();
    this.finish(false);
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = undefined;
    if (upstream) {
      upstream.user = undefined;
      upstream.destroy();
    }
  }

  private releaseBackend(): void {
    if (this.backend) this.backend.inFlight--;
    this.backend = undefined;
  }

  private finish(success: boolean): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.settleAttempt();
    this.retryAbort?.abort();
    const upstream = this.upstream;
    if (upstream && this.backend) {
      this.upstream = undefined;
      if (success && this.upstreamReusable && this.requestComplete && !upstream.closed) {
        upstream.user = undefined;
        if (upstream.socket.isPaused()) upstream.socket.resume();
        this.backend.connections.release(upstream, this.context.clock.now);
      } else {
        upstream.user = undefined;
        upstream.destroy();
      }
    }
    this.releaseBackend();
    this.held = [];
    this.cache?.done(success);
    this.countRequest();
    this.logAccess();
    this.client.exchangeDone(this, this.keepClient && (success || this.requestComplete));
  }

  /**
   * Counted when the request ends: against the backend that answered, the pool's `(cache)` or
   * `(none)` when no backend did, or as a rejection when it never reached a pool (404, 413 …).
   */
  private countRequest(): void {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const { metrics } = this.context;
    const pool = this.pool?.name;
    const target = this.cache?.answered
      ? pool === undefined
        ? undefined
        : metrics?.poolRequests(pool, '(cache)')
      : (this.lastBackend?.metrics ??
        (pool === undefined ? undefined : metrics?.poolRequests(pool, '(none)')));
    if (target) {
      const ttfb = this.firstByteAt === 0 ? undefined : (this.firstByteAt - this.startedAt) / 1000;
      target.requestFinished(this.request.method, this.status, seconds, this.bytesIn, this.bytesOut, ttfb);
    } else metrics?.rejected(this.error ?? 'local');
  }

  private logAccess(): void {
    const { config, logger } = this.context;
    if (!config.accessLog || !logger.isLevelEnabled('info')) return;
    const now = performance.now();
    logger.info('access', {
      requestId: this.requestId,
      client: this.client.address,
      method: this.request.method,
      host: headerValue(this.request.headers, 'host'),
      path: this.request.target,
      status: this.status,
      pool: this.pool?.name,
      backend: this.lastBackend?.name,
      attempts: this.attempts,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: round(now - this.startedAt),
      upstreamMs: this.firstByteAt === 0 ? undefined : round(this.firstByteAt - this.startedAt),
      cache: this.cache?.result,
      error: this.error,
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function errorKind(error: Error | undefined, fallback: string): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (code === 'ETIMEDOUT') return 'connect_timeout';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'unreachable';
  return fallback;
}

function absoluteAuthority(target: string): string | undefined {
  const match = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (!match) return undefined;
  const authority = match[1] ?? '';
  const at = authority.lastIndexOf('@');
  return at === -1 ? authority : authority.slice(at + 1);
}

/** A failed attempt that may be retried on another backend. */
class AttemptFailure extends Error {
  readonly kind: string;
  readonly status: number;
  constructor(kind: string, status: number, message: string) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}
