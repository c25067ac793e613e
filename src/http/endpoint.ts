// A small HTTP/1.1 server on Sluice's own codec, for Sluice's own endpoints (the admin port,
// the demo backends): whole small bodies, keep-alive, answers in order. Not the data path.
import { createServer, type Server, type Socket } from 'node:net';
import { ChunkedDecoder } from './chunked.ts';
import { ConnectionLimit, LinePlace, type ShedReason, type Waiter } from './connection-limit.ts';
import { requestFraming } from './framing.ts';
import { connectionTokens } from './hop-by-hop.ts';
import { type HeadLimits, HttpError, type RequestHead } from './message.ts';
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
  /**
   * Paths (no query) answered even over the limit, for health probes: a newcomer the limit would
   * refuse whose first request is a `GET` or `HEAD` of one, without a body, gets the handler's
   * answer with `Connection: close`. Anything else over the limit still gets 503.
   */
  exempt?: (path: string) => boolean;
  /**
   * A connection closed or refused at the limit: `idle_evicted` or `max_connections` (not an
   * exempt request answered over it).
   */
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
  // Each answer over the limit holds a descriptor for up to a second: a few at a time, the rest
  // are closed.
  const { exempt, onError } = options;
  const connections = new ConnectionLimit<EndpointConnection>(
    options.maxConnections ?? Number.POSITIVE_INFINITY,
    4,
    options.onShed,
    exempt && ((socket) => answerExempt(socket, handler, exempt, onError)),
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
      const response =
        target === undefined
          ? { status: 400, body: 'invalid request-target\n' }
          : await respond(handler, { head: request.head, ...target, body: request.body }, onError);
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

/** The handler's answer to `request`, or 500 if it threw. */
async function respond(
  handler: EndpointHandler,
  request: EndpointRequest,
  onError: EndpointOptions['onError'],
): Promise<EndpointResponse> {
  try {
    return await handler(request);
  } catch (error) {
    onError?.(error);
    return { status: 500, body: 'internal error\n' };
  }
}

/** The one request head a newcomer over the limit may send: a probe's is a few short lines. */
const overLimitHead: HeadLimits = { maxRequestLine: 1024, maxHead: 4096 };

/**
 * A newcomer over the limit (connection-limit.ts OverLimitAnswer): an exempt request gets the
 * handler's answer and the connection closes. The connection lives 1 s from accept at most (Refusals), so a
 * head that trickles, or an answer the client does not read, holds no descriptor longer.
 */
function answerExempt(
  socket: Socket,
  handler: EndpointHandler,
  exempt: (path: string) => boolean,
  onError: EndpointOptions['onError'],
): Promise<boolean> {
  return firstHead(socket)
    .then(async (head) => {
      const target = head && splitTarget(head.target);
      if (!head || !target || !isExempt(head, target.path, exempt)) return false;
      const response = await respond(handler, { head, ...target, body: Buffer.alloc(0) }, onError);
      if (socket.destroyed) return false;
      socket.end(serialize(head.method, response, false));
      return true;
    })
    .catch((error: unknown) => {
      onError?.(error);
      socket.destroy();
      return false;
    });
}

/** A GET or HEAD of an exempt path, without a body (one with a body, or a broken framing, gets 503). */
function isExempt(head: RequestHead, path: string, exempt: (path: string) => boolean): boolean {
  if ((head.method !== 'GET' && head.method !== 'HEAD') || !exempt(path)) return false;
  try {
    return requestFraming(head).kind === 'none';
  } catch {
    return false;
  }
}

/**
 * The first request head on `socket` (within `overLimitHead`), or undefined once the socket
 * closed first; a malformed or too large head closes it. What follows the head is not kept.
 */
function firstHead(socket: Socket): Promise<RequestHead | undefined> {
  return new Promise((resolve) => {
    let buffer: Buffer = Buffer.alloc(0);
    const done = (head: RequestHead | undefined) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(head);
    };
    const onClose = () => done(undefined);
    const onData = (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      try {
        const parsed = parseRequestHead(buffer, overLimitHead);
        if (parsed) done(parsed.head);
      } catch {
        socket.destroy();
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
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
