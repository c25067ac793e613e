// The load generator of the chaos tests (test/support/load.ts), against a small node:http server:
// it stops by itself, counts what it sent, and names every kind of failure.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { HARD_MAX_DURATION_MS, now, share, startLoad } from '../support/load.ts';

let server: http.Server;
let port = 0;
let served = 0;

test.before(async () => {
  server = http.createServer((req, res) => {
    served++;
    const path = req.url ?? '/';
    if (path === '/slow') return; // never answers
    if (path === '/cut') {
      res.writeHead(200, { 'content-length': '100', 'x-backend': 'b' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    const status = path === '/500' ? 500 : 200;
    res.writeHead(status, { 'x-backend': served % 4 === 0 ? 'a' : 'b', 'content-length': '2' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

test.after.always(() => {
  server.closeAllConnections();
  server.close();
});

test.serial('sends exactly maxRequests with N workers and counts answers per backend', async (t) => {
  const load = startLoad({ port, workers: 4, maxRequests: 200 });
  const summary = await load.done;
  t.is(summary.sent, 200);
  t.is(summary.completed, 200);
  t.is(summary.ok, 200);
  t.deepEqual(summary.failures, {});
  t.is((summary.perBackend.a ?? 0) + (summary.perBackend.b ?? 0), 200);
  t.is(summary.perBackend.a, 50, 'every fourth answer is from a');
  const windows = load.windows(50);
  t.is(
    windows.reduce((sum, w) => sum + w.total, 0),
    200,
  );
  t.true(
    windows.every((w) => share(w, 'a') >= 0 && share(w, 'a') <= 1),
    'shares are fractions',
  );
});

test.serial('stops by itself after durationMs, and never later than the hard maximum', async (t) => {
  const started = now();
  const load = startLoad({ port, workers: 2, durationMs: 300, pauseMs: 5 });
  const summary = await load.done;
  const took = now() - started;
  t.true(took >= 290 && took < 800, `took ${Math.round(took)} ms`);
  t.true(summary.sent > 10);
  t.true(load.stopped);
  t.is(HARD_MAX_DURATION_MS, 120_000);
});

test.serial('names failures: status, client timeout, truncated body, refused connection', async (t) => {
  const paths = ['/500', '/slow', '/cut'];
  const load = startLoad({
    port,
    workers: 3,
    maxRequests: 3,
    requestTimeoutMs: 300,
    request: (seq) => ({ path: paths[seq] ?? '/' }),
  });
  const summary = await load.done;
  t.deepEqual(summary.failures, { '500': 1, timeout: 1, truncated: 1 });
  const byPath = new Map(load.records.map((r) => [r.path, r]));
  t.is(byPath.get('/cut')?.status, 200);
  t.is(byPath.get('/cut')?.backend, 'b');
  const slow = byPath.get('/slow');
  t.true((slow?.end ?? 0) - (slow?.start ?? 0) >= 295, 'the timeout is the client-side bound');

  // A port nothing listens on: refused.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const refused = await startLoad({ port: closedPort, workers: 1, maxRequests: 2 }).done;
  t.deepEqual(refused.failures, { ECONNREFUSED: 2 });
});

test.serial('stop() ends a run early and waits for requests in flight', async (t) => {
  const load = startLoad({ port, workers: 4, durationMs: 60_000 });
  await load.waitForRequests(50);
  const summary = await load.stop();
  t.is(summary.completed, summary.sent);
  t.true(summary.sent >= 50);
});
