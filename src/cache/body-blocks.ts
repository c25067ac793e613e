// The body of a response being stored, copied into blocks whatever sizes its reads come in.
//
// A body is stored as buffers of BLOCK_BYTES (64 KiB), the last one exactly as long as what is
// left: a 600,000-byte body is ten buffers whether the backend sent it in one write or in 2,000
// of 300 bytes, so its charge (entry-size.ts: BUFFER_OVERHEAD per buffer) does not depend on the
// read sizes. The first block starts as long as the first chunk and doubles (a copy) as the body
// grows, up to BLOCK_BYTES, so a small body is one buffer of its own and a write never holds
// much more than its body: at most twice its bytes, and at most one block more.
//
// Every buffer is allocated with allocUnsafeSlow (never a slice of Node's 8 KiB pool, which one
// small copy would keep alive), and `reserve` is asked for what it adds before it is allocated:
// a new block its capacity + BUFFER_OVERHEAD, the first block's growth the capacity it adds (the
// old copy is dropped). What was reserved is an upper bound of what the blocks hold; finish()
// trims the last block to the bytes written, and the store charges the entry exactly. When a
// whole block cannot be had (the store is near maxBytes), a block just long enough for the chunk
// is tried instead.
import { BUFFER_OVERHEAD } from './entry-size.ts';

/** The size of a stored body's buffers; a body of at most this many bytes is one buffer. */
export const BLOCK_BYTES = 64 * 1024;

/**
 * `preferred` if `reserve` grants it, else `needed` (just this chunk: near maxBytes a whole block
 * may not fit where the body would), else 0.
 */
function grant(preferred: number, needed: number, reserve: (capacity: number) => boolean): number {
  if (reserve(preferred)) return preferred;
  return needed < preferred && reserve(needed) ? needed : 0;
}

export class BodyBlocks {
  /** Bytes written so far. */
  bytes = 0;
  /** At most this many bytes are taken (maxObjectBytes). */
  private readonly limit: number;
  /** Full blocks, then the one being filled. */
  private blocks: Buffer[] = [];
  /** Bytes written into the last block. */
  private filled = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * Copies `chunk` after the bytes written so far, asking `reserve(bytes)` before each
   * allocation; false (and the chunk not wholly copied) when the body would pass the limit or
   * `reserve` refuses.
   */
  append(chunk: Buffer, reserve: (bytes: number) => boolean): boolean {
    if (this.bytes + chunk.length > this.limit) return false;
    let at = 0;
    while (at < chunk.length) {
      let block = this.blocks[this.blocks.length - 1];
      if (block === undefined || this.filled === block.length) {
        const rest = chunk.length - at;
        if (block !== undefined && this.blocks.length === 1 && block.length < BLOCK_BYTES) {
          // The first block doubles (at least to hold the chunk) until it is a full block.
          const old = block;
          const needed = Math.min(BLOCK_BYTES, this.filled + rest);
          const preferred = Math.min(BLOCK_BYTES, this.limit, Math.max(2 * old.length, needed));
          const capacity = grant(preferred, needed, (c) => reserve(c - old.length));
          if (capacity === 0) return false;
          const grown = Buffer.allocUnsafeSlow(capacity);
          old.copy(grown, 0, 0, this.filled);
          this.blocks[0] = grown;
          block = grown;
        } else {
          // The first block as long as the first chunk (up to a block), then whole blocks.
          const needed = Math.min(BLOCK_BYTES, rest);
          const preferred = Math.min(
            BLOCK_BYTES,
            this.limit - this.bytes,
            block === undefined ? rest : BLOCK_BYTES,
          );
          const capacity = grant(preferred, needed, (c) => reserve(c + BUFFER_OVERHEAD));
          if (capacity === 0) return false;
          block = Buffer.allocUnsafeSlow(capacity);
          this.blocks.push(block);
          this.filled = 0;
        }
      }
      const n = chunk.copy(block, this.filled, at);
      this.filled += n;
      this.bytes += n;
      at += n;
    }
    return true;
  }

  /** The body: full blocks and the last one trimmed to its bytes (a copy). Once. */
  finish(): Buffer[] {
    const blocks = this.blocks;
    this.blocks = [];
    const last = blocks[blocks.length - 1];
    if (last !== undefined && this.filled < last.length) {
      const exact = Buffer.allocUnsafeSlow(this.filled);
      last.copy(exact, 0, 0, this.filled);
      blocks[blocks.length - 1] = exact;
    }
    return blocks;
  }

  /** Drops what was written. */
  clear(): void {
    this.blocks = [];
    this.filled = 0;
  }
}
