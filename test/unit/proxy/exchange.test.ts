// The exchange's state machine driven by fakes (test/support/fake-exchange.ts): every state and
// every event, with the exact bytes the client and the backends would see.
import test from 'ava';
import { Router } from '../../../src/proxy/router.ts';
import { harness, until } from '../../support/fake-exchange.ts';

const GET = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';

/** An exchange for `raw` whose first backend connected and sent `reply`. */
function answered(reply: string, raw = GET) {
  const h = harness();
  const b1 = h.backend(0);
  const exchange = h.start(raw);
  b1.upstream.connect();
  b1.upstream.reply(reply);
  return { h, b1, exchange };
}

function status(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
}

test('admit → answer: no route gets a local 404 and the connection is kept', (t) => {
  const h = harness();
  h.context.router = new Router([]);
  const exchange = h.start(GET);
  t.is(exchange.state, 'done');
  t.deepEqual(status(h.client.text), [404]);
  t.is(h.client.kept, true);
  t.is(h.backends[0]?.opened.length, 0);
});

test('admit → answer: a malformed request gets 400 and the connection closes', (t) => {
  const h = harness();
  const exchange = h.start(
    'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
  );
  t.is(exchange.state, 'done');
  t.deepEqual(status(h.client.text), [400]);
  t.regex(h.client.text, /connection: close/);
  t.is(h.client.kept, false);
});

test('attempt → relay → done: the head and body go out in one write; the connection is reused', (t) => {
  const h = harness();
  const exchange = h.start(GET);
  const b1 = h.backend(0);
  t.is(exchange.state, 'attempt');
  t.is(h.client.armed, 'connect');
  b1.upstream.connect();
  t.is(h.client.armed, 'response');
  t.regex(b1.upstream.received, /^GET \/a HTTP\/1\.1\r\n/);
  b1.upstream.reply(OK);
  t.is(exchange.state, 'done');
  t.is(h.client.out.length, 1);
  t.regex(h.client.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Content-Length: 5\r\n\r\nhello$/);
  t.deepEqual(b1.released, [b1.upstream.connection]);
  t.is(b1.inFlight, 0);
  t.deepEqual(b1.outcomes, [true]);
  t.is(h.client.kept, true);
});

test('attempt: a refused connection goes to backoff, then the next backend answers', async (t) => {
  const h = harness();
  const [b1, b2] = [h.backend(0), h.backend(1)];
  const exchange = h.start(GET);
  b1.upstream.fail('ECONNREFUSED');
  t.is(exchange.state, 'backoff');
  t.is(h.client.armed, undefined);
  t.deepEqual(b1.outcomes, [false]);
  t.is(b1.inFlight, 0);
  await until(() => b2.opened.length === 1);
  t.is(exchange.state, 'attempt');
  b2.upstream.connect();
  b2.upstream.reply(OK);
  t.deepEqual(status(h.client.text), [200]);
  t.is(exchange.attempts, 2);
});

test('deadline in attempt before the connection is up: connect timeout, retried elsewhere', async (t) => {
  const h = harness();
  const [b1, b2] = [h.backend(0), h.backend(1)];
  const exchange = h.start(GET);
  t.is(h.client.armed, 'connect');
  exchange.expire();
  t.is(exchange.state, 'backoff');
  t.true(b1.upstream.destroyed);
  await until(() => b2.opened.length === 1);
  b2.upstream.connect();
  b2.upstream.reply(OK);
  t.deepEqual(status(h.client.text), [200]);
});

test('deadline in attempt after the request went out: 504, not retried', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  const exchange = h.start(GET);
  b1.upstream.connect();
  t.is(h.client.armed, 'response');
  exchange.expire();
  t.is(exchange.state, 'done');
  t.deepEqual(status(h.client.text), [504]);
  t.regex(h.client.text, /backend timed out/);
  t.is(exchange.error, 'response_timeout');
  t.is(h.backends[1]?.opened.length, 0);
  t.true(b1.upstream.destroyed);
});

test('deadline during backoff changes nothing: the retry still runs', async (t) => {
  const h = harness();
  const [b1, b2] = [h.backend(0), h.backend(1)];
  const exchange = h.start(GET);
  b1.upstream.fail('ECONNREFUSED');
  t.is(exchange.state, 'backoff');
  exchange.expire();
  t.is(exchange.state, 'backoff');
  t.is(h.client.text, '');
  await until(() => b2.opened.length === 1);
  b2.upstream.connect();
  b2.upstream.reply(OK);
  t.deepEqual(status(h.client.text), [200]);
});

