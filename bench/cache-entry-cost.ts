// What a stored cache entry really costs in memory, against what the store charges for it
// (src/cache/store.ts, entrySize). Entries are made the way the proxy makes them: the response
// head parsed from its bytes (field strings sliced from the head's text), prepareEntry, a
// streamed write into the store, then the figures a hit makes (entryInfo).
//
//   node --expose-gc bench/cache-entry-cost.ts [entries=50000] [shape=all]
//
// Each shape runs in a fresh process: heapUsed + arrayBuffers and RSS are read after full GCs
// before and after storing `entries` entries; the per-entry cost is the difference divided by
// the count. Shapes: tiny (the audit's 1-byte answer: Cache-Control, Date), fields (ten more
// fields), chunks (an 8 KiB body in eight chunks), vary (Vary: Accept-Encoding).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { prepareEntry } from '../src/cache/policy.ts';
import { entryInfo } from '../src/cache/render.ts';
import { CacheStore } from '../src/cache/store.ts';
import type { RequestHead } from '../src/http/message.ts';
import { parseResponseHead } from '../src/http/parser.ts';

const shapes = ['tiny', 'fields', 'chunks', 'vary'] as const;
type Shape = (typeof shapes)[number];

function responseHead(shape: Shape, i: number): Buffer {
  let head = `HTTP/1.1 200 OK\r\nContent-Length: ${shape === 'chunks' ? 8192 : 1}\r\nCache-Control: public, max-age=600\r\n`;
  if (shape === 'fields')
    for (let k = 0; k < 10; k++) head += `X-Field-${k}: some value ${k} of entry ${i}\r\n`;
  if (shape === 'vary') head += 'Vary: Accept-Encoding\r\n';
  return Buffer.from(`${head}\r\n`, 'latin1');
}

function fill(shape: Shape, n: number): CacheStore {
  const store = new CacheStore({ maxBytes: 2 ** 40, maxObjectBytes: 2 ** 40 });
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const request: RequestHead = {
      method: 'GET',
      target: `/item/${i}?v=${i}`,
      versionMinor: 1,
      headers: shape === 'vary' ? [{ name: 'Accept-Encoding', lower: 'accept-encoding', value: 'gzip' }] : [],
    };
    const parsed = parseResponseHead(responseHead(shape, i));
    if (parsed === null) throw new Error('head not parsed');
    const writer = store.beginWrite(
      `http://shop.example/item/${i}?v=${i} web`,
      prepareEntry(request, parsed.head, now, now),
    );
    if (shape === 'chunks') for (let c = 0; c < 8; c++) writer.write(Buffer.alloc(1024, 0x61));
    else writer.write(Buffer.from('x'));
    const entry = writer.commit();
    if (entry === undefined) throw new Error('not stored');
    entryInfo(entry);
  }
  return store;
}

function used(): { heap: number; rss: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  for (let k = 0; k < 4; k++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss };
}

const n = Number(process.argv[2] ?? 50_000);
const only = process.argv[3] as Shape | undefined;
if (only !== undefined && shapes.includes(only)) {
  fill(only, 100); // loads and warms the code
  const before = used();
  const store = fill(only, n);
  const after = used();
  const charged = store.bytes / store.count;
  const heap = (after.heap - before.heap) / n;
  const rss = (after.rss - before.rss) / n;
  console.log(
    `${only.padEnd(7)} heap+arrayBuffers ${heap.toFixed(0).padStart(5)} B  rss ${rss.toFixed(0).padStart(5)} B  charged ${charged.toFixed(0).padStart(5)} B per entry (${store.count} entries)`,
  );
} else {
  const self = fileURLToPath(import.meta.url);
  for (const shape of shapes)
    process.stdout.write(
      execFileSync(process.execPath, ['--expose-gc', self, String(n), shape], { encoding: 'utf8' }),
    );
}
