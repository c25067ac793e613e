// Chaos, issue 3, scenarios 1-3: one of three real nginx backends killed, then started again
// (slow start), then frozen (docker pause), under a steady GET load of 8 workers.
//
// Bounds, with interval 500 ms (+-10% jitter), timeout 300 ms, rise 2, fall 2 (the fast interval
// while a state changes is 250 ms):
// - detection of a dead or frozen backend: the next probe starts within 550 ms, fails at once
//   (dead) or after 300 ms (frozen), the second follows after max(275 ms, 300 ms): at most
//   1150 ms, under `interval * fall + timeout` = 1300 ms; we allow one clock tick (100 ms) and
//   the docker API call (measured from before the kill or pause request) on top: 1500 ms.
// - return: two passing probes, the first within 550 ms of nginx answering, the second 275 ms
//   later: under `rise * interval` + 200 ms.
import test from 'ava';
import { type LoadRun, share, startLoad } from '../support/load.ts';
import {
  backendOf,
  type ChaosBackend,
  cutByKill,
  describeFailures,
  HEALTH,
  ms,
  now,
  PAUSE_MS,
  sleep,
  TICK_MS,
  TIMEOUTS,
  useChaosStack,
  WORKERS,
  waitForState,
  waitUntil,
} from './helpers.ts';

const DETECTION_BOUND_MS = HEALTH.interval * HEALTH.fall + HEALTH.timeout + TICK_MS + 100;
const RETURN_BOUND_MS = HEALTH.rise * HEALTH.interval + 200;

const stack = useChaosStack(test);

function backendAt(index: number): ChaosBackend {
  const backend = stack.backends[index];
  if (!backend) throw new Error(`no backend ${index}`);
  return backend;
}

function steadyLoad(): LoadRun {
  return startLoad({
    port: stack.sluice.address.port,
    workers: WORKERS,
    pauseMs: PAUSE_MS,
    durationMs: 30_000,
    requestTimeoutMs: 10_000,
  });
}

test.serial(
  '1. a killed backend: no client sees a failure, it is marked down in time and gets no traffic',
  async (t) => {
    const victim = backendAt(0);
    const backend = backendOf(stack.sluice, victim.name);
    const load = steadyLoad();
    await sleep(1_500);
    const warm = load.summary();
    t.deepEqual(
      Object.keys(warm.perBackend).sort(),
      ['nginx-1', 'nginx-2', 'nginx-3'],
      'all three serve at first',
    );

    const killAt = now();
    await victim.kill();
    const killedAt = now();
    const detectedAt = await waitForState(backend, ['down', 'ejected'], 5_000);
    const downAt = await waitForState(backend, ['down'], 5_000);
    await sleep(1_500);
    const summary = await load.stop();

    const first = stack.transitions.find((tr) => tr.backend === victim.name && tr.seenAt >= killAt);
    const down = stack.transitions.find(
      (tr) => tr.backend === victim.name && tr.to === 'down' && tr.seenAt >= killAt,
    );
    const firstMs = (first?.seenAt ?? detectedAt) - killAt;
    const downMs = (down?.seenAt ?? downAt) - killAt;
    t.log(
      `requests ${summary.sent}, ok ${summary.ok}, failed ${summary.failed} ${JSON.stringify(summary.failures)}`,
    );
    t.log(`per backend ${JSON.stringify(summary.perBackend)}, max latency ${summary.maxLatencyMs} ms`);
    t.log(`docker kill call took ${ms(killedAt - killAt)} ms`);
    t.log(
      `first verdict ${first?.from} -> ${first?.to} (${first?.cause}: ${first?.reason}) after ${ms(firstMs)} ms; ` +
        `down (active checks) after ${ms(downMs)} ms; bound ${DETECTION_BOUND_MS} ms`,
    );

    // Zero failures, but for a response nginx was killed in the middle of (see cutByKill).
    const failures = load.records.filter((r) => !r.ok);
    const cut = failures.filter((r) => cutByKill(r, [victim.name], killAt, killedAt));
    for (const line of describeFailures(failures, killAt)) t.log(`failed: ${line} (times from the kill)`);
    t.is(failures.length - cut.length, 0, `failures: ${JSON.stringify(summary.failures)}`);
    t.true(cut.length <= WORKERS);
    t.true(firstMs <= DETECTION_BOUND_MS, `first verdict after ${ms(firstMs)} ms`);
    t.true(downMs <= DETECTION_BOUND_MS, `down after ${ms(downMs)} ms`);
    const firstVerdict = first?.seenAt ?? detectedAt;
    const late = load.select({ from: firstVerdict }).filter((r) => r.backend === victim.name);
    t.is(late.length, 0, 'no request started after the verdict was answered by the killed backend');
    t.true(load.select({ from: firstVerdict }).length > 500, 'the load went on after the kill');
  },
);

