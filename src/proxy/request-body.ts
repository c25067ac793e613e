// The request body on its way to a backend: its framing (length or chunked, decoded to find the
// end), the maxBody limit, and the bytes held while no backend connection takes them. A small
// complete body stays held after it was sent, so the request can be replayed on another
// backend; a larger or still streaming one cannot be, unless it had no body at all.
import { ChunkedDecoder } from '../http/chunked.ts';
import { type BodyFraming, HttpError } from '../http/message.ts';

export class RequestBody {
  readonly framing: BodyFraming;
  private readonly maxBody: number | null;
  private readonly replayLimit: number;
  private remaining = 0;
  private readonly decoder: ChunkedDecoder | undefined;
  /** Every byte of the body has been read from the client. */
  complete: boolean;
  /** Bytes read before a backend connection took them, or kept for a replay. */
  held: Buffer[] = [];
  /** The whole request can be sent again. */
  replayable = true;
  /** Body bytes read so far. */
  bytesIn = 0;

  constructor(framing: BodyFraming, maxBody: number | null, replayLimit: number) {
    this.framing = framing;
    this.maxBody = maxBody;
    this.replayLimit = replayLimit;
    if (framing.kind === 'length') this.remaining = framing.length;
    this.decoder = framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
    this.complete = framing.kind === 'none';
  }

  /**
   * Takes the body's part of `chunk` (the rest is the next pipelined request). Throws an
   * HttpError for malformed chunks and for a body over maxBody (413).
   */
  take(chunk: Buffer): Buffer {
    let used: number;
    if (this.decoder) {
      used = this.decoder.feed(chunk);
      if (this.decoder.done) this.complete = true;
    } else {
      used = Math.min(this.remaining, chunk.length);
      this.remaining -= used;
      if (this.remaining === 0) this.complete = true;
    }
    this.bytesIn += used;
    if (this.maxBody !== null && this.bytesIn > this.maxBody)
      throw new HttpError(413, 'request body too large');
    return used === chunk.length ? chunk : chunk.subarray(0, used);
  }

  /** The held bytes went out with the head: keep them only for a small complete body. */
  sent(): void {
    if (!this.complete) {
      this.drop();
      return;
    }
    let bytes = 0;
    for (const part of this.held) bytes += part.length;
    if (bytes > this.replayLimit) this.drop();
  }

  private drop(): void {
    this.held = [];
    this.replayable = this.framing.kind === 'none';
  }
}
