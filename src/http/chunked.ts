// Incremental decoder and encoder for the chunked transfer coding (RFC 9112 section 7.1).
// The decoder is a small state machine so that any split of the input works; body data is
// handed out as subarrays of the input, and only the short size and trailer lines are copied.

import type { HeaderField } from './message.ts';
import { HttpError } from './message.ts';
import { parseFieldLine } from './parser.ts';

const CR = 0x0d;
const LF = 0x0a;

const SIZE_LINE = 0;
const DATA = 1;
const DATA_CR = 2;
const DATA_LF = 3;
const TRAILER = 4;
const DONE = 5;

// chunk-size [ chunk-ext ]: 1*HEXDIG then *( BWS ";" BWS name [ BWS "=" BWS token / quoted-string ] ).
// BWS is allowed only before ';' or '=', so "5 " (trailing space, no extension) does not match.
const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = String.raw`"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"`;
const CHUNK_LINE = new RegExp(
  `^([0-9A-Fa-f]+)(?:[\\t ]*;[\\t ]*${TCHAR}(?:[\\t ]*=[\\t ]*(?:${TCHAR}|${QUOTED}))?)*$`,
);

export interface ChunkedDecoderOptions {
  /**
   * Longest chunk-size line (size, leading zeros and extensions, without CRLF); longer is an
   * error, also before its end arrives, so a line that never ends holds no more than this.
   */
  maxChunkLine?: number;
  /** Largest trailer section (trailer fields and the final CRLF); larger is an error. */
  maxTrailerBytes?: number;
  /** Status of the thrown HttpError: 400 for request bodies (default), 502 for response bodies. */
  errorStatus?: number;
}

export class ChunkedDecoder {
  /** Trailer fields received after the last chunk. */
  readonly trailers: HeaderField[] = [];
  #state = SIZE_LINE;
  /** Data bytes left in the current chunk. */
  #remaining = 0;
  /** Start of a size or trailer line that arrived without its LF yet. */
  #pending = '';
  #trailerBytes = 0;
  /** Where in the input of the latest feed() the trailer section began (after `0 CRLF`), or -1. */
  trailerStart = -1;
  readonly #maxChunkLine: number;
  readonly #maxTrailerBytes: number;
  readonly #status: number;

