// Chaos, issue 3, scenario 6: a rolling restart of the three nginx backends under GET load, one
// at a time, as an orchestrator does it: `docker stop` (nginx's SIGQUIT: finish what is in flight,
// close idle keep-alive connections), a pause, `docker start` on the same host port, then wait
// until Sluice routes to it again before the next one. No client request may fail.
import test from 'ava';
import { startLoad } from '../support/load.ts';
import {
  backendOf,
  describeFailures,
  HEALTH,
  ms,
  now,
  PAUSE_MS,
  sleep,
  useChaosStack,
  WORKERS,
  waitForState,
} from './helpers.ts';

const stack = useChaosStack(test);

test.serial('6. a rolling restart of all three backends under load: no failed GET', async (t) => {
  const running = stack.sluice;
  const load = startLoad({
    port: running.address.port,
    workers: WORKERS,
    pauseMs: PAUSE_MS,
    durationMs: 60_000,
    requestTimeoutMs: 10_000,
  });
  await sleep(1_000);
  const steps: string[] = [];
  for (const victim of stack.backends) {
    const backend = backendOf(running, victim.name);
    const stopAt = now();
    await victim.shutdown(5);
    const stoppedAt = now();
    const outAt = await waitForState(backend, ['down', 'ejected'], 5_000);
    await sleep(500);
    const startAt = now();
    await victim.start();
    const answeringAt = now();
    const backAt = await waitForState(backend, ['slow_start', 'up'], 5_000);
    const verdict = stack.transitions.find((tr) => tr.backend === victim.name && tr.seenAt >= stopAt);
    steps.push(
      `${victim.name}: docker stop ${ms(stoppedAt - stopAt)} ms, out (${verdict?.to}, ${verdict?.cause}) ` +
        `${ms(outAt - stopAt)} ms after the stop began; docker start ${ms(answeringAt - startAt)} ms, ` +
        `back ${ms(backAt - answeringAt)} ms later`,
    );
    t.true(backAt - answeringAt <= HEALTH.rise * HEALTH.interval + 300, `${victim.name} came back late`);
    await sleep(500);
  }
  const summary = await load.stop();
  for (const step of steps) t.log(step);
  t.log(
    `requests ${summary.sent}, ok ${summary.ok}, failed ${summary.failed} ${JSON.stringify(summary.failures)}`,
  );
  t.log(
    `per backend ${JSON.stringify(summary.perBackend)}; p99 ${summary.p99LatencyMs} ms, max ${summary.maxLatencyMs} ms`,
  );
  for (const line of describeFailures(load.records, load.startedAt)) t.log(`failed: ${line}`);
  t.is(summary.failed, 0, `failures: ${JSON.stringify(summary.failures)}`);
  t.deepEqual(Object.keys(summary.perBackend).sort(), ['nginx-1', 'nginx-2', 'nginx-3']);
});
