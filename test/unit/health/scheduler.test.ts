import test from 'ava';
import type { HealthConfig } from '../../../src/config/types.ts';
import type { ProbeOptions, ProbeResult, ProbeTarget } from '../../../src/health/probe.ts';
import { fastInterval, HealthScheduler, type HealthTarget } from '../../../src/health/scheduler.ts';
import { BackendHealth } from '../../../src/health/state.ts';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A fake clock with fake timers; `advance` runs due timers in order, letting promises settle. */
class FakeTime {
  now = 0;
  private seq = 0;
  readonly pending = new Map<number, { at: number; callback: () => void }>();
  readonly timers = {
    set: (callback: () => void, ms: number): unknown => {
      const id = ++this.seq;
      this.pending.set(id, { at: this.now + ms, callback });
      return id;
    },
    clear: (handle: unknown): void => {
      this.pending.delete(handle as number);
    },
  };

  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await flush();
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.pending) {
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      }
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.now = Math.max(this.now, next[1].at);
      next[1].callback();
      await flush();
    }
    this.now = end;
  }
}

interface Call {
  host: string;
  port: number;
  at: number;
  options: ProbeOptions;
  resolve: (result: ProbeResult) => void;
}

const ok: ProbeResult = { result: 'success', status: 200, durationMs: 1, reason: 'HEAD / answered 200' };
const bad: ProbeResult = { result: 'bad_status', status: 503, durationMs: 1, reason: 'HEAD / answered 503' };

/** A fake probe: answers at once with `answer(target)`, or leaves the call pending when it returns undefined. */
function fakeProbe(time: FakeTime, answer: (target: ProbeTarget) => ProbeResult | undefined = () => ok) {
  const calls: Call[] = [];
  const probe = (target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult> =>
    new Promise((resolve) => {
      calls.push({ host: target.host, port: target.port, at: time.now, options, resolve });
      const result = answer(target);
      if (result) resolve(result);
    });
  return { calls, probe };
}

function healthConfig(overrides: Partial<HealthConfig> = {}): HealthConfig {
  return {
    path: '/',
    host: undefined,
    interval: 2000,
    timeout: 1000,
    rise: 2,
    fall: 3,
    expectStatus: [200, 399],
    ejectAfter: 5,
    ejection: 30_000,
    maxEjection: 300_000,
    ejectionDecay: 30_000,
    maxEjectedPercent: 50,
    slowStart: 10_000,
    ...overrides,
  };
}

function target(port: number, overrides: Partial<HealthConfig> = {}, host = '127.0.0.1'): HealthTarget {
  const health = healthConfig(overrides);
  return {
    id: `b${port}`,
    host,
    port,
    health,
    state: new BackendHealth({ rise: health.rise, fall: health.fall }, 0),
  };
}

function gaps(calls: readonly Call[]): number[] {
  return calls.slice(1).map((call, i) => call.at - (calls[i] as Call).at);
}

test('the first probe of each backend runs at start, spread over a short window', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time);
  const targets = [9001, 9002, 9003, 9004].map((port) => target(port));
  const scheduler = new HealthScheduler(targets, { probe, now: () => time.now, timers: time.timers });
  scheduler.start();
  await time.advance(0);
  t.deepEqual(
    calls.map((c) => [c.port, c.at]),
    [[9001, 0]],
  );
  await time.advance(500);
  t.deepEqual(
    calls.map((c) => [c.port, c.at]),
    [
      [9001, 0],
      [9002, 125],
      [9003, 250],
      [9004, 375],
    ],
  );
  await scheduler.stop();
});

test('probe options come from the health config; Host defaults to the address', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time);
  const scheduler = new HealthScheduler(
    [
      target(9001),
      target(9002, { path: '/healthz', host: 'app.example.test', timeout: 700, expectStatus: [200, 299] }),
      target(9003, {}, '::1'),
    ],
    { probe, now: () => time.now, timers: time.timers },
  );
  scheduler.start();
  await time.advance(500);
  t.is(calls.length, 3);
  const [a, b, c] = calls.map(({ options: { signal: _signal, ...rest } }) => rest);
  t.deepEqual(a, { path: '/', hostHeader: '127.0.0.1:9001', timeoutMs: 1000, expectStatus: [200, 399] });
  t.deepEqual(b, {
    path: '/healthz',
    hostHeader: 'app.example.test',
    timeoutMs: 700,
    expectStatus: [200, 299],
  });
  t.is(c?.hostHeader, '[::1]:9003');
  await scheduler.stop();
});