  constructor(options: ChunkedDecoderOptions = {}) {
    this.#maxChunkLine = options.maxChunkLine ?? 4096;
    this.#maxTrailerBytes = options.maxTrailerBytes ?? 16 * 1024;
    this.#status = options.errorStatus ?? 400;
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  /** Bytes of a chunk-size line that has not ended yet (not validated yet). */
  get pendingLength(): number {
    return this.#state === SIZE_LINE ? this.#pending.length : 0;
  }

  /** The last chunk has been read: what comes now is the trailer section. */
  get inTrailers(): boolean {
    return this.#state === TRAILER || this.#state === DONE;
  }

  /**
   * Feeds bytes. Calls onData (if given) with each piece of decoded body data (subarrays of
   * chunk, no copies). Returns how many bytes of `chunk` belong to this chunked body:
   * chunk.length, unless the body ended inside the chunk (the rest is the next message).
   */
  feed(chunk: Buffer, onData?: (data: Buffer) => void): number {
    const len = chunk.length;
    let pos = 0;
    this.trailerStart = -1;
    while (pos < len) {
      switch (this.#state) {
        case DATA: {
          const n = Math.min(this.#remaining, len - pos);
          onData?.(chunk.subarray(pos, pos + n));
          pos += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (chunk[pos] !== CR) throw new HttpError(this.#status, 'chunk data not followed by CRLF');
          pos++;
          this.#state = DATA_LF;
          break;
        case DATA_LF:
          if (chunk[pos] !== LF) throw new HttpError(this.#status, 'chunk data not followed by CRLF');
          pos++;
          this.#state = SIZE_LINE;
          break;
        case SIZE_LINE:
        case TRAILER: {
          const lf = chunk.indexOf(LF, pos);
          if (lf === -1) {
            this.#pending += chunk.toString('latin1', pos, len);
            this.#checkPartialLine(chunk[len - 1] === CR);
            pos = len;
            break;
          }
          const line = this.#pending + chunk.toString('latin1', pos, lf);
          this.#pending = '';
          pos = lf + 1;
          if (this.#state === SIZE_LINE) {
            this.#sizeLine(line);
            if ((this.#state as number) === TRAILER) this.trailerStart = pos;
          } else if (this.#trailerLine(line)) return pos;
          break;
        }
        default: // DONE: the rest belongs to the next message
          return 0;
      }
    }
    return len;
  }

  /** Fails early on a line that is already too long while its end has not arrived. */
  #checkPartialLine(endsWithCr: boolean): void {
    const length = this.#pending.length;
    if (this.#state === SIZE_LINE) {
      if (length - (endsWithCr ? 1 : 0) > this.#maxChunkLine) this.#fail('chunk size line too long');
    } else if (this.#trailerBytes + length + 1 > this.#maxTrailerBytes) {
      this.#fail('trailer section too large');
    }
  }

  /** `line` is everything before the LF, so it must end in CR. */
  #content(line: string): string {
    if (line.charCodeAt(line.length - 1) !== CR) this.#fail('bare LF in chunked framing');
    return line.slice(0, -1);
  }

  #sizeLine(line: string): void {
    const content = this.#content(line);
    if (content.length > this.#maxChunkLine) this.#fail('chunk size line too long');
    const m = CHUNK_LINE.exec(content);
    if (m === null) this.#fail(content.includes('\r') ? 'bare CR in chunked framing' : 'invalid chunk size');
    // Any number of leading zeros is allowed (RFC 9112 7.1); the line's length bounds them
    // (maxChunkLine). What overflows is judged on the value, as nginx and HAProxy do: more than
    // 14 significant hex digits is beyond 2^53 whatever they are.
    const significant = (m[1] as string).replace(/^0+(?=.)/, '');
    if (significant.length > 14) this.#fail('chunk size too large');
    const size = Number.parseInt(significant, 16);
    if (size > Number.MAX_SAFE_INTEGER) this.#fail('chunk size too large');
    if (size === 0) {
      this.#state = TRAILER;
    } else {
      this.#remaining = size;
      this.#state = DATA;
    }
  }

  /** Returns true when `line` was the empty line that ends the body. */
  #trailerLine(line: string): boolean {
    this.#trailerBytes += line.length + 1;
    if (this.#trailerBytes > this.#maxTrailerBytes) this.#fail('trailer section too large');
    const content = this.#content(line);
    if (content === '') {
      this.#state = DONE;
      return true;
    }
    this.trailers.push(parseFieldLine(content, this.#status));
    return false;
  }

  #fail(message: string): never {
    throw new HttpError(this.#status, message);
  }
}

/** The last chunk with an empty trailer section: ends a chunked body. */
export const lastChunk = Buffer.from('0\r\n\r\n');

/**
 * `size-hex CRLF data CRLF` in one buffer. Empty data gives an empty buffer, since a
 * zero-size chunk would end the body.
 */
export function encodeChunk(data: Buffer): Buffer {
  const size = data.length;
  if (size === 0) return Buffer.alloc(0);
  const header = `${size.toString(16)}\r\n`;
  const out = Buffer.allocUnsafe(header.length + size + 2);
  out.write(header, 0, 'latin1');
  data.copy(out, header.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/**
 * Passes a chunked body on in framing of its own: each piece of data as it arrives becomes a chunk
 * sized in plain hex, so leading zeros, chunk extensions and whatever else a peer wrote in its
 * size lines never reach the other side (a parser that reads sizes differently, say as 32 bits,
 * would otherwise see other messages in the body). The trailer section is rebuilt from the
 * trailer fields `keep` lets through: a trailer must not smuggle framing, routing or identity
 * fields past the rules that filter the head (RFC 9110 6.5.1).
 */
export class ChunkedRelay {
  readonly decoder: ChunkedDecoder;
  readonly #keep: (field: HeaderField) => boolean;

  constructor(options: ChunkedDecoderOptions, keep: (field: HeaderField) => boolean) {
    this.decoder = new ChunkedDecoder(options);
    this.#keep = keep;
  }

  get done(): boolean {
    return this.decoder.done;
  }

  /**
   * Feeds bytes (onData as for ChunkedDecoder.feed). `used`: bytes of `chunk` that belong to this
   * body; `out`: the chunked bytes to forward for them.
   */
  relay(chunk: Buffer, onData?: (data: Buffer) => void): { used: number; out: Buffer } {
    const decoder = this.decoder;
    const pieces: Buffer[] = [];
    const used = decoder.feed(chunk, (data) => {
      onData?.(data);
      pieces.push(encodeChunk(data));
    });
    if (decoder.done) {
      let trailers = '';
      for (const field of decoder.trailers)
        if (this.#keep(field)) trailers += `${field.name}: ${field.value}\r\n`;
      pieces.push(Buffer.from(`0\r\n${trailers}\r\n`, 'latin1'));
    }
    return { used, out: pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces) };
  }
}
