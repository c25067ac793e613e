// A small HTTP/1.1 server on Sluice's own codec, for Sluice's own endpoints (the admin port,
// the demo backends): whole small bodies, keep-alive, answers in order. Not the data path.
import { createServer, type Server, type Socket } from 'node:net';
import { ChunkedDecoder } from './chunked.ts';
import { ConnectionLimit, LinePlace, type ShedReason, type Waiter } from './connection-limit.ts';
import { requestFraming } from './framing.ts';
import { connectionTokens } from './hop-by-hop.ts';
import { HttpError, type RequestHead } from './message.ts';
import { parseRequestHead } from './parser.ts';
import { reasonPhrase } from './status.ts';

export interface EndpointRequest {
  head: RequestHead;
  /** Path of the target without the query. */
  path: string;
  query: URLSearchParams;
  body: Buffer;
}

export interface EndpointResponse {
  status: number;
  reason?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export type EndpointHandler = (request: EndpointRequest) => EndpointResponse | Promise<EndpointResponse>;

const maxBody = 1024 * 1024;
const idleTimeoutMs = 30_000;
/** A new connection is not closed for another within this: its request may be waiting unread. */
const newConnectionGraceMs = 100;

export interface EndpointOptions {
  /** Hears of every error a handler or the connection code threw: the request gets 500, or the connection is closed, and the process goes on. */
  onError?: (error: unknown) => void;
  /**
   * Connections at once. At the limit, the one that has waited longest for a request is closed
   * for a newcomer; if none may be, the newcomer gets 503.
   */
  maxConnections?: number;
  /** A connection closed or refused at the limit: `idle_evicted` or `max_connections`. */
  onShed?: (reason: ShedReason) => void;
  /**
   * A request must arrive whole within this of its first byte, or it gets 408 and the connection
   * closes: a slow trickle holds no connection (default 10 s).
   */
  requestTimeoutMs?: number;
}

/** One connection: what it has buffered, and whether a request of it is being answered. */
class EndpointConnection implements Waiter<EndpointConnection> {
  readonly socket: Socket;
  readonly place: LinePlace<EndpointConnection> = new LinePlace(this);
  buffer: Buffer = Buffer.alloc(0);
  busy = false;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  get waiting(): boolean {
    return !this.busy && this.buffer.length === 0;
  }
}

export function createEndpointServer(handler: EndpointHandler, options: EndpointOptions = {}): Server {
  // Each 503 holds a descriptor for up to a second: a few at a time, the rest are closed.
  const connections = new ConnectionLimit<EndpointConnection>(
    options.maxConnections ?? Number.POSITIVE_INFINITY,
    4,
    options.onShed,
  );
  const server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    if (!connections.admit(socket, performance.now() - newConnectionGraceMs)) return;
    const connection = new EndpointConnection(socket);
    serveConnection(connection, handler, options, () => connections.waiting(connection, performance.now()));
    connections.added(connection, performance.now());
    socket.once('close', () => connections.closed(connection));
  });
  // accept() failing (EMFILE …) while listening must not end the process; listen errors go to
  // whoever called listen().
  server.on('error', (error) => {
    if (server.listening) options.onError?.(error);
  });
  return server;
}

/** Input kept beyond the request being answered (the largest request fits): reading pauses past it. */
const maxPipelined = maxBody + 64 * 1024;