test('client gone during backoff: the exchange ends and no further attempt starts', async (t) => {
  const h = harness();
  const [b1, b2] = [h.backend(0), h.backend(1)];
  const exchange = h.start(GET);
  b1.upstream.fail('ECONNREFUSED');
  exchange.onClientGone();
  t.is(exchange.state, 'done');
  t.is(exchange.status, 499);
  t.is(exchange.error, 'refused');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(b2.opened.length, 0);
});

test('every backend refused: 502 once the pool has none left', async (t) => {
  const h = harness();
  const [b1, b2] = [h.backend(0), h.backend(1)];
  const exchange = h.start(GET);
  b1.upstream.fail('ECONNREFUSED');
  await until(() => b2.opened.length === 1);
  b2.upstream.fail('ECONNREFUSED');
  await until(() => exchange.state === 'done');
  t.deepEqual(status(h.client.text), [502]);
  t.is(exchange.error, 'refused');
});

test('a kept-alive connection closed before answering: one fresh connection, same backend, no backoff', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  const stale = b1.addIdle();
  const exchange = h.start(GET);
  t.regex(stale.received, /^GET \/a /);
  stale.close();
  t.is(exchange.state, 'attempt');
  t.is(b1.opened.length, 2);
  t.deepEqual(b1.outcomes, []);
  b1.upstream.connect();
  b1.upstream.reply(OK);
  t.deepEqual(status(h.client.text), [200]);
});

test('a POST whose connection closes before the answer is not sent again: 502', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  const exchange = h.start('POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
  b1.upstream.connect();
  t.regex(b1.upstream.received, /\r\n\r\nhi$/);
  b1.upstream.close();
  t.is(exchange.state, 'done');
  t.deepEqual(status(h.client.text), [502]);
  t.is(exchange.error, 'closed_before_response');
  t.is(h.backends[1]?.opened.length, 0);
});

test('a 100 Continue goes on to an HTTP/1.1 client before the answer', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  h.start(GET);
  b1.upstream.connect();
  b1.upstream.reply('HTTP/1.1 100 Continue\r\n\r\n');
  t.is(h.client.text, 'HTTP/1.1 100 Continue\r\n\r\n');
  b1.upstream.reply(OK);
  t.deepEqual(status(h.client.text), [100, 200]);
});

