// A byte-bounded LRU store of cached responses, several variants (Vary) per primary key.
// No I/O, no clock: policy decisions (freshness, storability) belong to policy.ts.
//
// API
//   new CacheStore({ maxBytes, maxObjectBytes, maxVariants? })
//   store.get(key, req)            the newest variant whose Vary selecting values match `req`
//                                  (RFC 9111 4.1), marked most recently used; else undefined
//   store.put(key, meta, body)     stores (taking ownership of the buffers); returns the entry, or
//                                  undefined when its body is larger than maxObjectBytes or its
//                                  charge larger than maxBytes
//   store.beginWrite(key, meta)    a CacheWriter that stores a body while it streams:
//                                  write(chunk) → false once the body passes maxObjectBytes or
//                                  no room is left for it (abandoned: buffers freed, later writes
//                                  ignored),
//                                  commit() → the entry or undefined, abort() → drops it
//   store.update(entry, freshened) new fields and times after a 304 (policy.updateFrom304)
//   store.delete(entry)            removes one variant
//   store.purge(key)               removes every variant of a key; returns the count removed
//   store.purgePrefix(prefix, accept?)  removes every variant of keys starting with prefix (and,
//                                  given `accept`, for which it returns true); the count
//   store.resize(limits)           new maxBytes / maxObjectBytes (a reload); evicts down to them
//   store.bytes / store.count      bytes accounted (stored and being written) / entries held
//   store.limit / store.evictions  the byte bound / entries evicted to stay under it, ever
//
// Limits: maxObjectBytes bounds an entry's body bytes (what README calls the object; flow.ts
// compares a Content-Length with it too); maxBytes bounds the charges.
//
// Accounting: an entry's size is an upper estimate of the memory it holds (entry-size.ts, where
// the measurement is): ENTRY_OVERHEAD, its key, reason and Vary strings, FIELD_OVERHEAD + 4 ×
// (name + value) per field, and per body buffer its bytes + BUFFER_OVERHEAD. A streamed body is
// copied into blocks of its own (body-blocks.ts): 64 KiB buffers, the last trimmed at commit, one
// buffer for a body of at most 64 KiB, whatever sizes the reads came in. `bytes` never exceeds
// maxBytes: a put evicts least recently used entries first. Bodies being written count too, from
// their first chunk, each block charged its capacity + BUFFER_OVERHEAD when it is allocated: room
// is made for it as a put makes it, and a write that cannot fit even so (other writes hold the
// rest) is abandoned, so many slow fills of distinct objects stay within maxBytes. At commit the
// write's charge becomes the entry's exact one.
//
// Variants: a put replaces the variant with the same Vary names and selecting values, and drops
// the variants stored under a different Vary (the origin changed what it varies on, as Squid
// does); at most maxVariants (default 32) per key, the oldest dropped first.
import type { HeaderField } from '../http/message.ts';
import { BLOCK_BYTES, BodyBlocks } from './body-blocks.ts';
import { chunkSize, headSize } from './entry-size.ts';
import { type CachedResponse, type Freshened, varyKey } from './policy.ts';

export { BUFFER_OVERHEAD, chunkSize, ENTRY_OVERHEAD, FIELD_OVERHEAD, headSize } from './entry-size.ts';

/** A streamed body of at most this many bytes is stored as one buffer (larger: 64 KiB blocks). */
export const JOIN_LIMIT = BLOCK_BYTES;

export interface CacheEntry extends CachedResponse {
  readonly key: string;
  /** The decoded body (no chunked framing), as stored. */
  readonly body: readonly Buffer[];
  readonly bodyBytes: number;
  /** Bytes accounted for this entry. */
  size: number;
}

export interface StoreOptions {
  maxBytes: number;
  maxObjectBytes: number;
  maxVariants?: number;
}

export interface CacheWriter {
  /** Appends a chunk (copied); false once the body is over maxObjectBytes or out of room, and abandoned. */
  write(chunk: Buffer): boolean;
  /** Stores the object; undefined if it was abandoned, aborted or committed already. */
  commit(): CacheEntry | undefined;
  /** Drops the object (the response failed or was not complete). */
  abort(): void;
}

export class CacheStore {
  private maxBytes: number;
  private maxObjectBytes: number;
  private readonly maxVariants: number;
  /** Variants per key, newest first. */
  private readonly byKey = new Map<string, CacheEntry[]>();
  /** Every entry, least recently used first. */
  private readonly lru = new Set<CacheEntry>();
  /** The last entry of `lru`: a hot entry hit again is already there, and is not moved. */
  private newest: CacheEntry | undefined;
  /** Bytes of stored entries. */
  private total = 0;
  /** Bytes of bodies (and their heads) being written, not stored yet. */
  private writing = 0;
  /** Entries removed to make room (least recently used first), since the start. */
  evictions = 0;

  constructor(options: StoreOptions) {
    this.maxBytes = options.maxBytes;
    this.maxObjectBytes = options.maxObjectBytes;
    this.maxVariants = Math.max(1, options.maxVariants ?? 32);
  }

  get bytes(): number {
    return this.total + this.writing;
  }

  get count(): number {
    return this.lru.size;
  }

  /** The configured bound of `bytes`. */
  get limit(): number {
    return this.maxBytes;
  }

