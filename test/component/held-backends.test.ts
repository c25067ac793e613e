// A backend that gives up on writes Sluice held back for a client that did not read (audit L,
// defect 1): nginx's send_timeout, gunicorn's worker timeout. Its close is the client's doing,
// never counted against the backend; a backend that dies while its client reads, or once the
// client has been reading again for a while, still is (src/proxy/client-hold.ts has the rule).
import { connect, type Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { reply, type ScriptedBackend, startScriptedBackend } from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

const MiB = 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 0x61);
/** Larger than every socket buffer between the backend and the client. */
const size = 256 * MiB;
const bigHead = `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`;

/**
 * Writes the big body as fast as the peer takes it, `gapMs` between writes; `blocked` is told
 * when a write blocks and returns a function called once it drains. Stops when the socket goes.
 */
function pump(socket: Socket, gapMs: number, blocked: () => () => void = () => () => {}): void {
  const next = () => {
    if (socket.destroyed) return;
    if (socket.write(chunk)) {
      if (gapMs > 0) setTimeout(next, gapMs);
      else setImmediate(next);
      return;
    }
    const unblocked = blocked();
    socket.once('drain', () => {
      unblocked();
      next();
    });
  };
  next();
}

/** What the backends do, by path; anything else gets a small answer naming the backend. */
function script(name: string) {
  return (request: { line: string }, socket: Socket) => {
    const path = request.line.split(' ')[1];
    if (path === '/send-timeout') {
      // nginx's send_timeout, shortened: a write that stays blocked for 300 ms ends it all.
      socket.write(bigHead);
      pump(socket, 0, () => {
        const timer = setTimeout(() => socket.destroy(), 300);
        return () => clearTimeout(timer);
      });
    } else if (path === '/dies-later') {
      // Streams (blocked while the client pauses), then dies 5 s in, whoever reads.
      socket.write(bigHead);
      pump(socket, 2);
      setTimeout(() => socket.destroy(), 5000);
    } else if (path === '/dies-mid-body') {
      socket.write(bigHead);
      socket.write(Buffer.alloc(8 * MiB, 0x61), () => setTimeout(() => socket.destroy(), 20));
    } else socket.write(reply(`from ${name}`));
  };
}

/** Reads `path`: nothing for `pauseMs`, then everything; short pauses of `jitterMs` every MiB. */
function read(port: number, path: string, pauseMs: number, jitterMs = 0): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let bytes = 0;
    let mark = MiB;
    socket.on('data', (data: Buffer) => {
      bytes += data.length;
      if (jitterMs > 0 && bytes > mark) {
        mark += MiB;
        socket.pause();
        setTimeout(() => socket.resume(), jitterMs);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(bytes - bigHead.length));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    if (pauseMs > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), pauseMs);
    }
  });
}

/** Sends `count` small GETs one after another; how many each backend answered. */
async function spread(port: number, count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const text = await new Promise<string>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      let all = '';
      socket.on('data', (data: Buffer) => {
        all += data.toString('latin1');
      });
      socket.on('close', () => resolve(all));
      socket.write('GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    });
    const from = /from (\w+)$/.exec(text)?.[1] ?? text.slice(0, 12);
    seen[from] = (seen[from] ?? 0) + 1;
  }
  return seen;
}

async function setup(): Promise<{
  sluice: RunningSluice;
  backends: ScriptedBackend[];
  close(): Promise<void>;
}> {
  const backends = [await startScriptedBackend(script('a')), await startScriptedBackend(script('b'))];
  const sluice = await startProxy(
    quietYaml({ web: backends.map((b) => b.port) }).replace(
      'health: { interval: 1h, timeout: 1s }',
      'health: { interval: 1h, timeout: 1s, ejectAfter: 2, maxEjectedPercent: 100 }',
    ),
  );
  return {
    sluice,
    backends,
    async close() {
      await sluice.stop();
      for (const backend of backends) await backend.close();
    },
  };
}

const states = (sluice: RunningSluice) => sluice.pools.get('web')?.backends.map((b) => b.health.state);

test.serial(
  'slow readers behind a backend with a send timeout of its own do not get it ejected',
  async (t) => {
    const { sluice, close } = await setup();
    t.teardown(close);
    const port = sluice.address.port;
    t.deepEqual(await spread(port, 6), { a: 3, b: 3 });
    // Four clients read nothing for 1.5 s: each backend gives up on two of them (ejectAfter: 2).
    const got = await Promise.all([0, 1, 2, 3].map(() => read(port, '/send-timeout', 1500)));
    for (const bytes of got) t.true(bytes < size, `the client sees the cut: ${bytes} of ${size}`);
    t.deepEqual(states(sluice), ['up', 'up']);
    const metrics = (await sluice.metrics.render()).body;
    t.notRegex(metrics, /sluice_backend_errors_total\{[^}]*\} [1-9]/);
    t.notRegex(metrics, /sluice_backend_ejections_total\{[^}]*\} [1-9]/);
    t.deepEqual(await spread(port, 6), { a: 3, b: 3 }, 'both still in rotation, balanced as before');
  },
);

test.serial(
  'a backend that dies while its client reads, or long after the client read again, is still counted',
  async (t) => {
    const { sluice, close } = await setup();
    t.teardown(close);
    const port = sluice.address.port;
    // The client paused 2.5 s (the backend held), then read for 2.5 s before the backend died:
    // its close came on its own clock, not out of the backlog of the pause.
    const late = await Promise.all([read(port, '/dies-later', 2500), read(port, '/dies-later', 2500)]);
    for (const bytes of late) t.true(bytes < size);
    // A client that keeps reading (pausing 30 ms now and then: backpressure, short holds).
    for (let i = 0; i < 2; i++) t.true((await read(port, '/dies-mid-body', 0, 30)) < size);
    const metrics = (await sluice.metrics.render()).body;
    const counted = [
      ...metrics.matchAll(/sluice_backend_errors_total\{[^}]*type="closed_mid_response"\} (\d+)/g),
    ];
    t.deepEqual(
      counted.map((m) => m[1]),
      ['2', '2'],
      'every cut counted against its backend',
    );
    t.deepEqual(states(sluice), ['ejected', 'ejected'], 'two in a row each: ejectAfter 2');
  },
);