test('relay with a held head: nothing reaches the client until the body, then one write', (t) => {
  const { h, b1, exchange } = answered('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  t.is(exchange.state, 'relay');
  t.deepEqual(h.client.out, []);
  b1.upstream.reply('hello');
  t.is(h.client.out.length, 1);
  t.true(h.client.text.endsWith('\r\n\r\nhello'));
  t.is(exchange.state, 'done');
});

test('deadline during a held head: a clean 504, not a cut answer', (t) => {
  const { h, b1, exchange } = answered('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  exchange.expire();
  t.deepEqual(status(h.client.text), [504]);
  t.false(h.client.destroyed);
  t.true(b1.upstream.destroyed);
});

test('client gone during a held head: 499 in the records, nothing written, the backend connection closed', (t) => {
  const { h, b1, exchange } = answered('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  exchange.onClientGone();
  t.is(exchange.state, 'done');
  t.is(exchange.status, 200);
  t.is(exchange.error, 'client_closed');
  t.deepEqual(h.client.out, []);
  t.true(b1.upstream.destroyed);
  t.deepEqual(b1.released, []);
});

test('backend gone during a held head: a GET goes to another backend', async (t) => {
  const h = harness();
  const [b1, b2] = [h.backend(0), h.backend(1)];
  const exchange = h.start(GET);
  b1.upstream.connect();
  b1.upstream.reply('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  b1.upstream.fail('ECONNRESET');
  t.is(exchange.state, 'backoff');
  await until(() => b2.opened.length === 1);
  b2.upstream.connect();
  b2.upstream.reply(OK);
  t.deepEqual(status(h.client.text), [200]);
});

test('relay: the backend dying mid-body cuts the client connection', (t) => {
  const { h, b1, exchange } = answered('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
  t.is(exchange.state, 'relay');
  b1.upstream.fail('ECONNRESET');
  t.is(exchange.state, 'done');
  t.true(h.client.destroyed);
  t.is(exchange.error, 'reset');
  t.is(h.client.kept, false);
});

test('deadline in relay after the head went out: the answer is cut', (t) => {
  const { h, exchange } = answered('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
  exchange.expire();
  t.true(h.client.destroyed);
  t.is(exchange.error, 'response_timeout');
});

test('relay end by close: a close-delimited body is chunked for an HTTP/1.1 client', (t) => {
  const { h, b1, exchange } = answered('HTTP/1.0 200 OK\r\n\r\nuntil close');
  b1.upstream.close();
  t.is(exchange.state, 'done');
  t.true(h.client.text.endsWith('\r\n\r\nb\r\nuntil close\r\n0\r\n\r\n'));
  t.is(h.client.kept, true);
});

test('a full client socket pauses the backend; its drain resumes it', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  const exchange = h.start(GET);
  b1.upstream.connect();
  h.client.needsDrain = true;
  b1.upstream.reply('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome');
  t.true(b1.upstream.socket.paused);
  exchange.onClientDrain();
  t.false(b1.upstream.socket.paused);
});

test('tunnel: a 101 switches both ways; the deadline ends it; a backend half-close is passed on, a reset as a reset', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  const upgrade = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n';
  const exchange = h.start(upgrade);
  b1.upstream.connect();
  b1.upstream.reply(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nfrom-backend',
  );
  t.is(exchange.state, 'tunnel');
  t.true(h.client.tunnel);
  t.is(h.client.armed, 'idle');
  t.true(h.client.text.endsWith('\r\n\r\nfrom-backend'));
  t.is(b1.unasked, 0, 'bytes after a 101 are the tunnel, not bytes nobody asked for');
  t.true(exchange.consumesClientBytes);
  exchange.onClientBody(Buffer.from('from-client'));
  t.true(b1.upstream.received.endsWith('from-client'));
  b1.upstream.close();
  t.true(h.client.ended, 'the backend half-close is passed on');
  t.is(exchange.state, 'tunnel', 'the client may still send');
  exchange.onClientBody(Buffer.from('after-end'));
  t.true(b1.upstream.received.endsWith('after-end'));
  exchange.onClientEnd();
  t.true(b1.upstream.socket.ended, 'the client half-close is passed on');
  b1.upstream.socket.destroy();
  t.is(exchange.state, 'done', 'both sides ended: the tunnel is over');
  t.false(h.client.wasReset);

  const failing = harness();
  const broken = failing.start(upgrade);
  failing.backends[0]?.upstream.connect();
  failing.backends[0]?.upstream.reply(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  failing.backends[0]?.upstream.fail('ECONNRESET');
  t.true(failing.client.wasReset, 'a backend reset reaches the client as a reset');
  t.is(broken.state, 'done');

  const idle = harness();
  const other = idle.start(upgrade);
  idle.backends[0]?.upstream.connect();
  idle.backends[0]?.upstream.reply(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  other.expire();
  t.true(idle.client.destroyed);
  t.is(other.error, 'tunnel_idle');
});

test('bytes after a bodiless answer or past Content-Length: the backend is told it sent what nobody asked for', (t) => {
  for (const [answer, unasked] of [
    ['HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n', 1],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', 1],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 0],
  ] as const) {
    const h = harness();
    const b1 = h.backend(0);
    const exchange = h.start('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    b1.upstream.connect();
    b1.upstream.reply(answer);
    t.is(exchange.state, 'done', answer);
    t.is(b1.unasked, unasked, answer);
    t.is(b1.released.length, 1 - unasked, 'the connection is kept only after a clean answer');
  }
});

test('client gone while connecting: the attempt ends and its connection closes', (t) => {
  const h = harness();
  const b1 = h.backend(0);
  const exchange = h.start(GET);
  exchange.onClientGone();
  t.is(exchange.state, 'done');
  t.true(b1.upstream.destroyed);
  t.is(b1.inFlight, 0);
});

test('cacheWait → answer: a coalesced miss waits for the leader, then is answered from the cache', async (t) => {
  const h = harness({ cache: true });
  const b1 = h.backend(0);
  const leader = h.start(GET);
  t.is(leader.state, 'attempt');
  const follower = h.start(GET);
  t.is(follower.state, 'cacheWait');
  t.is(h.client.armed, undefined);
  follower.expire();
  t.is(follower.state, 'cacheWait');
  b1.upstream.connect();
  b1.upstream.reply('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\n\r\nhello');
  t.is(leader.state, 'done');
  await until(() => follower.state === 'done');
  t.is(b1.opened.length, 1);
  t.deepEqual(status(h.client.text), [200, 200]);
  t.regex(h.client.out[1] ?? '', /X-Cache: HIT/i);
});

test('answer from the cache to a slow client: done only once the client has read it', async (t) => {
  const h = harness({ cache: true });
  const b1 = h.backend(0);
  h.start(GET);
  b1.upstream.connect();
  b1.upstream.reply('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\n\r\nhello');
  h.client.needsDrain = true;
  h.client.queued = 100;
  const hit = h.start(GET);
  await until(() => h.client.out.length === 2);
  t.is(hit.state, 'answer');
  t.is(h.client.armed, 'idle');
  h.client.queued = 50;
  hit.expire();
  t.is(hit.state, 'answer');
  t.is(h.client.dones.length, 1);
  hit.onClientDrain();
  t.is(hit.state, 'done');
  t.deepEqual(h.client.dones, [true, true]);
});
