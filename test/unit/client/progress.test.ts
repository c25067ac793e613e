import test from 'ava';
import { formatBytes, formatDuration, ProgressMeter, renderProgress } from '../../../src/client/progress.ts';

const MiB = 1024 * 1024;

test('formatBytes', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(1023), '1023 B');
  t.is(formatBytes(1024), '1.00 KiB');
  t.is(formatBytes(1536), '1.50 KiB');
  t.is(formatBytes(12.34 * MiB), '12.3 MiB');
  t.is(formatBytes(120 * MiB), '120 MiB');
  t.is(formatBytes(1024 * MiB - 1), '1.00 GiB');
  t.is(formatBytes(3 * 1024 * MiB), '3.00 GiB');
});

test('formatDuration', (t) => {
  t.is(formatDuration(0), '0:00');
  t.is(formatDuration(4.4), '0:04');
  t.is(formatDuration(750), '12:30');
  t.is(formatDuration(3723), '1:02:03');
  t.is(formatDuration(-3), '0:00');
});

test('a bar with percent, sizes, speed and ETA', (t) => {
  const line = renderProgress({ received: 50 * MiB, total: 100 * MiB, elapsedMs: 10_000 }, 80);
  t.is(line, ' 50% [###############               ] 50.0 MiB / 100 MiB  5.00 MiB/s  ETA 0:10');
  t.true(line.length <= 80);
});

test('the bar at 0 and at 100%', (t) => {
  t.is(
    renderProgress({ received: 0, total: 2048, elapsedMs: 0 }, 80),
    `  0% [${' '.repeat(30)}] 0 B / 2.00 KiB  0 B/s  ETA --:--`,
  );
  t.is(
    renderProgress({ received: 2048, total: 2048, elapsedMs: 2000 }, 80),
    `100% [${'#'.repeat(30)}] 2.00 KiB / 2.00 KiB  1.00 KiB/s  in 0:02`,
  );
});

test('a narrow terminal drops the bar, never the numbers first', (t) => {
  const narrow = renderProgress({ received: 50 * MiB, total: 100 * MiB, elapsedMs: 10_000 }, 50);
  t.is(narrow, ' 50% 50.0 MiB / 100 MiB  5.00 MiB/s  ETA 0:10');
  const medium = renderProgress({ received: 50 * MiB, total: 100 * MiB, elapsedMs: 10_000 }, 60);
  t.true(medium.length <= 60);
  t.regex(medium, /^ 50% \[#+ +\] 50\.0 MiB/);
});

test('without a known total: size, speed and the time so far', (t) => {
  t.is(
    renderProgress({ received: 3 * MiB, total: undefined, elapsedMs: 3000 }),
    '3.00 MiB  1.00 MiB/s  0:03',
  );
});

test('the meter waits before drawing, redraws at most every interval, and ends the line', (t) => {
  let now = 1000;
  const out: string[] = [];
  const meter = new ProgressMeter({
    total: 1000,
    write: (text) => out.push(text),
    now: () => now,
    delayMs: 500,
    intervalMs: 200,
  });
  meter.update(100);
  now += 400;
  meter.update(100);
  t.deepEqual(out, []);
  now += 200;
  meter.update(100);
  t.is(out.length, 1);
  t.regex(out[0] ?? '', /^\r 30% \[/);
  t.true(out[0]?.endsWith('\x1b[K'));
  now += 100;
  meter.update(100);
  t.is(out.length, 1);
  now += 100;
  meter.update(600);
  t.is(out.length, 2);
  meter.finish();
  t.is(out.length, 4);
  t.regex(out[2] ?? '', /100% \[#+\]/);
  t.is(out[3], '\n');
});

test('a quick download never shows the meter', (t) => {
  const out: string[] = [];
  const meter = new ProgressMeter({ total: 10, write: (text) => out.push(text), now: () => 0 });
  meter.update(10);
  meter.finish();
  t.false(meter.shown);
  t.deepEqual(out, []);
});
