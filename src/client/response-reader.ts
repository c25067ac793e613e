// Reads one response with Sluice's own codec. ResponseParser is the pure, incremental part: fed
// bytes, it returns events (interim 1xx heads, the final head, body pieces, the end) and hands
// back whatever follows the response. readResponse drives it from a socket, awaiting each
// event's handler, so a slow sink (a file, a pipe) pauses the socket: memory stays flat.
import type { Socket } from 'node:net';
import { ChunkedDecoder } from '../http/chunked.ts';
import { responseFraming } from '../http/framing.ts';
import { type BodyFraming, type HeaderField, HttpError, type ResponseHead } from '../http/message.ts';
import { parseResponseHead } from '../http/parser.ts';
import { ClientError, exitCodes } from './errors.ts';

export type ResponseEvent =
  /** A 1xx response other than 101: skipped, shown with -v. */
  | { type: 'interim'; head: ResponseHead; raw: Buffer }
  | { type: 'head'; head: ResponseHead; framing: BodyFraming; raw: Buffer }
  /** A piece of the body (after de-chunking); may be a view of the fed buffer. */
  | { type: 'data'; chunk: Buffer }
  /** The response is complete; `rest` is what the connection sent after it. */
  | { type: 'end'; trailers: HeaderField[]; rest: Buffer };

const HEAD = 0;
const LENGTH = 1;
const CHUNKED = 2;
const CLOSE = 3;
const DONE = 4;

const HTTP_PREFIX = Buffer.from('HTTP/');

function malformed(message: string): ClientError {
  return new ClientError(exitCodes.malformed, `malformed response: ${message}`);
}

/** The first bytes of `buf`, printable, for an error message. */
function preview(buf: Buffer): string {
  const text = buf.toString('latin1', 0, Math.min(buf.length, 24)).replace(/[^\x20-\x7e]/g, '.');
  return buf.length > 24 ? `${text}...` : text;
}

export class ResponseParser {
  readonly #method: string;
  readonly #maxHead: number | undefined;
  #state = HEAD;
  #buffer: Buffer = Buffer.alloc(0);
  #remaining = 0;
  #length = 0;
  #decoder: ChunkedDecoder | undefined;
  #received = 0;

