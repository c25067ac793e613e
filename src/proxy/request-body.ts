// The request body on its way to a backend: its framing (length or chunked, decoded to find the
// end), the maxBody limit, and the bytes held while no backend connection takes them. A small
// complete body stays held after it was sent, so the request can be replayed on another
// backend; a larger or still streaming one cannot be, unless it had no body at all.
import { ChunkedRelay } from '../http/chunked.ts';
import { type BodyFraming, HttpError } from '../http/message.ts';
import { trailerAllowed } from './trailers.ts';

/** A body must grow by this much per clientBody period (timeouts.clientBody). */
const bodyProgress = 1024;
/** Nothing held: shared, so that a request without a body makes no array. */
const nothing: readonly Buffer[] = Object.freeze([]);

export class RequestBody {
  readonly framing: BodyFraming;
  private readonly maxBody: number | null;
  private readonly replayLimit: number;
  private remaining = 0;
  /** Chunked bodies: decoded to find the end; trailers filtered, size lines held until valid. */
  private readonly decoder: ChunkedRelay | undefined;
  /** bytesIn when the current clientBody period began. */
  private window = 0;
  /** Every byte of the body has been read from the client. */
  complete: boolean;
  /** Bytes read before a backend connection took them, or kept for a replay. */
  held: readonly Buffer[] = nothing;
  /** The whole request can be sent again. */
  replayable = true;
  /** Body bytes read so far. */
  bytesIn = 0;

  constructor(framing: BodyFraming, maxBody: number | null, replayLimit: number) {
    this.framing = framing;
    this.maxBody = maxBody;
    this.replayLimit = replayLimit;
    if (framing.kind === 'length') this.remaining = framing.length;
    this.decoder = framing.kind === 'chunked' ? new ChunkedRelay({}, trailerAllowed) : undefined;
    this.complete = framing.kind === 'none';
  }

  /**
   * Takes the body's part of `chunk` (the rest is the next pipelined request): `used` bytes of
   * it, `out` what to forward for them. Throws an HttpError for malformed chunks and for a body
   * over maxBody (413).
   */
  take(chunk: Buffer): { used: number; out: Buffer } {
    let used: number;
    let out: Buffer;
    if (this.decoder) {
      ({ used, out } = this.decoder.relay(chunk));
      if (this.decoder.done) this.complete = true;
    } else {
      used = Math.min(this.remaining, chunk.length);
      this.remaining -= used;
      if (this.remaining === 0) this.complete = true;
      out = used === chunk.length ? chunk : chunk.subarray(0, used);
    }
    this.bytesIn += used;
    if (this.maxBody !== null && this.bytesIn > this.maxBody)
      throw new HttpError(413, 'request body too large');
    return { used, out };
  }

  /**
   * Whether the body grew by 1 KiB since the current clientBody period began (which then starts
   * anew): a trickle of bytes, each just in time, does not keep the period open.
   */
  progressed(): boolean {
    if (this.bytesIn - this.window < bodyProgress) return false;
    this.window = this.bytesIn;
    return true;
  }

  /** A new clientBody period starts now (the body begins to flow, or flows again). */
  restartWindow(): void {
    this.window = this.bytesIn;
  }

  /** Body bytes no backend connection takes yet. */
  hold(chunk: Buffer): void {
    if (this.held === nothing) this.held = [chunk];
    else (this.held as Buffer[]).push(chunk);
  }

  /** The exchange ended: nothing is sent or replayed any more. */
  release(): void {
    this.held = nothing;
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
    this.held = nothing;
    this.replayable = this.framing.kind === 'none';
  }
}
