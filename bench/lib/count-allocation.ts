// Preloaded into a Sluice by bench/allocation.ts (`node --import`): counts the bytes allocated on
// the JS heap. Each SIGUSR2 appends the running total to $ALLOC_OUT: the heap's growth since the
// last mark plus what every collection in between freed (V8's GCProfiler reports both sides).
import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';

const out = process.env.ALLOC_OUT;
if (out === undefined) throw new Error('ALLOC_OUT: the file to append totals to');
let profiler = new v8.GCProfiler();
profiler.start();
let mark = v8.getHeapStatistics().used_heap_size;
let total = 0;
process.on('SIGUSR2', () => {
  const result = profiler.stop();
  const now = v8.getHeapStatistics().used_heap_size;
  let freed = 0;
  for (const gc of result.statistics)
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  total += now - mark + freed;
  profiler = new v8.GCProfiler();
  profiler.start();
  mark = v8.getHeapStatistics().used_heap_size;
  appendFileSync(out, `${total}\n`);
});
