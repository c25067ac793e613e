// A coalesced cache miss whose leader's client reads slowly or not at all (audit L, defect 3):
// the fill goes at that client's pace (the backend is paused for its backpressure), so its
// followers used to wait the whole lockTimeout (5 s) and then all went to the backend. Now a
// leader whose client holds the backend for LEADER_STALL_GRACE_MS (200 ms) in all releases them:
// one leads a new flight, the others follow it. Backend requests: the stalled leader's, plus one
// per leader released (2 here, at most 1 + followers); the stalled leader still gets its whole
// body when it reads.
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { httpRequest } from '../support/http.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket } from '../support/raw-http.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

const BODY = randomBytes(6 * 1024 * 1024);
const FOLLOWERS = 5;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const seen = new Map<string, number>();
let backend: NodeBackend;
let sluice: RunningSluice;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    const path = request.url ?? '/';
    seen.set(path, (seen.get(path) ?? 0) + 1);
    // The control's answer comes late enough for every follower to join its flight.
    const delay = path.startsWith('/control') ? 150 : 0;
    setTimeout(() => {
      response.setHeader('cache-control', 'public, max-age=600');
      response.setHeader('content-length', BODY.length);
      response.end(BODY);
    }, delay);
  });
  sluice = await startProxy(
    quietYaml(
      { web: [backend.port] },
      {
        extra: 'cache: { maxBytes: 64MiB, maxObjectBytes: 16MiB, lockTimeout: 5s }',
        routes: '  - host: "*"\n    pool: web\n    cache: true',
      },
    ),
  );
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

/** A leader that sends its request and reads only when told: `take(bytes)` reads that many now. */
async function slowLeader(path: string) {
  const socket = await openSocket(sluice.address.port);
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  return {
    take(bytes: number): void {
      const chunk = socket.read(bytes) as Buffer | null;
      if (chunk !== null) chunks.push(chunk);
    },
    /** Reads the rest at full speed: the whole response, once Sluice closes. */
    readAll(): Promise<Buffer> {
      return new Promise((resolve) => {
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.once('end', () => resolve(Buffer.concat(chunks)));
        socket.resume();
      });
    },
  };
}

async function follower(path: string) {
  const started = performance.now();
  const reply = await httpRequest({ port: sluice.address.port, path });
  return { ...reply, ms: performance.now() - started };
}

for (const [name, trickle] of [
  ['reads nothing', false],
  ['reads 16 KiB every 50 ms', true],
] as const) {
  test.serial(
    `a leader that ${name} does not hold its followers: they are served at once, byte-identical`,
    async (t) => {
      const path = `/popular-${trickle ? 'trickle' : 'still'}`;
      const leader = await slowLeader(path);
      const trickling = trickle ? setInterval(() => leader.take(16 * 1024), 50) : undefined;
      // The leader leads: its answer is under way (and paused) before the followers ask.
      await sleep(30);
      const started = performance.now();
      const followers = await Promise.all(Array.from({ length: FOLLOWERS }, () => follower(path)));
      const slowest = performance.now() - started;
      clearInterval(trickling);
      t.log(
        `followers: ${followers.map((f) => `${Math.round(f.ms)} ms ${f.headers['x-cache']}`).join(', ')}`,
      );
      t.log(`backend requests: ${seen.get(path)}`);
      // lockTimeout is 5 s; the grace is 200 ms, then a 6 MiB transfer over loopback.
      t.true(slowest < 1500, `slowest follower ${Math.round(slowest)} ms`);
      for (const reply of followers) {
        t.is(reply.status, 200);
        t.is(reply.body.length, BODY.length);
        t.is(sha256(reply.body), sha256(BODY));
      }
      // The stalled leader's request, and one for the follower that led in its place (more only if
      // that one stalled too, at most one per follower).
      const requests = seen.get(path) ?? 0;
      t.true(requests >= 2 && requests <= 1 + FOLLOWERS, `${requests} backend requests`);
      // The slow leader still gets its whole answer, intact, when it reads.
      const whole = await leader.readAll();
      const split = whole.indexOf('\r\n\r\n');
      t.regex(whole.subarray(0, split).toString('latin1'), /^HTTP\/1\.1 200 /);
      t.is(sha256(whole.subarray(split + 4)), sha256(BODY));
    },
  );
}

test.serial(
  'control: with a leader that reads, followers still coalesce onto one backend request',
  async (t) => {
    const path = '/control';
    const leader = follower(path);
    await sleep(30);
    const replies = await Promise.all([leader, ...Array.from({ length: FOLLOWERS }, () => follower(path))]);
    t.is(seen.get(path), 1);
    for (const reply of replies) t.is(sha256(reply.body), sha256(BODY));
    t.is(replies[0]?.headers['x-cache'], 'MISS');
    t.deepEqual(
      replies.slice(1).map((reply) => reply.headers['x-cache']),
      Array(FOLLOWERS).fill('HIT'),
    );
  },
);
