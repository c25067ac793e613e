// One try of one request on one backend, the part the proxy's exchange and the cache refresher
// share: take an idle keep-alive connection or open one (timing the connect), send the head and
// any body bytes held so far in one write, read past 1xx interim answers to the final head, and
// retry once on a fresh connection when a reused one turns out closed (the backend's keep-alive
// timeout raced our reuse: the connection's fault, not the backend's). It counts itself in the
// backend's in-flight number and, when it ends, hands the connection back to the pool if the
// response allows it, else closes it. A failure before the final head is classified
// (./failure.ts) and reported once; the attempt is over then.
import { performance } from 'node:perf_hooks';
import { ambiguousResponseFraming, NONE, responseFraming } from '../http/framing.ts';
import { connectionTokens } from '../http/hop-by-hop.ts';
import { type BodyFraming, noBytes, type ResponseHead } from '../http/message.ts';
import { withHead } from '../http/one-write.ts';
import { parseResponseHead } from '../http/parser.ts';
import { parsePlainResponse } from '../http/plain-response.ts';
import type { Backend, TimeSource } from './backend.ts';
import type { UpstreamConnection, UpstreamUser } from './connection.ts';
import { badResponse, classify, type Failure, tooManyInterimAnswers } from './failure.ts';

/** More interim answers than 100 Continue, 102 and 103 Early Hints ever need: 502. */
const maxInterimAnswers = 8;

/** What an attempt reports to whoever runs it. */
export interface AttemptUser {
  /** A new connection is being opened (time to arm a connect deadline). */
  onConnecting(): void;
  /** Body bytes to send right after the head; read at each send, as they may grow meanwhile. */
  heldBody(): readonly Buffer[];
  /** The head and the held body went out. */
  onSent(): void;
  /** Whether the request may be sent again, after a reused connection closed before answering. */
  mayResend(): boolean;
  /** Bytes of the answer arrived before its final head (a deadline may be pushed back). */
  onReceiving(): void;
  /** A 1xx interim answer (not 101). */
  onInterim(head: ResponseHead): void;
  /** The final head, or a 101; `rest` is what came after it, `tokens` its Connection tokens. */
  onHead(head: ResponseHead, framing: BodyFraming, rest: Buffer, tokens: readonly string[]): void;
  /** Bytes after the final head, as the backend sent them. */
  onBody(chunk: Buffer): void;
  onDrain(): void;
  /** The attempt failed before a final head; the connection is gone. */
  onFailure(failure: Failure): void;
  /** The connection ended after the final head (a close-delimited end, or a failure). */
  onClose(error: Error | undefined): void;
  /** The backend half-closed after the final head: true to keep writing to it (a tunnel). */
  onEnd(): boolean;
}

type Stage = 'connecting' | 'sent' | 'response' | 'ended';

export class UpstreamAttempt implements UpstreamUser {
  readonly backend: Backend;
  private readonly head: string;
  private readonly method: string;
  private readonly user: AttemptUser;
  private readonly clock: TimeSource;
  private connection: UpstreamConnection | undefined;
  private stage: Stage = 'connecting';
  /** A response head not complete yet. */
  private partial: Buffer | undefined;
  private received = false;

  /** Some of the answer arrived (a 100 Continue counts): the backend has spoken. */
  get answering(): boolean {
    return this.received;
  }
  private staleRetried = false;
  /** Interim (1xx) answers so far. */
  private interims = 0;
  private connectStartedAt = 0;
  /** The final head lets the connection carry another request. */
  reusable = false;

  constructor(backend: Backend, head: string, method: string, user: AttemptUser, clock: TimeSource) {
    this.backend = backend;
    this.head = head;
    this.method = method;
    this.user = user;
    this.clock = clock;
    backend.inFlight++;
  }

  /** Takes an idle connection and sends at once, or opens a new one. */
  start(): void {
    const idle = this.backend.connections.acquire();
    if (idle === undefined) {
      this.open();
      return;
    }
    this.attach(idle);
    this.send();
  }

  /** The request went out on the current connection (body bytes may follow it). */
  get sent(): boolean {
    return this.stage === 'sent' || this.stage === 'response';
  }

  get ended(): boolean {
    return this.stage === 'ended';
  }

  /** The backend is not taking what was written: its socket holds more than its buffer wants. */
  get backlogged(): boolean {
    return this.connection?.socket.writableNeedDrain ?? false;
  }

  /** Writes request body (or tunnel) bytes; false when the socket is full (wait for onDrain). */
  write(chunk: Buffer): boolean {
    return this.connection?.socket.write(chunk) ?? true;
  }

  pause(): void {
    this.connection?.socket.pause();
  }

  resume(): void {
    this.connection?.socket.resume();
  }

  /** Half-closes the connection (a tunnel's client ended its side). */
  endWrite(): void {
    this.connection?.socket.end();
  }

