// One client TCP connection: reads request heads, runs one exchange at a time (pipelined
// requests wait their turn, so answers go out in order) and enforces the client timeouts.

import type { Socket } from 'node:net';
import { LinePlace, type Waiter } from '../http/connection-limit.ts';
import { connectionTokens } from '../http/hop-by-hop.ts';
import { HttpError, noBytes, type RequestHead } from '../http/message.ts';
import { parseRequestHead } from '../http/parser.ts';
import { plainResponse } from '../http/responses.ts';
import { contain } from '../observe/faults.ts';
import type { Expirable } from './clock.ts';
import type { ProxyContext } from './context.ts';
import type { DeadlineName, Downstream } from './downstream.ts';
import { Exchange } from './exchange.ts';
import { plainAddress } from './forwarding.ts';
import { newRequestId } from './request-id.ts';

/** How long a closing connection may linger to flush its last answer. */
const lingerMs = 5000;

type State = 'idle' | 'head' | 'busy' | 'closing' | 'closed';

export class ClientConnection implements Expirable, Downstream, Waiter<ClientConnection> {
  deadline = 0;
  /** Its place in the server's line of connections waiting for a request. */
  readonly place: LinePlace<ClientConnection> = new LinePlace(this);
  readonly socket: Socket;
  readonly context: ProxyContext;
  readonly address: string;
  /** The client's port, read once: every access line has it. */
  readonly port: number | undefined;
  readonly trusted: boolean;
  readonly localAuthority: string;
  readonly localPort: number;
  private state: State = 'idle';
  private buffer: Buffer | undefined;
  private exchange: Exchange | undefined;
  private clientEnded = false;
  /** Answers wait in the socket for a client that does not read: no new request until it drains. */
  private awaitingDrain = false;
  /** Clock time of the last byte read or answer finished. */
  private lastActive: number;
  private readonly server: ConnectionEvents;

  constructor(socket: Socket, context: ProxyContext, server: ConnectionEvents) {
    this.socket = socket;
    this.context = context;
    this.server = server;
    this.address = plainAddress(socket.remoteAddress);
    this.port = socket.remotePort;
    this.trusted = context.trustedPeers.has(this.address);
    // What the client connected to: the authority of a request without Host (RFC 9112 3.3).
    const local = plainAddress(socket.localAddress);
    this.localPort = socket.localPort ?? 0;
    this.localAuthority = `${local.includes(':') ? `[${local}]` : local}:${this.localPort}`;
    this.lastActive = context.clock.now;
    socket.setNoDelay(true);
    // The first request must arrive within the header timeout (slowloris gets 408).
    this.deadline = context.clock.now + context.config.timeouts.clientHeader;
    this.state = 'head';
    // A bug in handling this connection closes it; the proxy goes on (observe/faults.ts).
    const fault = () => socket.destroy();
    socket.on(
      'data',
      contain('client_connection', fault, (chunk: Buffer) => this.onData(chunk)),
    );
    socket.on(
      'drain',
      contain('client_connection', fault, () => this.onDrain()),
    );
    socket.on(
      'end',
      contain('client_connection', fault, () => this.onEnd()),
    );
    socket.on('error', () => socket.destroy());
    socket.on(
      'close',
      contain(
        'client_connection',
        () => {},
        () => this.onClose(),
      ),
    );
    context.clock.track(this);
  }

  get idle(): boolean {
    return this.state === 'idle';
  }

  /** No request in progress: idle between requests, or no byte of the next one yet. */
  get waiting(): boolean {
    return this.state === 'idle' || (this.state === 'head' && !this.buffer);
  }

  /** Waiting, and silent for at least `ms`. */
  silentFor(now: number, ms: number): boolean {
    return this.waiting && now - this.lastActive >= ms;
  }

  /** HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked. */
  wantsKeepAlive(request: RequestHead): boolean {
    if (this.context.draining || this.clientEnded) return false;
    const tokens = connectionTokens(request.headers);
    return request.versionMinor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive');
  }

  // Downstream: what the current exchange may do to the connection.

  get gone(): boolean {
    return this.socket.destroyed;
  }

  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  get queued(): number {
    return this.socket.writableLength;
  }

  write(data: Buffer | string): boolean {
    if (this.socket.destroyed) return true;
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  writeAll(head: string, body: readonly Buffer[]): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.cork();
    socket.write(head, 'latin1');
    for (const part of body) socket.write(part);
    socket.uncork();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (this.state !== 'closed' && this.socket.isPaused()) this.socket.resume();
  }