test('probes repeat every interval with the jitter bounds at the extremes', async (t) => {
  for (const [random, expected] of [
    [0, 1800],
    [0.5, 2000],
    [0.999_999, 2200],
  ] as const) {
    const time = new FakeTime();
    const { calls, probe } = fakeProbe(time);
    const scheduler = new HealthScheduler([target(9001)], {
      probe,
      now: () => time.now,
      timers: time.timers,
      random: () => random,
    });
    scheduler.start();
    await time.advance(10_000);
    t.deepEqual(new Set(gaps(calls)), new Set([expected]), `random ${random}`);
    await scheduler.stop();
  }
});

test('with real randomness every gap stays within +-10% of the interval', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time);
  const scheduler = new HealthScheduler([target(9001)], { probe, now: () => time.now, timers: time.timers });
  scheduler.start();
  await time.advance(400_000);
  const all = gaps(calls);
  t.true(all.length > 150);
  t.true(all.every((gap) => gap >= 1800 && gap <= 2200));
  t.true(new Set(all).size > 10, 'the gaps vary');
  await scheduler.stop();
});

test('the interval is measured from the previous probe start', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time, () => undefined);
  const scheduler = new HealthScheduler([target(9001)], {
    probe,
    now: () => time.now,
    timers: time.timers,
    random: () => 0.5,
  });
  scheduler.start();
  await time.advance(300);
  calls[0]?.resolve({ ...ok, durationMs: 300 });
  await time.advance(1700);
  t.deepEqual(
    calls.map((c) => c.at),
    [0, 2000],
  );
  calls[1]?.resolve(ok);
  await scheduler.stop();
});

test('a faster interval while a backend changes state', async (t) => {
  const time = new FakeTime();
  let answer = bad;
  const { calls, probe } = fakeProbe(time, () => answer);
  const tg = target(9001, { interval: 2000, rise: 2, fall: 3 });
  const scheduler = new HealthScheduler([tg], {
    probe,
    now: () => time.now,
    timers: time.timers,
    random: () => 0.5,
  });
  t.is(fastInterval(2000), 500);
  t.is(fastInterval(400), 250);
  t.is(fastInterval(200), 200);
  scheduler.start();
  await time.advance(1000);
  // fail (changing) +500 fail +500 fail: down, no run under way: back to the full interval.
  t.deepEqual(
    calls.map((c) => c.at),
    [0, 500, 1000],
  );
  t.is(tg.state.state, 'down');
  answer = ok;
  await time.advance(2500);
  // pass at 3000 starts a rise run: the next check comes 500 ms later and completes it.
  t.deepEqual(
    calls.map((c) => c.at),
    [0, 500, 1000, 3000, 3500],
  );
  t.is(tg.state.state, 'slow_start');
  await time.advance(2000);
  t.is(calls.at(-1)?.at, 5500);
  await scheduler.stop();
});

test('at most one probe in flight per backend', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time, () => undefined);
  const scheduler = new HealthScheduler([target(9001), target(9002)], {
    probe,
    now: () => time.now,
    timers: time.timers,
    random: () => 0.5,
  });
  scheduler.start();
  await time.advance(30_000);
  t.is(calls.length, 2);
  t.is(time.pending.size, 0, 'no timer armed while a probe is in flight');
  // The overdue next probe starts as soon as the slow one settles.
  calls[0]?.resolve(ok);
  await time.advance(0);
  t.is(calls.length, 3);
  t.deepEqual([calls[2]?.port, calls[2]?.at], [9001, 30_000]);
  await time.advance(5000);
  t.is(calls.length, 3);
  calls[1]?.resolve(ok);
  calls[2]?.resolve(ok);
  await scheduler.stop();
});