  /**
   * Ends the attempt: the connection goes back to the pool when `reuse` is true and the
   * response allowed it (`reusable`), else it is closed.
   */
  close(reuse: boolean): void {
    if (this.stage === 'ended') return;
    this.stage = 'ended';
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined) {
      connection.user = undefined;
      if (reuse && this.reusable && !connection.closed) {
        if (connection.socket.isPaused()) connection.socket.resume();
        this.backend.connections.release(connection, this.clock.now);
      } else connection.destroy();
    }
    this.backend.inFlight--;
  }

  private open(): void {
    this.user.onConnecting();
    this.connectStartedAt = performance.now();
    const connection = this.backend.connections.connect((connected) => {
      if (this.connection !== connected || this.stage !== 'connecting') return;
      this.backend.metrics.connectTimed((performance.now() - this.connectStartedAt) / 1000);
      this.send();
    });
    this.attach(connection);
  }

  private attach(connection: UpstreamConnection): void {
    connection.user = this;
    connection.requests++;
    this.connection = connection;
  }

  private send(): void {
    const connection = this.connection;
    if (connection === undefined) return;
    this.stage = 'sent';
    const message = withHead(this.head, this.user.heldBody());
    if (typeof message === 'string') connection.socket.write(message, 'latin1');
    else connection.socket.write(message);
    this.user.onSent();
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.stage === 'response') this.user.onBody(chunk);
    else if (this.stage === 'sent') this.readHead(chunk);
  }

  onUpstreamDrain(): void {
    this.user.onDrain();
  }

  onUpstreamEnd(): boolean {
    return this.stage === 'response' && this.user.onEnd();
  }

  onUpstreamClose(error: Error | undefined): void {
    const connection = this.connection;
    this.connection = undefined;
    switch (this.stage) {
      case 'connecting':
        this.fail(classify(error, 'connect'));
        return;
      case 'sent':
        if (
          !this.received &&
          !this.staleRetried &&
          (connection?.requests ?? 0) > 1 &&
          this.user.mayResend()
        ) {
          this.staleRetried = true;
          this.stage = 'connecting';
          this.open();
          return;
        }
        this.fail(classify(error, this.received ? 'receiving' : 'sent'));
        return;
      case 'response':
        this.user.onClose(error);
        return;
      case 'ended':
        return;
    }
  }

  /** The 1xx loop: interim answers go to the user, the final head starts the response. */
  private readHead(chunk: Buffer): void {
    // The first bytes start the time for the head; more of it does not restart it, so a head
    // trickled in a byte at a time cannot hold the client past responseHeaders.
    if (!this.received) {
      this.received = true;
      this.user.onReceiving();
    }
    let buffer = this.partial === undefined ? chunk : Buffer.concat([this.partial, chunk]);
    for (;;) {
      // Most final heads take the plain lane (plain-response.ts): read in their bytes, no strings.
      const plain = this.method === 'HEAD' ? undefined : parsePlainResponse(buffer);
      let parsed: { head: ResponseHead; size: number } | null | undefined = plain;
      let framing = plain?.head.framing ?? NONE;
      if (parsed === undefined)
        try {
          parsed = parseResponseHead(buffer);
          if (parsed !== null && parsed.head.status >= 200)
            framing = responseFraming(parsed.head, this.method);
        } catch {
          this.fail(badResponse);
          return;
        }
      if (parsed === null) {
        this.partial = buffer;
        return;
      }
      const { head } = parsed;
      buffer = parsed.size === buffer.length ? noBytes : buffer.subarray(parsed.size);
      this.partial = undefined;
      if (head.status >= 200 || head.status === 101) {
        this.stage = 'response';
        const tokens = plain?.head.tokens ?? connectionTokens(head.headers);
        // Reused only when the response ends exactly at its framing: nothing ambiguous, and no
        // bytes after a bodiless answer (they would become the next request's response).
        const bodiless = framing.kind === 'none';
        if (bodiless && buffer.length > 0 && head.status !== 101) this.backend.connections.sawUnasked();
        this.reusable =
          head.status !== 101 &&
          framing.kind !== 'close' &&
          (head.versionMinor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive')) &&
          !(bodiless && buffer.length > 0) &&
          // A plain head has one plain Content-Length and no Transfer-Encoding: never ambiguous.
          !(plain === undefined && ambiguousResponseFraming(head, bodiless));
        this.user.onHead(head, framing, buffer, tokens);
        return;
      }
      // An interim answer says the backend is working on it: the time for the final head starts
      // anew, a bounded number of times.
      if (++this.interims > maxInterimAnswers) {
        this.fail(tooManyInterimAnswers);
        return;
      }
      this.user.onReceiving();
      this.user.onInterim(head);
      if (buffer.length === 0 || this.stage !== 'sent') return;
    }
  }

  private fail(failure: Failure): void {
    this.close(false);
    this.user.onFailure(failure);
  }
}