  get(key: string, req: { readonly headers: readonly HeaderField[] }): CacheEntry | undefined {
    const variants = this.byKey.get(key);
    if (variants === undefined) return undefined;
    let keys: Map<string, string> | undefined;
    for (const entry of variants) {
      if (entry.vary === '') {
        // No Vary: every request selects it.
        this.touch(entry);
        return entry;
      }
      if (entry.vary === '*') continue;
      keys ??= new Map();
      let selecting = keys.get(entry.vary);
      if (selecting === undefined) {
        selecting = varyKey(req, entry.vary);
        keys.set(entry.vary, selecting);
      }
      if (selecting === entry.varyKey) {
        this.touch(entry);
        return entry;
      }
    }
    return undefined;
  }

  put(key: string, meta: CachedResponse, body: readonly Buffer[]): CacheEntry | undefined {
    let bodyBytes = 0;
    let size = headSize(key, meta);
    for (const chunk of body) {
      bodyBytes += chunk.length;
      size += chunkSize(chunk.length);
    }
    if (bodyBytes > this.maxObjectBytes || size > this.maxBytes) return undefined;
    const entry: CacheEntry = { ...meta, key, body: [...body], bodyBytes, size };
    this.insert(entry);
    return entry;
  }

  beginWrite(key: string, meta: CachedResponse): CacheWriter {
    const base = headSize(key, meta);
    const blocks = new BodyBlocks(this.maxObjectBytes);
    /** What this write holds in `writing`: its head and the capacity of its blocks. */
    let held = 0;
    let open = base <= this.maxBytes;
    const close = () => {
      open = false;
      blocks.clear();
      this.writing -= held;
      held = 0;
    };
    /** Charges `bytes` more (and the head with the first); false if this write cannot have them. */
    const reserve = (bytes: number): boolean => {
      const more = (held === 0 ? base : 0) + bytes;
      if (held + more > this.maxBytes || !this.makeRoom(more)) return false;
      held += more;
      this.writing += more;
      return true;
    };
    return {
      write: (chunk: Buffer): boolean => {
        if (!open) return false;
        if (chunk.length === 0) return true;
        if (!blocks.append(chunk, reserve)) close();
        return open;
      },
      commit: (): CacheEntry | undefined => {
        if (!open) return undefined;
        const body = blocks.finish();
        close();
        return this.put(key, meta, body);
      },
      abort: close,
    };
  }

  /** Applies a 304's freshened fields and times; false if the entry is no longer stored. */
  update(entry: CacheEntry, freshened: Omit<Freshened, 'keep'>): boolean {
    if (!this.lru.has(entry)) return false;
    entry.headers = freshened.headers;
    entry.requestTime = freshened.requestTime;
    entry.responseTime = freshened.responseTime;
    let size = headSize(entry.key, entry);
    for (const chunk of entry.body) size += chunkSize(chunk.length);
    this.total += size - entry.size;
    entry.size = size;
    if (size > this.maxBytes) {
      this.delete(entry);
      return false;
    }
    this.touch(entry);
    this.evictUntil(0, entry);
    return true;
  }

  delete(entry: CacheEntry): boolean {
    if (!this.lru.delete(entry)) return false;
    if (entry === this.newest) this.newest = undefined;
    this.total -= entry.size;
    const variants = this.byKey.get(entry.key);
    if (variants !== undefined) {
      const i = variants.indexOf(entry);
      if (i >= 0) variants.splice(i, 1);
      if (variants.length === 0) this.byKey.delete(entry.key);
    }
    return true;
  }

  purge(key: string): number {
    const variants = this.byKey.get(key);
    if (variants === undefined) return 0;
    const n = variants.length;
    for (const entry of [...variants]) this.delete(entry);
    return n;
  }

  purgePrefix(prefix: string, accept?: (key: string) => boolean): number {
    let n = 0;
    for (const key of [...this.byKey.keys()]) {
      if (key.startsWith(prefix) && (accept === undefined || accept(key))) n += this.purge(key);
    }
    return n;
  }

  /** New limits: entries over the object limit go, then the least recently used until all fit. */
  resize(limits: { maxBytes: number; maxObjectBytes: number }): void {
    this.maxBytes = limits.maxBytes;
    this.maxObjectBytes = limits.maxObjectBytes;
    for (const entry of [...this.lru]) {
      if (entry.bodyBytes > this.maxObjectBytes || entry.size > this.maxBytes) this.delete(entry);
    }
    this.evictUntil(0);
  }

  private touch(entry: CacheEntry): void {
    if (entry === this.newest) return;
    this.lru.delete(entry);
    this.lru.add(entry);
    this.newest = entry;
  }

  private insert(entry: CacheEntry): void {
    const variants = this.byKey.get(entry.key) ?? [];
    for (const old of [...variants]) {
      if (old.vary !== entry.vary || old.varyKey === entry.varyKey) this.delete(old);
    }
    const kept = this.byKey.get(entry.key) ?? [];
    while (kept.length >= this.maxVariants) this.delete(kept[kept.length - 1] as CacheEntry);
    this.evictUntil(entry.size);
    const list = this.byKey.get(entry.key) ?? [];
    list.unshift(entry);
    this.byKey.set(entry.key, list);
    this.lru.add(entry);
    this.newest = entry;
    this.total += entry.size;
  }

  /** Evicts least recently used entries (never `keep`) until `extra` more bytes fit. */
  private evictUntil(extra: number, keep?: CacheEntry): void {
    for (const victim of this.lru) {
      if (this.total + this.writing + extra <= this.maxBytes) return;
      if (victim !== keep && this.delete(victim)) this.evictions++;
    }
  }

  /** Room for `extra` more bytes being written, evicting as a put would; false if none can be made. */
  private makeRoom(extra: number): boolean {
    if (this.writing + extra > this.maxBytes) return false;
    this.evictUntil(extra);
    return true;
  }
}