test.serial(
  '3. the killed backend started again returns after rise passes and ramps up under slow start',
  async (t) => {
    const victim = backendAt(0);
    const backend = backendOf(stack.sluice, victim.name);
    t.is(backend.health.state, 'down');
    const load = steadyLoad();
    await sleep(500);

    const startAt = now();
    await victim.start();
    const answeringAt = now();
    const backAt = await waitForState(backend, ['slow_start', 'up'], 5_000);
    const back = stack.transitions.find(
      (tr) => tr.backend === victim.name && tr.to === 'slow_start' && tr.seenAt >= startAt,
    );
    const rampFrom = back?.seenAt ?? backAt;
    // Five one-second windows of the ten-second ramp, then a little more to finish the last one.
    await waitUntil(() => now() >= rampFrom + 5_100, 10_000, 'five seconds of slow start');
    const summary = await load.stop();

    const windows = load.windows(1_000, { from: rampFrom, to: rampFrom + 5_000 });
    const shares = windows.map((w) => share(w, victim.name));
    // Smooth weighted round robin with weights w, 1, 1: the share is w / (w + 2), with w ramping
    // linearly from 0.1 to 1 over 10 s; at each window's middle:
    const expected = windows.map((_, i) => {
      const w = 0.1 + (0.9 * (i + 0.5)) / 10;
      return w / (w + 2);
    });
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    t.log(
      `requests ${summary.sent}, ok ${summary.ok}, failed ${summary.failed} ${JSON.stringify(summary.failures)}`,
    );
    t.log(
      `container answering ${ms(answeringAt - startAt)} ms after docker start; back (${back?.reason}) ` +
        `${ms(rampFrom - answeringAt)} ms later; bound ${RETURN_BOUND_MS} ms`,
    );
    t.log(`share per second: ${shares.map(pct).join(' ')} (expected ${expected.map(pct).join(' ')})`);
    t.log(`per-second counts: ${windows.map((w) => JSON.stringify(w.perBackend)).join(' ')}`);

    t.is(summary.failed, 0, `failures: ${JSON.stringify(summary.failures)}`);
    t.is(back?.from, 'down');
    t.is(back?.cause, 'active');
    t.true(
      rampFrom - answeringAt <= RETURN_BOUND_MS,
      `back ${ms(rampFrom - answeringAt)} ms after answering`,
    );
    t.is(
      load.select({ to: rampFrom }).filter((r) => r.backend === victim.name && r.start >= startAt).length,
      0,
      'no traffic before it was back',
    );
    t.true((shares[0] ?? 1) < 0.12, `first second: ${pct(shares[0] ?? 1)} (a third would be 33.3%)`);
    for (const [i, s] of shares.entries()) {
      const e = expected[i] ?? 0;
      t.true(Math.abs(s - e) <= 0.05, `second ${i + 1}: ${pct(s)}, expected about ${pct(e)}`);
      t.true(s < 0.25, `second ${i + 1}: ${pct(s)} is well below a third`);
    }
    t.true((shares[4] ?? 0) > (shares[0] ?? 1) + 0.08, 'the share grows');
  },
);