  arm(deadline: DeadlineName | undefined): void {
    if (deadline === undefined) {
      this.deadline = 0;
      return;
    }
    const { timeouts } = this.context.config;
    const ms =
      deadline === 'connect'
        ? timeouts.connect
        : deadline === 'response'
          ? timeouts.responseHeaders
          : deadline === 'body'
            ? timeouts.clientBody
            : timeouts.clientIdle;
    this.deadline = this.context.clock.now + ms;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  reset(): void {
    this.socket.resetAndDestroy();
  }

  /** The exchange's answer is complete (or failed). */
  done(keepAlive: boolean): void {
    this.exchange = undefined;
    this.lastActive = this.context.clock.now;
    if (this.state === 'closed') return;
    // While draining, every answer whose head was written after it began says Connection: close
    // (keepAlive false). One that promised keep-alive before stays open for the client's next
    // request, answered with close: closing under a client that may be reusing the connection
    // right now would reset that request. The drain closes what stays idle (ProxyServer.drain).
    if (!keepAlive || (this.clientEnded && !this.buffer)) {
      this.close();
      return;
    }
    this.state = 'head';
    if (this.buffer) {
      this.deadline = this.context.clock.now + this.context.config.timeouts.clientHeader;
      this.readRequests();
    } else {
      this.state = 'idle';
      this.deadline = this.context.clock.now + this.context.config.timeouts.clientIdle;
      this.server.waiting(this);
    }
    if (!this.backlogged() && !this.pipelineFull()) this.resume();
  }

  /**
   * True (and reading paused) while a running exchange has a whole head's worth of pipelined
   * input waiting behind it: a client that pipelines and never reads holds at most that and one
   * read, however much it sends.
   */
  private pipelineFull(): boolean {
    if (this.state !== 'busy' || (this.buffer?.length ?? 0) <= this.context.config.limits.maxHead)
      return false;
    this.pause();
    return true;
  }

  /** Closes the connection if it is between requests; otherwise after the current answer. */
  closeWhenIdle(): void {
    if (this.waiting) this.close();
  }

  /**
   * True (and reading paused) while answers wait in the socket for the client to read them: the
   * next pipelined request is parsed only after 'drain', so a client that sends and never reads
   * holds at most one head of input and one socket buffer of output (nginx does the same).
   */
  private backlogged(): boolean {
    if (!this.socket.writableNeedDrain) return false;
    if (!this.awaitingDrain) {
      this.awaitingDrain = true;
      this.pause();
      // A client that does not read for this long is gone (or hostile): see expire().
      this.deadline = this.context.clock.now + this.context.config.timeouts.clientIdle;
    }
    return true;
  }

  private onDrain(): void {
    this.exchange?.onClientDrain();
    if (!this.awaitingDrain) return;
    this.awaitingDrain = false;
    if (this.state !== 'head' && this.state !== 'idle') return;
    const { timeouts } = this.context.config;
    this.deadline = this.context.clock.now + (this.buffer ? timeouts.clientHeader : timeouts.clientIdle);
    this.readRequests();
    if (!this.awaitingDrain && (this.state === 'head' || this.state === 'idle')) this.resume();
  }

  private onData(chunk: Buffer): void {
    this.lastActive = this.context.clock.now;
    switch (this.state) {
      case 'closing':
      case 'closed':
        return;
      case 'busy': {
        const exchange = this.exchange;
        if (exchange?.consumesClientBytes) {
          const used = exchange.onClientBody(chunk);
          if (used === chunk.length) return;
          chunk = chunk.subarray(used);
        }
        // A pipelined request waits.
        this.append(chunk);
        this.pipelineFull();
        return;
      }
      case 'idle':
        this.state = 'head';
        this.deadline = this.context.clock.now + this.context.config.timeouts.clientHeader;
        this.append(chunk);
        this.readRequests();
        this.pipelineFull();
        return;
      case 'head':
        this.append(chunk);
        this.readRequests();
        this.pipelineFull();
        return;
    }
  }

  private append(chunk: Buffer): void {
    this.buffer = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk;
  }

  /** Parses and runs requests from the buffer until it needs more bytes or an exchange is busy. */
  private readRequests(): void {
    // An exchange Sluice answers itself (404, 413…) ends inside start(), before its leftover bytes
    // are back in the buffer: the connection is then idle with a pipelined request waiting.
    while (this.buffer && (this.state === 'head' || this.state === 'idle')) {
      if (this.backlogged()) return;
      if (this.state === 'idle') {
        this.state = 'head';
        this.deadline = this.context.clock.now + this.context.config.timeouts.clientHeader;
      }
      let parsed: { head: RequestHead; size: number } | null;
      try {
        parsed = parseRequestHead(this.buffer, this.context.config.limits);
      } catch (error) {
        this.reject(error);
        return;
      }
      if (!parsed) {
        if (this.clientEnded) this.close();
        return;
      }
      const rest = parsed.size === this.buffer.length ? noBytes : this.buffer.subarray(parsed.size);
      this.buffer = undefined;
      this.state = 'busy';
      const exchange = new Exchange(this, this.context, parsed.head);
      this.exchange = exchange;
      const used = exchange.start(rest);
      if (used < rest.length) {
        const leftover = rest.subarray(used);
        this.buffer = this.buffer ? Buffer.concat([leftover, this.buffer]) : leftover;
      }
    }
  }

  /** After a 101 answer the connection is a tunnel: pass the bytes already read on. */
  startTunnel(): void {
    const buffered = this.buffer;
    this.buffer = undefined;
    if (buffered) this.exchange?.onClientBody(buffered);
    this.resume();
  }

  expire(): void {
    switch (this.state) {
      case 'idle':
        this.close();
        return;
      case 'head': {
        if (this.awaitingDrain) {
          // Answers sat unread for clientIdle: the client is not reading.
          this.context.metrics?.rejected('client_not_reading');
          this.socket.destroy();
          return;
        }
        const message = 'request head not received in time';
        this.context.metrics?.rejected('client_timeout');
        this.logRejected(408, 'client_timeout', message);
        this.respondAndClose(408, message);
        return;
      }
      case 'busy':
        this.exchange?.expire();
        return;
      case 'closing':
        this.socket.destroy();
        return;
      case 'closed':
        return;
    }
  }

  private reject(error: unknown): void {
    const status = error instanceof HttpError ? error.status : 400;
    const message = error instanceof Error ? error.message : 'bad request';
    const reason = rejectionReason(status);
    this.context.metrics?.rejected(reason);
    this.logRejected(status, reason, message);
    this.respondAndClose(status, message);
  }

  /** A request refused before it had a head: an access line of type `rejected` with an id of its own. */
  private logRejected(status: number, reason: string, message: string): void {
    const { accessLog, logger } = this.context;
    if (accessLog) {
      accessLog.record({
        type: 'rejected',
        requestId: newRequestId(),
        client: this.address,
        clientPort: this.socket.remotePort,
        status,
        error: reason,
        detail: message,
      });
    } else if (logger.isLevelEnabled('info'))
      logger.info('request rejected', { client: this.address, status, reason: message });
  }

  private respondAndClose(status: number, message: string): void {
    this.buffer = undefined;
    this.state = 'closing';
    this.deadline = this.context.clock.now + lingerMs;
    // Reading on (and discarding) lets the answer reach a client that is still sending.
    this.socket.resume();
    this.socket.end(plainResponse(status, message, { close: true }), 'latin1');
  }

  private close(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.buffer = undefined;
    this.deadline = this.context.clock.now + lingerMs;
    this.socket.resume();
    this.socket.end();
  }

  private onEnd(): void {
    this.clientEnded = true;
    if (this.state === 'busy') {
      this.exchange?.onClientEnd();
      return;
    }
    if (this.state === 'closing') {
      this.socket.destroy();
      return;
    }
    if (this.buffer) this.readRequests();
    else this.close();
  }

  private onClose(): void {
    this.state = 'closed';
    this.deadline = 0;
    this.context.clock.untrack(this);
    this.exchange?.onClientGone();
    this.exchange = undefined;
    this.server.closed(this);
  }
}

/** What a connection tells the server that holds it. */
export interface ConnectionEvents {
  /** It is waiting for the next request on a kept-alive connection, from now on. */
  waiting(connection: ClientConnection): void;
  closed(connection: ClientConnection): void;
}

/** The `reason` label of sluice_requests_rejected_total for a request refused while parsing. */
export function rejectionReason(status: number): string {
  switch (status) {
    case 413:
      return 'body_too_large';
    case 414:
      return 'uri_too_long';
    case 431:
      return 'header_too_large';
    case 501:
      return 'not_implemented';
    case 505:
      return 'version_not_supported';
    default:
      return 'bad_request';
  }
}
