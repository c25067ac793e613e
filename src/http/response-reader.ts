// Reads one HTTP/1.x response incrementally with Sluice's own codec: fed bytes, it returns events
// (interim 1xx heads, the final head, body pieces, the end) and hands back whatever follows the
// response. Pure (no I/O); the client and the cache refresher drive it. A response that cannot be
// read throws ResponseParseError, whose kind each caller maps to its own report.
import { ChunkedDecoder } from './chunked.ts';
import { responseFraming } from './framing.ts';
import { type BodyFraming, type HeaderField, HttpError, type ResponseHead } from './message.ts';
import { parseResponseHead } from './parser.ts';

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

/** What went wrong: not HTTP, nothing at all, or a body cut short. */
export type ResponseParseErrorKind = 'malformed' | 'empty' | 'partial';

/** A response that cannot be read; callers map `kind` to what they report (exit codes, metrics). */
export class ResponseParseError extends Error {
  readonly kind: ResponseParseErrorKind;
  constructor(kind: ResponseParseErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

function malformed(message: string): ResponseParseError {
  return new ResponseParseError('malformed', `malformed response: ${message}`);
}

/** The first bytes of `buf`, printable, for an error message. */
function preview(buf: Buffer): string {
  const text = buf.toString('latin1', 0, Math.min(buf.length, 24)).replace(/[^\x20-\x7e]/g, '.');
  return buf.length > 24 ? `${text}...` : text;
}

export class ResponseReader {
  readonly #method: string;
  readonly #maxHead: number | undefined;
  readonly #upgradeAsked: boolean;
  #state = HEAD;
  #buffer: Buffer = Buffer.alloc(0);
  #remaining = 0;
  #length = 0;
  #decoder: ChunkedDecoder | undefined;
  #received = 0;

  /**
   * `method` of the request: a HEAD response has no body whatever its fields say.
   * `upgradeAsked`: the request carried Upgrade, so a 101 is an answer and not a fault.
   */
  constructor(method: string, options: { maxHead?: number; upgradeAsked?: boolean } = {}) {
    this.#method = method;
    this.#maxHead = options.maxHead;
    this.#upgradeAsked = options.upgradeAsked ?? false;
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  /** Bytes fed so far (heads, framing and body). */
  get received(): number {
    return this.#received;
  }

  /**
   * Reads only a body, whose head was read elsewhere (by an UpstreamAttempt): `rest` is what
   * followed the head. Later bytes go to feed as usual.
   */
  body(framing: BodyFraming, rest: Buffer): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    this.#received += rest.length;
    this.#run(this.#startBody(framing, rest, events), events);
    return events;
  }

  /**
   * Feeds the next bytes; throws ResponseParseError for a malformed response. The events are
   * pushed onto `events`, so that those read before an error are not lost with it.
   */
  feed(chunk: Buffer, events: ResponseEvent[] = []): ResponseEvent[] {
    if (this.#state === DONE) {
      if (chunk.length > 0) throw new Error('ResponseReader: feed after the end');
      return events;
    }
    this.#received += chunk.length;
    this.#run(chunk, events);
    return events;
  }

  #run(input: Buffer, events: ResponseEvent[]): void {
    try {
      while (input.length > 0 && this.#state !== DONE) input = this.#step(input, events);
    } catch (error) {
      if (error instanceof HttpError) throw malformed(error.message);
      throw error;
    }
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
          throw new ResponseParseError(
            'empty',
            'empty reply: the server closed the connection without answering',
          );
        }
        throw malformed('the connection closed in the middle of the response head');
      case LENGTH:
        throw new ResponseParseError(
          'partial',
          `the connection closed after ${this.#length - this.#remaining} of ${this.#length} body bytes`,
        );
      default:
        throw new ResponseParseError('partial', 'the connection closed before the last chunk of the body');
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
    // A 101 nobody asked for switches to nothing this side speaks (RFC 9110 15.2.2: a server
    // switches only to a protocol the request's Upgrade listed).
    if (head.status === 101 && !this.#upgradeAsked) {
      throw malformed('101 Switching Protocols, but the request asked for no upgrade');
    }
    // 101 Switching Protocols ends HTTP on this connection: no body to read here.
    const framing: BodyFraming = head.status === 101 ? { kind: 'none' } : responseFraming(head, this.#method);
    events.push({ type: 'head', head, framing, raw });
    return this.#startBody(framing, rest, events);
  }

  #startBody(framing: BodyFraming, rest: Buffer, events: ResponseEvent[]): Buffer {
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