test.serial(
  '2. a frozen backend: clients see only 504s after responseHeaders, it is marked down in time',
  async (t) => {
    const victim = backendAt(1);
    const backend = backendOf(stack.sluice, victim.name);
    const load = steadyLoad();
    await sleep(1_000);

    const pauseAt = now();
    await victim.pause();
    const pausedAt = now();
    let unpaused = false;
    try {
      const detectedAt = await waitForState(backend, ['down', 'ejected'], 5_000);
      const first = stack.transitions.find((tr) => tr.backend === victim.name && tr.seenAt >= pauseAt);
      const verdictAt = first?.seenAt ?? detectedAt;
      // Every request that went to the frozen backend has had its responseHeaders timeout by now.
      await waitUntil(() => now() >= pausedAt + TIMEOUTS.responseHeaders + 1_000, 10_000, 'the timeouts');
      const summary = await load.stop();
      await victim.unpause();
      unpaused = true;
      const unpausedAt = now();
      const backAt = await waitForState(backend, ['slow_start', 'up'], 5_000);

      const timedOut = load.records.filter((r) => r.failure === '504');
      const latencies = timedOut.map((r) => ms(r.end - r.start));
      const others = load.records.filter((r) => r.failure !== '504');
      const maxOther = Math.max(0, ...others.map((r) => r.end - r.start));
      t.log(
        `requests ${summary.sent}, ok ${summary.ok}, failed ${summary.failed} ${JSON.stringify(summary.failures)}`,
      );
      t.log(`504 latencies (ms): ${latencies.join(' ')}; slowest other request ${ms(maxOther)} ms`);
      t.log(`docker pause call took ${ms(pausedAt - pauseAt)} ms`);
      t.log(
        `verdict ${first?.from} -> ${first?.to} (${first?.cause}: ${first?.reason}) after ${ms(verdictAt - pauseAt)} ms; ` +
          `bound ${DETECTION_BOUND_MS} ms; back ${ms(backAt - unpausedAt)} ms after unpause`,
      );

      // What we assert: the only failures are Sluice's 504s for requests that reached the frozen
      // backend before the verdict; each took responseHeaders give or take one tick of Sluice's
      // coarse clock (a deadline is set from a reading up to 100 ms old and checked every 100 ms,
      // so 504s come 2.9-3.1 s after the request, measured 2936-2952 ms), at most
      // one per worker (a worker's next request goes elsewhere), nothing else waited.
      t.deepEqual(Object.keys(summary.failures), timedOut.length > 0 ? ['504'] : []);
      t.true(timedOut.length <= WORKERS, `${timedOut.length} 504s`);
      for (const r of timedOut) {
        const latency = r.end - r.start;
        t.true(
          latency >= TIMEOUTS.responseHeaders - TICK_MS - 10 &&
            latency <= TIMEOUTS.responseHeaders + TICK_MS + 150,
          `a 504 after ${ms(latency)} ms`,
        );
        t.true(r.start < verdictAt, 'a 504 for a request started after the verdict');
      }
      t.true(maxOther < 500, `an ok request took ${ms(maxOther)} ms`);
      t.true(verdictAt - pauseAt <= DETECTION_BOUND_MS, `verdict after ${ms(verdictAt - pauseAt)} ms`);
      t.is(first?.cause, 'active');
      t.is(load.select({ from: verdictAt }).filter((r) => r.backend === victim.name).length, 0);
      t.true(
        backAt - unpausedAt <= RETURN_BOUND_MS + HEALTH.timeout,
        `back ${ms(backAt - unpausedAt)} ms after unpause`,
      );
    } finally {
      if (!unpaused) await victim.unpause().catch(() => {});
      await load.stop();
    }
  },
);