test('stop clears every timer, aborts and waits for probes in flight, drops their results', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time, (tg) => (tg.port === 9001 ? undefined : ok));
  const results: string[] = [];
  const scheduler = new HealthScheduler([target(9001), target(9002), target(9003)], {
    probe,
    now: () => time.now,
    timers: time.timers,
    onResult: (tg, result) => results.push(`${tg.id} ${result.result}`),
  });
  scheduler.start();
  await time.advance(1000);
  t.is(calls.length, 3);
  t.deepEqual(results, ['b9002 success', 'b9003 success']);
  t.true(scheduler.started);
  const slow = calls[0] as Call;
  t.false(slow.options.signal?.aborted);
  let stopped = false;
  const stopping = scheduler.stop().then(() => {
    stopped = true;
  });
  t.false(scheduler.started);
  t.is(time.pending.size, 0);
  t.true(slow.options.signal?.aborted);
  await flush();
  t.false(stopped, 'stop waits for the probe in flight');
  slow.resolve({ result: 'timeout', durationMs: 1000, reason: 'probe aborted' });
  await stopping;
  t.true(stopped);
  t.deepEqual(results, ['b9002 success', 'b9003 success']);
  await time.advance(60_000);
  t.is(calls.length, 3);
  t.is(time.pending.size, 0);
});

test('start after stop checks again; start twice is harmless', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time);
  const scheduler = new HealthScheduler([target(9001)], { probe, now: () => time.now, timers: time.timers });
  scheduler.start();
  scheduler.start();
  await time.advance(0);
  t.is(calls.length, 1);
  await scheduler.stop();
  await time.advance(10_000);
  scheduler.start();
  await time.advance(0);
  t.is(calls.length, 2);
  t.is(time.pending.size, 1);
  await scheduler.stop();
});

test('add and remove while running', async (t) => {
  const time = new FakeTime();
  const { calls, probe } = fakeProbe(time);
  const scheduler = new HealthScheduler([target(9001)], {
    probe,
    now: () => time.now,
    timers: time.timers,
    random: () => 0.5,
  });
  scheduler.start();
  await time.advance(1000);
  scheduler.add(target(9002));
  await time.advance(250); // half of the 500 ms start window
  t.deepEqual(calls.at(-1)?.port, 9002);
  t.is(calls.at(-1)?.at, 1250);
  t.deepEqual(scheduler.ids(), ['b9001', 'b9002']);
  t.true(scheduler.remove('b9001'));
  t.false(scheduler.remove('b9001'));
  const before = calls.length;
  await time.advance(10_000);
  const after = calls.slice(before);
  t.true(after.length >= 4);
  t.true(after.every((c) => c.port === 9002));
  // Re-adding an id replaces the target and its schedule.
  scheduler.add(target(9002, { interval: 10_000 }));
  t.is(time.pending.size, 1);
  await scheduler.stop();
});

test('results feed the state machine, then onResult', async (t) => {
  const time = new FakeTime();
  const { probe } = fakeProbe(time, () => bad);
  const seen: string[] = [];
  const tg = target(9001, { fall: 2 });
  const scheduler = new HealthScheduler([tg], {
    probe,
    now: () => time.now,
    timers: time.timers,
    onResult: (target, result) => seen.push(`${target.state.state} ${result.result}`),
  });
  scheduler.start();
  await time.advance(600);
  t.deepEqual(seen, ['up bad_status', 'down bad_status']);
  t.is(tg.state.lastReason, 'HEAD / answered 503');
  await scheduler.stop();
});

test('a probe or hook that throws is reported and checking goes on', async (t) => {
  const time = new FakeTime();
  let n = 0;
  const errors: string[] = [];
  const scheduler = new HealthScheduler([target(9001)], {
    probe: async () => {
      n++;
      if (n === 1) throw new Error('boom');
      return ok;
    },
    now: () => time.now,
    timers: time.timers,
    random: () => 0.5,
    onResult: () => {
      throw new Error('hook');
    },
    onError: (error, tg) => errors.push(`${tg.id}: ${(error as Error).message}`),
  });
  scheduler.start();
  await time.advance(4000);
  t.is(n, 3);
  t.deepEqual(errors, ['b9001: boom', 'b9001: hook', 'b9001: hook']);
  await scheduler.stop();
});

test('time-driven state changes are applied before each probe', async (t) => {
  const time = new FakeTime();
  const { probe } = fakeProbe(time);
  const tg = target(9001);
  tg.state.drain(0);
  tg.state.undrain(0);
  t.is(tg.state.state, 'slow_start');
  const scheduler = new HealthScheduler([tg], { probe, now: () => time.now, timers: time.timers });
  time.now = 20_000;
  scheduler.start();
  await time.advance(0);
  t.is(tg.state.state, 'up');
  await scheduler.stop();
});
