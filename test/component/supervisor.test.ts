// The supervisor's own behaviour, with stand-in workers (test/support/fake-worker.ts): a slot
// whose workers keep dying is refilled with a growing delay, each end is logged with its cause,
// a rolling restart whose new worker does not start stops and keeps the old ones, a worker that
// goes silent is killed and replaced, and one that does not stop when retired is killed.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Logger } from 'winston';
import { Supervisor, type SupervisorOptions } from '../../src/cluster/supervisor.ts';
import { parseConfig } from '../../src/config/load.ts';

const entry = fileURLToPath(new URL('../support/fake-worker.ts', import.meta.url));
const config = parseConfig('listen: 127.0.0.1:0\npools:\n  web:\n    servers: [127.0.0.1:9]\n');

interface Line {
  level: string;
  message: string;
  fields: Record<string, unknown>;
  at: number;
}

function recordingLogger(lines: Line[]): Logger {
  const log =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, message, fields, at: Date.now() });
  return { info: log('info'), warn: log('warn'), error: log('error') } as unknown as Logger;
}

function supervisor(
  lines: Line[],
  restarts: string[] = [],
  options: Partial<SupervisorOptions> = {},
): Supervisor {
  return new Supervisor({
    config,
    count: 1,
    logger: recordingLogger(lines),
    states: () => [],
    resolved: () => [],
    onPassive: () => {},
    onRestart: (reason) => restarts.push(reason),
    entry,
    ...options,
  });
}

/** Whether a process is still there (a stopped one is). */
function alive(pid: number | undefined): boolean {
  try {
    process.kill(pid ?? 0, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, ms: number, found: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = found();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(20);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.serial(
  'a slot whose workers keep dying young is refilled at once, then after 250, 500, 1000 ms',
  async (t) => {
    process.env.FAKE_WORKER = 'crash';
    const lines: Line[] = [];
    const restarts: string[] = [];
    const running = supervisor(lines, restarts);
    try {
      await running.start();
      const deadline = Date.now() + 15_000;
      while (lines.filter((l) => l.message === 'worker ended').length < 4 && Date.now() < deadline)
        await sleep(20);
    } finally {
      await running.stop(1000);
      delete process.env.FAKE_WORKER;
    }
    const ended = lines.filter((l) => l.message === 'worker ended' && l.fields.reason === 'crashed');
    t.deepEqual(
      ended.slice(0, 4).map((l) => l.fields.replacingInMs),
      [0, 250, 500, 1000],
    );
    t.true(ended.every((l) => l.fields.exit === 'exited with code 3' && l.fields.worker === 1));
    t.true(restarts.length >= 3 && restarts.every((reason) => reason === 'crashed'));
  },
);

test.serial(
  'a rolling restart whose new worker does not start stops there; the old worker serves on',
  async (t) => {
    const lines: Line[] = [];
    const running = supervisor(lines);
    try {
      await running.start();
      const [old] = running.list();
      process.env.FAKE_WORKER = 'broken';
      t.deepEqual(running.restart(), { started: true, message: 'replacing 1 worker one at a time' });
      t.is(running.restart().started, false, 'one at a time');
      await running.settled();
      t.deepEqual(
        running.list().map((w) => w.pid),
        [old?.pid],
      );
      const stopped = lines.find((l) => l.message.startsWith('rolling restart stopped'));
      t.truthy(stopped);
      t.regex(String(stopped?.fields.error), /exited with code 4 before it listened/);
      t.truthy(lines.find((l) => l.message === 'worker ended' && l.fields.reason === 'failed to start'));
    } finally {
      delete process.env.FAKE_WORKER;
      await running.stop(1000);
    }
  },
);

test.serial(
  'a worker that stops answering (SIGSTOP) is killed after the heartbeat timeout and replaced',
  async (t) => {
    const lines: Line[] = [];
    const restarts: string[] = [];
    const running = supervisor(lines, restarts, { count: 2, heartbeatTimeoutMs: 1000 });
    try {
      await running.start();
      const [victim, other] = running.list();
      await sleep(1500);
      t.is(
        lines.filter((l) => l.message === 'worker not responding: killed').length,
        0,
        'steady workers kept',
      );
      const stoppedAt = Date.now();
      process.kill(victim?.pid ?? 0, 'SIGSTOP');
      const killed = await waitFor('kill', 5000, () =>
        lines.find((l) => l.message === 'worker not responding: killed'),
      );
      const tookMs = killed.at - stoppedAt;
      t.true(tookMs >= 1000 && tookMs < 2500, `killed ${tookMs} ms after it stopped`);
      t.like(killed.fields, { worker: 1, pid: victim?.pid });
      const replaced = await waitFor('replacement', 5000, () => {
        const now = running.list();
        return now.length === 2 && now.every((w) => w.listening && w.pid !== victim?.pid) ? now : undefined;
      });
      t.deepEqual(
        replaced.map((w) => w.index),
        [1, 2],
      );
      t.is(replaced[1]?.pid, other?.pid, 'the answering worker is left alone');
      t.false(alive(victim?.pid), 'the stopped worker is gone');
      const ended = lines.find((l) => l.message === 'worker ended' && l.fields.pid === victim?.pid);
      t.like(ended?.fields, { reason: 'hung', exit: 'killed by SIGKILL' });
      t.deepEqual(restarts, ['hung']);
    } finally {
      await running.stop(1000);
    }
  },
);

test.serial(
  'a supervisor stalled past the heartbeat timeout kills no worker for its own delay',
  async (t) => {
    const lines: Line[] = [];
    const running = supervisor(lines, [], { count: 2, heartbeatTimeoutMs: 1000 });
    try {
      await running.start();
      const before = running.list().map((w) => w.pid);
      // The supervisor's loop blocked: the workers' pushes wait unread meanwhile.
      const until = Date.now() + 1800;
      while (Date.now() < until);
      await sleep(1500);
      t.is(lines.filter((l) => l.message === 'worker not responding: killed').length, 0);
      t.deepEqual(
        running.list().map((w) => w.pid),
        before,
      );
    } finally {
      await running.stop(1000);
    }
  },
);

test.serial(
  'a rolling restart kills an old worker that does not stop within timeouts.shutdown + 1 s',
  async (t) => {
    process.env.FAKE_WORKER = 'stubborn';
    const lines: Line[] = [];
    const shortShutdown = parseConfig(
      'listen: 127.0.0.1:0\ntimeouts: { shutdown: 1s }\npools:\n  web:\n    servers: [127.0.0.1:9]\n',
    );
    const running = supervisor(lines, [], { config: shortShutdown });
    try {
      await running.start();
      const [old] = running.list();
      const rolledAt = Date.now();
      t.true(running.restart().started);
      await running.settled();
      t.true(alive(old?.pid), 'given its shutdown time first');
      const killed = await waitFor('kill', 5000, () =>
        lines.find((l) => l.message === 'worker did not stop in time: killed' && l.fields.pid === old?.pid),
      );
      const tookMs = killed.at - rolledAt;
      t.true(tookMs >= 2000 && tookMs < 4000, `killed ${tookMs} ms after the roll began`);
      await waitFor('its end', 2000, () => (alive(old?.pid) ? undefined : true));
      const [fresh] = running.list();
      t.not(fresh?.pid, old?.pid);
      t.true(alive(fresh?.pid));
    } finally {
      delete process.env.FAKE_WORKER;
      await running.stop(500);
    }
  },
);
