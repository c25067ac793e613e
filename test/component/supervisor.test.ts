// The supervisor's own behaviour, with stand-in workers (test/support/fake-worker.ts): a slot
// whose workers keep dying is refilled with a growing delay, each end is logged with its cause,
// and a rolling restart whose new worker does not start stops and keeps the old ones.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Logger } from 'winston';
import { Supervisor } from '../../src/cluster/supervisor.ts';
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

function supervisor(lines: Line[], restarts: string[] = []): Supervisor {
  return new Supervisor({
    config,
    count: 1,
    logger: recordingLogger(lines),
    states: () => [],
    resolved: () => [],
    onPassive: () => {},
    onRestart: (reason) => restarts.push(reason),
    entry,
  });
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
