// Chaos, issue 3, scenario 4: all three nginx backends killed under GET load, then one started
// again on the same host port. Clients must get Sluice's own 502 or 503 quickly (the pool fails
// open, so every backend is tried and refuses at once; a backend that did not answer the connect
// would take the connect timeout), never a hang; and traffic must recover by itself.
import test from 'ava';
import { startLoad } from '../support/load.ts';
import {
  backendOf,
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

/** Two passing probes: the first within interval + 10%, the second a fast interval later. */
const RECOVERY_BOUND_MS = HEALTH.rise * HEALTH.interval + 300;
/**
 * No request may take longer than one connect timeout, plus one clock tick, the retry backoffs
 * (25-50 ms, 50-100 ms) and 350 ms of slack for a busy machine. While a container starts, Docker
 * drops the first SYN to its host port for a moment (measured: connects made 20-150 ms into
 * `docker start` complete only on the SYN retransmit, 1 s later), so a request Sluice sends there
 * in panic mode does wait the connect timeout (1.1-1.3 s end to end, measured) before another
 * backend is tried; never twice, as a request never tries the same backend twice.
 */
const LATENCY_BOUND_MS = TIMEOUTS.connect + TICK_MS + 150 + 350;

const stack = useChaosStack(test);

test.serial(
  '4. all backends killed: quick 502/503, never a hang; one back: traffic recovers by itself',
  async (t) => {
    const running = stack.sluice;
    const [first] = stack.backends;
    if (!first) throw new Error('no backends');
    const inSluice = stack.backends.map((b) => backendOf(running, b.name));
    const load = startLoad({
      port: running.address.port,
      workers: WORKERS,
      pauseMs: PAUSE_MS,
      durationMs: 30_000,
      requestTimeoutMs: 10_000,
    });
    await sleep(1_000);

    const killAt = now();
    await Promise.all(stack.backends.map((b) => b.kill()));
    const killedAt = now();
    const allOutAt = await waitUntil(() => inSluice.every((b) => !b.routable), 5_000, 'every backend out');
    await sleep(1_500);
    const startAt = now();
    await first.start();
    const answeringAt = now();
    const backAt = await waitForState(backendOf(running, first.name), ['slow_start', 'up'], 5_000);
    await sleep(1_500);
    const summaryAt = now();
    const summary = await load.stop();

    // Requests wholly within the time every backend was out (one started just before `docker start`
    // may end well after it, with a 200).
    const during = load.select({ from: allOutAt, to: startAt }).filter((r) => r.end < startAt);
    const duringFailures = during.filter((r) => !r.ok);
    const firstOkAt = load.records.reduce(
      (min, r) => (r.ok && r.end >= startAt ? Math.min(min, r.end) : min),
      Number.POSITIVE_INFINITY,
    );
    const duringStatuses: Record<string, number> = {};
    for (const r of during) duringStatuses[r.failure ?? 'ok'] = (duringStatuses[r.failure ?? 'ok'] ?? 0) + 1;
    const afterBack = load.summary({ from: backAt });
    const slowest = load.records.reduce((max, r) => Math.max(max, r.end - r.start), 0);
    const verdicts = stack.transitions.filter((tr) => tr.seenAt >= killAt && tr.seenAt < startAt);
    t.log(
      `requests ${summary.sent}, ok ${summary.ok}, failed ${summary.failed} ${JSON.stringify(summary.failures)}`,
    );
    t.log(
      `all out ${ms(allOutAt - killAt)} ms after the kill: ${verdicts.map((v) => `${v.backend} ${v.to} (${v.cause}) +${ms(v.seenAt - killAt)} ms`).join(', ')}`,
    );
    t.log(
      `while all were out: ${during.length} requests, outcomes ${JSON.stringify(duringStatuses)}, ` +
        `slowest request of the run ${ms(slowest)} ms (bound ${LATENCY_BOUND_MS} ms)`,
    );
    t.log(
      `${first.name} answering ${ms(answeringAt - startAt)} ms after docker start; first ok response ` +
        `${ms(firstOkAt - answeringAt)} ms after that; back in Sluice's view after ` +
        `${ms(backAt - answeringAt)} ms (bound ${RECOVERY_BOUND_MS} ms); after that ${JSON.stringify(afterBack.statuses)}`,
    );

    // Failures are Sluice's own 502/503, never a client-side timeout, reset or truncation (but for
    // a response nginx was killed in the middle of, see cutByKill).
    const names = stack.backends.map((b) => b.name);
    const other = load.records.filter(
      (r) => !r.ok && r.failure !== '502' && r.failure !== '503' && !cutByKill(r, names, killAt, killedAt),
    );
    const cut = load.records.filter((r) => r.failure === 'truncated');
    for (const line of describeFailures(cut, killAt)) t.log(`cut by the kill: ${line} (times from the kill)`);
    t.deepEqual(describeFailures(other, killAt), []);
    t.true(slowest <= LATENCY_BOUND_MS, `a request took ${ms(slowest)} ms`);
    // Each of these takes 75-150 ms (two retries with backoff) until the retry budget runs dry.
    t.true(during.length >= WORKERS * 4, 'clients kept getting answers while every backend was out');
    t.is(duringFailures.length, during.length, 'nothing can succeed while every backend is out');
    t.true(
      firstOkAt - answeringAt <= RECOVERY_BOUND_MS,
      `first ok response ${ms(firstOkAt - answeringAt)} ms after`,
    );
    t.true(backAt - answeringAt <= RECOVERY_BOUND_MS, `back after ${ms(backAt - answeringAt)} ms`);
    t.is(afterBack.failed, 0, `failures once back: ${JSON.stringify(afterBack.failures)}`);
    // Recovered means the clients' pace of answers is back, whatever the machine's speed: at least
    // half the rate of the second before the kill (absolute counts fail on a loaded machine).
    const rateBefore = load.summary({ from: killAt - 1_000, to: killAt }).ok / 1_000;
    const rateAfter = afterBack.ok / (summaryAt - backAt);
    t.true(
      rateAfter >= rateBefore / 2,
      `ok/s ${ms(rateAfter * 1000)} once back, ${ms(rateBefore * 1000)} before`,
    );
    t.deepEqual(Object.keys(afterBack.perBackend), [first.name]);
  },
);