  /** `method` of the request: a HEAD response has no body whatever its fields say. */
  constructor(method: string, options: { maxHead?: number } = {}) {
    this.#method = method;
    this.#maxHead = options.maxHead;
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  /** Bytes fed so far (heads, framing and body). */
  get received(): number {
    return this.#received;
  }

  /** Feeds the next bytes; throws ClientError (exit 8) for a malformed response. */
  feed(chunk: Buffer): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    if (this.#state === DONE) {
      if (chunk.length > 0) throw new Error('ResponseParser: feed after the end');
      return events;
    }
    this.#received += chunk.length;
    let input = chunk;
    try {
      while (input.length > 0 && this.#state !== DONE) input = this.#step(input, events);
    } catch (error) {
      if (error instanceof HttpError) throw malformed(error.message);
      throw error;
    }
    return events;
  }

  /** The connection closed: ends a close-delimited body, else throws what went wrong. */
  finish(): ResponseEvent[] {
    switch (this.#state) {
      case DONE:
        return [];
      case CLOSE:
        this.#state = DONE;
        return [{ type: 'end', trailers: [], rest: Buffer.alloc(0) }];
      case HEAD:
        if (this.#received === 0) {
          throw new ClientError(
            exitCodes.emptyReply,
            'empty reply: the server closed the connection without answering',
          );
        }
        throw malformed('the connection closed in the middle of the response head');
      case LENGTH:
        throw new ClientError(
          exitCodes.partial,
          `the connection closed after ${this.#length - this.#remaining} of ${this.#length} body bytes`,
        );
      default:
        throw new ClientError(exitCodes.partial, 'the connection closed before the last chunk of the body');
    }
  }

  /** Consumes a prefix of `input`, pushes events, returns the rest. */
  #step(input: Buffer, events: ResponseEvent[]): Buffer {
    switch (this.#state) {
      case HEAD:
        return this.#head(input, events);
      case LENGTH: {
        const n = Math.min(this.#remaining, input.length);
        events.push({ type: 'data', chunk: input.subarray(0, n) });
        this.#remaining -= n;
        if (this.#remaining === 0) return this.#end(input.subarray(n), [], events);
        return input.subarray(n);
      }
      case CHUNKED: {
        const decoder = this.#decoder as ChunkedDecoder;
        const used = decoder.feed(input, (data) => events.push({ type: 'data', chunk: data }));
        if (decoder.done) return this.#end(input.subarray(used), decoder.trailers, events);
        return input.subarray(used);
      }
      default: // CLOSE
        events.push({ type: 'data', chunk: input });
        return Buffer.alloc(0);
    }
  }

  #head(input: Buffer, events: ResponseEvent[]): Buffer {
    this.#buffer = this.#buffer.length === 0 ? input : Buffer.concat([this.#buffer, input]);
    const buf = this.#buffer;
    // Fail at once on something that is not HTTP at all, rather than waiting for a head end.
    const prefix = Math.min(buf.length, HTTP_PREFIX.length);
    if (buf.compare(HTTP_PREFIX, 0, prefix, 0, prefix) !== 0) {
      throw malformed(`not an HTTP/1.x response (it starts with "${preview(buf)}")`);
    }
    const parsed = parseResponseHead(buf, this.#maxHead);
    if (parsed === null) return Buffer.alloc(0);
    const { head, size } = parsed;
    const raw = buf.subarray(0, size);
    const rest = buf.subarray(size);
    this.#buffer = Buffer.alloc(0);
    if (head.status < 200 && head.status !== 101) {
      events.push({ type: 'interim', head, raw });
      return rest;
    }
    // 101 Switching Protocols ends HTTP on this connection: no body to read here.
    const framing: BodyFraming = head.status === 101 ? { kind: 'none' } : responseFraming(head, this.#method);
    events.push({ type: 'head', head, framing, raw });
    switch (framing.kind) {
      case 'none':
        return this.#end(rest, [], events);
      case 'length':
        this.#state = LENGTH;
        this.#remaining = framing.length;
        this.#length = framing.length;
        return rest;
      case 'chunked':
        this.#state = CHUNKED;
        this.#decoder = new ChunkedDecoder({ errorStatus: 502 });
        return rest;
      default:
        this.#state = CLOSE;
        return rest;
    }
  }

  #end(rest: Buffer, trailers: HeaderField[], events: ResponseEvent[]): Buffer {
    this.#state = DONE;
    this.#received -= rest.length;
    events.push({ type: 'end', trailers, rest });
    return Buffer.alloc(0);
  }
}

/** Chunks from a socket, with a slot for bytes read past the end of one response. */
export class SocketChunks {
  readonly #iterator: AsyncIterator<Buffer>;
  #pending: Buffer | undefined;

  constructor(socket: Socket) {
    this.#iterator = socket[Symbol.asyncIterator]();
  }

  /** The next chunk, or null once the peer has closed its side. Rejects on socket errors. */
  async next(): Promise<Buffer | null> {
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      return pending;
    }
    const result = await this.#iterator.next();
    return result.done ? null : result.value;
  }

  /** Puts bytes back to be returned by the next `next()`. */
  unshift(bytes: Buffer): void {
    if (bytes.length > 0) this.#pending = bytes;
  }
}

export interface ResponseHandler {
  interim?(head: ResponseHead, raw: Buffer): void | Promise<void>;
  head(head: ResponseHead, framing: BodyFraming, raw: Buffer): void | Promise<void>;
  data(chunk: Buffer): void | Promise<void>;
}

export interface ResponseSummary {
  head: ResponseHead;
  framing: BodyFraming;
  /** Body bytes after de-chunking. */
  bodyBytes: number;
  trailers: HeaderField[];
  /** The peer closed the connection (a close-delimited body or an early close). */
  closed: boolean;
}

/**
 * Reads one response from `chunks`, calling the handler for each event in order and awaiting
 * it before reading on. Bytes after the response are put back into `chunks`.
 */
export async function readResponse(
  chunks: SocketChunks,
  method: string,
  handler: ResponseHandler,
): Promise<ResponseSummary> {
  const parser = new ResponseParser(method);
  let head: ResponseHead | undefined;
  let framing: BodyFraming = { kind: 'none' };
  let bodyBytes = 0;
  let closed = false;
  for (;;) {
    const chunk = await chunks.next();
    if (chunk === null) closed = true;
    const events = chunk === null ? parser.finish() : parser.feed(chunk);
    for (const event of events) {
      switch (event.type) {
        case 'interim':
          await handler.interim?.(event.head, event.raw);
          break;
        case 'head':
          head = event.head;
          framing = event.framing;
          await handler.head(event.head, event.framing, event.raw);
          break;
        case 'data':
          bodyBytes += event.chunk.length;
          await handler.data(event.chunk);
          break;
        default:
          chunks.unshift(event.rest);
          return { head: head as ResponseHead, framing, bodyBytes, trailers: event.trailers, closed };
      }
    }
  }
}
