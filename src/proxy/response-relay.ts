// A backend's response body on its way to the client: passed as it is, de-chunked for an
// HTTP/1.0 client, or chunked when the backend delimits it by closing (ResponseMode); teed into
// the cache's sink when the response is being stored. The head goes out in the same write as
// the first body bytes. The head of a small body that arrives alone (nginx writes the head, then
// sendfiles the body) is held until those bytes come, so both go in one write, and so a backend
// that stalls or dies right there still gets the client a clean 504 or 502, not a cut answer.
import { ChunkedRelay, encodeChunk, lastChunk } from '../http/chunked.ts';
import type { BodyFraming } from '../http/message.ts';
import { withHead } from '../http/one-write.ts';
import type { ResponseMode } from '../http/response-heads.ts';
import { trailerAllowed } from './trailers.ts';

/** Where relayed bytes go (the exchange: it counts them and minds backpressure). */
export interface RelayOutput {
  send(data: Buffer | string): void;
}

/** `held`: the head waits for body bytes; `bad`: the backend's chunked framing is broken. */
export type RelayProgress = 'more' | 'held' | 'done' | 'bad';

export class ResponseRelay {
  private readonly framing: BodyFraming;
  private readonly mode: ResponseMode;
  private readonly sink: ((data: Buffer) => void) | undefined;
  private readonly output: RelayOutput;
  private remaining = 0;
  /** Chunked bodies: decoded to find the end, trailers filtered as fields are (./trailers.ts). */
  private readonly decoder: ChunkedRelay | undefined;
  /** While set, body bytes for the client are collected here instead of sent. */
  private gathered: Buffer[] | undefined;
  private heldHead: string | Buffer | undefined;
  /** The head went to the client: from now on only a cut answer can signal a failure. */
  headSent = false;
  /** The backend sent bytes past the body's end: its connection is out of step. */
  overrun = false;

  constructor(
    framing: BodyFraming,
    mode: ResponseMode,
    sink: ((data: Buffer) => void) | undefined,
    output: RelayOutput,
  ) {
    this.framing = framing;
    this.mode = mode;
    this.sink = sink;
    this.output = output;
    if (framing.kind === 'length') this.remaining = framing.length;
    this.decoder =
      framing.kind === 'chunked' ? new ChunkedRelay({ errorStatus: 502 }, trailerAllowed) : undefined;
  }

  get held(): boolean {
    return this.heldHead !== undefined;
  }

  /** The client's copy of the body ends where the connection closes (an HTTP/1.0 client's). */
  get closeDelimited(): boolean {
    return this.mode === 'dechunk' || (this.mode === 'raw' && this.framing.kind === 'close');
  }

  /** Starts with the client's head and the bytes that followed the backend's head. */
  begin(head: string | Buffer, rest: Buffer, oneWriteLimit: number): RelayProgress {
    const framing = this.framing;
    if (framing.kind === 'none') {
      this.headSent = true;
      this.output.send(head);
      return 'done';
    }
    if (rest.length > 0 || framing.kind !== 'length' || framing.length > oneWriteLimit)
      return this.sendHeadWith(head, rest);
    this.heldHead = head;
    return 'held';
  }

  /** More bytes from the backend. */
  feed(chunk: Buffer): RelayProgress {
    const head = this.heldHead;
    if (head !== undefined) {
      this.heldHead = undefined;
      return this.sendHeadWith(head, chunk);
    }
    return this.forward(chunk);
  }

  /** The backend closed cleanly: true when that ends the body (it is delimited by closing). */
  closeEnds(): boolean {
    if (this.framing.kind !== 'close') return false;
    if (this.mode === 'rechunk') this.output.send(lastChunk);
    return true;
  }

  /** Writes the head and the body bytes that came with it in one write. */
  private sendHeadWith(head: string | Buffer, chunk: Buffer): RelayProgress {
    const body: Buffer[] = [];
    this.gathered = body;
    const progress = chunk.length > 0 ? this.forward(chunk) : 'more';
    this.gathered = undefined;
    if (progress === 'bad') return progress;
    this.headSent = true;
    this.output.send(withHead(head, body));
    return progress;
  }

  private forward(chunk: Buffer): RelayProgress {
    const framing = this.framing;
    if (framing.kind === 'length') {
      const used = Math.min(this.remaining, chunk.length);
      this.remaining -= used;
      if (used < chunk.length) this.overrun = true;
      const data = used === chunk.length ? chunk : chunk.subarray(0, used);
      this.sink?.(data);
      this.out(data);
      return this.remaining === 0 ? 'done' : 'more';
    }
    const decoder = this.decoder;
    if (decoder) {
      let relayed: { used: number; out: Buffer };
      try {
        relayed = decoder.relay(
          chunk,
          this.mode === 'dechunk' || this.sink
            ? (data) => {
                this.sink?.(data);
                if (this.mode === 'dechunk') this.out(data);
              }
            : undefined,
        );
      } catch {
        return 'bad';
      }
      if (relayed.used < chunk.length) this.overrun = true;
      if (this.mode === 'raw' && relayed.out.length > 0) this.out(relayed.out);
      return decoder.done ? 'done' : 'more';
    }
    this.sink?.(chunk);
    this.out(this.mode === 'rechunk' ? encodeChunk(chunk) : chunk);
    return 'more';
  }

  private out(data: Buffer): void {
    if (this.gathered) this.gathered.push(data);
    else this.output.send(data);
  }
}