/** Serves requests on `socket` in order; `waiting` is called when an answer is done and no request is buffered. */
function serveConnection(
  connection: EndpointConnection,
  handler: EndpointHandler,
  { onError, requestTimeoutMs = 10_000 }: EndpointOptions,
  waiting: () => void,
): void {
  const { socket } = connection;
  let requestTimer: NodeJS.Timeout | undefined;
  const stopRequestTimer = () => {
    clearTimeout(requestTimer);
    requestTimer = undefined;
  };
  socket.setTimeout(idleTimeoutMs, () => socket.destroy());
  socket.once('close', stopRequestTimer);
  const fail = (status: number, message: string) => {
    stopRequestTimer();
    socket.end(serialize('GET', { status, body: `${message}\n` }, false));
  };
  const next = async (): Promise<void> => {
    while (!connection.busy && !socket.destroyed) {
      let request: { head: RequestHead; body: Buffer; size: number } | null;
      try {
        request = readRequest(connection.buffer);
      } catch (error) {
        fail(error instanceof HttpError ? error.status : 400, (error as Error).message);
        return;
      }
      if (!request) {
        if (connection.buffer.length === 0) stopRequestTimer();
        else requestTimer ??= setTimeout(() => fail(408, 'request not received in time'), requestTimeoutMs);
        return;
      }
      stopRequestTimer();
      connection.buffer = connection.buffer.subarray(request.size);
      connection.busy = true;
      const tokens = connectionTokens(request.head.headers);
      const keepAlive =
        request.head.versionMinor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive');
      const target = splitTarget(request.head.target);
      let response: EndpointResponse;
      if (target === undefined) response = { status: 400, body: 'invalid request-target\n' };
      else {
        try {
          response = await handler({ head: request.head, ...target, body: request.body });
        } catch (error) {
          onError?.(error);
          response = { status: 500, body: 'internal error\n' };
        }
      }
      if (socket.destroyed) return;
      const bytes = serialize(request.head.method, response, keepAlive);
      if (keepAlive) socket.write(bytes);
      else socket.end(bytes);
      if (!keepAlive) {
        connection.busy = false;
        return;
      }
      // Pipelined requests: the next waits until the client reads this answer ('drain'), and one
      // turn of the event loop, so a connection full of them neither piles answers up in memory
      // nor keeps the process (its health checks, the proxy) from everything else.
      if (socket.writableNeedDrain) {
        socket.pause();
        connection.busy = false;
        return;
      }
      if (connection.buffer.length > 0) await new Promise((resolve) => setImmediate(resolve));
      connection.busy = false;
      if (connection.buffer.length === 0) waiting();
      if (connection.buffer.length <= maxPipelined) socket.resume();
    }
  };
  // Whatever goes wrong costs this connection only.
  const serve = () =>
    next().catch((error: unknown) => {
      onError?.(error);
      socket.destroy();
    });
  socket.on('data', (chunk: Buffer) => {
    const { buffer } = connection;
    connection.buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    if (connection.buffer.length > maxPipelined) socket.pause();
    serve();
  });
  socket.on('drain', () => {
    if (connection.buffer.length <= maxPipelined) socket.resume();
    serve();
  });
}

/**
 * The path and query of an origin-form (`/a?b`) or absolute-form (`http://h/a?b`) target, or
 * undefined for anything else (`*`, an authority, `//host/x`, a URL that does not parse).
 */
export function splitTarget(target: string): { path: string; query: URLSearchParams } | undefined {
  let originForm = target;
  if (target.charCodeAt(0) !== 0x2f) {
    if (!/^https?:\/\//i.test(target)) return undefined;
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return undefined;
    }
    originForm = `${url.pathname}${url.search}`;
  }
  if (originForm.startsWith('//')) return undefined;
  const mark = originForm.indexOf('?');
  const path = mark === -1 ? originForm : originForm.slice(0, mark);
  return { path, query: new URLSearchParams(mark === -1 ? '' : originForm.slice(mark + 1)) };
}

/** A whole request at the start of `buffer`, or null when more bytes are needed. */
function readRequest(buffer: Buffer): { head: RequestHead; body: Buffer; size: number } | null {
  const parsed = parseRequestHead(buffer);
  if (!parsed) return null;
  const framing = requestFraming(parsed.head);
  const rest = buffer.subarray(parsed.size);
  if (framing.kind === 'none') return { head: parsed.head, body: Buffer.alloc(0), size: parsed.size };
  if (framing.kind === 'length') {
    if (framing.length > maxBody) throw new HttpError(413, 'request body too large');
    if (rest.length < framing.length) return null;
    return { head: parsed.head, body: rest.subarray(0, framing.length), size: parsed.size + framing.length };
  }
  const decoder = new ChunkedDecoder();
  const parts: Buffer[] = [];
  const used = decoder.feed(rest, (data) => parts.push(data));
  if (!decoder.done) {
    if (rest.length > maxBody) throw new HttpError(413, 'request body too large');
    return null;
  }
  return { head: parsed.head, body: Buffer.concat(parts), size: parsed.size + used };
}

function serialize(method: string, response: EndpointResponse, keepAlive: boolean): Buffer {
  const body =
    typeof response.body === 'string' ? Buffer.from(response.body) : (response.body ?? Buffer.alloc(0));
  let head = `HTTP/1.1 ${response.status} ${response.reason ?? reasonPhrase(response.status)}\r\n`;
  const headers = { 'content-type': 'text/plain; charset=utf-8', ...response.headers };
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  head += `content-length: ${body.length}\r\n`;
  if (!keepAlive) head += 'connection: close\r\n';
  head += '\r\n';
  const headBytes = Buffer.from(head, 'latin1');
  return method === 'HEAD' ? headBytes : Buffer.concat([headBytes, body]);
}
