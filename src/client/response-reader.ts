// Reads one response from a socket for the client: ResponseParser is the pure reader of
// src/http/response-reader.ts with its errors mapped to the client's exit codes; readResponse
// drives it, awaiting each event's handler, so a slow sink (a file, a pipe) pauses the socket:
// memory stays flat.
import type { Socket } from 'node:net';
import type { BodyFraming, HeaderField, ResponseHead } from '../http/message.ts';
import { type ResponseEvent, ResponseParseError, ResponseReader } from '../http/response-reader.ts';
import { ClientError, exitCodes } from './errors.ts';

export type { ResponseEvent } from '../http/response-reader.ts';

const exitCodeOf = {
  malformed: exitCodes.malformed,
  empty: exitCodes.emptyReply,
  partial: exitCodes.partial,
} as const;

function asClientError(error: unknown): unknown {
  return error instanceof ResponseParseError ? new ClientError(exitCodeOf[error.kind], error.message) : error;
}

/** The response reader whose errors are ClientErrors (exit 8 malformed, 52 empty, 18 partial). */
export class ResponseParser extends ResponseReader {
  override feed(chunk: Buffer, events: ResponseEvent[] = []): ResponseEvent[] {
    try {
      return super.feed(chunk, events);
    } catch (error) {
      throw asClientError(error);
    }
  }

  override finish(): ResponseEvent[] {
    try {
      return super.finish();
    } catch (error) {
      throw asClientError(error);
    }
  }
}

/** Chunks from a socket, one response after another. */
export class SocketChunks {
  readonly #iterator: AsyncIterator<Buffer>;

  constructor(socket: Socket) {
    this.#iterator = socket[Symbol.asyncIterator]();
  }

  /** The next chunk, or null once the peer has closed its side. Rejects on socket errors. */
  async next(): Promise<Buffer | null> {
    const result = await this.#iterator.next();
    return result.done ? null : result.value;
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
  /**
   * Bytes read past the response's framing (a body longer than its Content-Length, a 204 with
   * one): never the start of the next response, so the connection is not to be reused.
   */
  excess: number;
}

/**
 * Reads one response from `chunks`, calling the handler for each event in order and awaiting
 * it before reading on. Bytes after the response are counted as excess, not kept.
 */
export async function readResponse(
  chunks: SocketChunks,
  method: string,
  handler: ResponseHandler,
  upgradeAsked: boolean,
): Promise<ResponseSummary> {
  const parser = new ResponseParser(method, { upgradeAsked });
  let head: ResponseHead | undefined;
  let framing: BodyFraming = { kind: 'none' };
  let bodyBytes = 0;
  let closed = false;
  for (;;) {
    const chunk = await chunks.next();
    if (chunk === null) closed = true;
    const events: ResponseEvent[] = [];
    let failure: { error: unknown } | undefined;
    try {
      if (chunk === null) events.push(...parser.finish());
      else parser.feed(chunk, events);
    } catch (error) {
      // The body bytes before the error are delivered first (to the partial file), as curl does.
      failure = { error };
    }
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
          return {
            head: head as ResponseHead,
            framing,
            bodyBytes,
            trailers: event.trailers,
            closed,
            excess: event.rest.length,
          };
      }
    }
    if (failure) throw failure.error;
  }
}
