// The cache cannot be poisoned through what the client spelled (issue 10): it keys and matches
// Vary on exactly what was forwarded, and does not share answers to requests with cookies.

import type { Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { rawExchange } from '../support/raw-http.ts';
import {
  fieldOf,
  reply,
  type ScriptedBackend,
  type ScriptedRequest,
  startScriptedBackend,
} from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

let backend: ScriptedBackend;
let answer: (request: ScriptedRequest, socket: Socket) => void;

test.before(async () => {
  backend = await startScriptedBackend((request, socket) => answer(request, socket));
});
test.after.always(() => backend?.close());

async function cachingSluice(extra = ''): Promise<RunningSluice> {
  return startProxy(quietYaml({ web: [backend.port] }, { extra, routes: '  - pool: web\n    cache: true' }));
}

async function get(sluice: RunningSluice, request: string): Promise<{ cache: string; body: string }> {
  const { text } = await rawExchange(sluice.address.port, request, { idleMs: 400 });
  return {
    cache: /\r\nx-cache: (\w+)/i.exec(text)?.[1] ?? '',
    body: text.slice(text.indexOf('\r\n\r\n') + 4),
  };
}

test.serial(
  'an absolute-form request with a hostile Host cannot poison the entry of its authority',
  async (t) => {
    answer = (request, socket) =>
      socket.write(
        reply(`link to ${fieldOf(request, 'x-forwarded-host')}`, { 'Cache-Control': 'max-age=600' }),
      );
    const sluice = await cachingSluice();
    t.teardown(() => sluice.stop());
    const first = await get(sluice, 'GET http://cache.test/page HTTP/1.1\r\nHost: attacker.example\r\n\r\n');
    t.is(first.cache, 'MISS');
    const victim = await get(sluice, 'GET /page HTTP/1.1\r\nHost: cache.test\r\n\r\n');
    t.is(victim.cache, 'HIT');
    t.is(victim.body, 'link to cache.test');
  },
);

test.serial('Vary matches the fields as forwarded: a Connection-stripped field is no variant', async (t) => {
  answer = (request, socket) =>
    socket.write(
      reply(`lang=${fieldOf(request, 'accept-language') ?? 'none'}`, {
        'Cache-Control': 'max-age=600',
        Vary: 'Accept-Language',
      }),
    );
  const sluice = await cachingSluice();
  t.teardown(() => sluice.stop());
  const stripped = await get(
    sluice,
    'GET /v HTTP/1.1\r\nHost: v.test\r\nConnection: accept-language\r\nAccept-Language: fr\r\n\r\n',
  );
  t.is(stripped.body, 'lang=none');
  const french = await get(sluice, 'GET /v HTTP/1.1\r\nHost: v.test\r\nAccept-Language: fr\r\n\r\n');
  t.is(french.cache, 'MISS');
  t.is(french.body, 'lang=fr');
  const plain = await get(sluice, 'GET /v HTTP/1.1\r\nHost: v.test\r\n\r\n');
  t.is(plain.cache, 'HIT');
  t.is(plain.body, 'lang=none');
});

test.serial('answers to requests with Cookie are not stored unless public or s-maxage', async (t) => {
  let n = 0;
  answer = (request, socket) => {
    const cc = request.line.includes('/public')
      ? 'public, max-age=600'
      : request.line.includes('/shared')
        ? 's-maxage=600'
        : 'max-age=600';
    socket.write(reply(`page ${++n} for ${fieldOf(request, 'cookie') ?? 'nobody'}`, { 'Cache-Control': cc }));
  };
  const sluice = await cachingSluice();
  t.teardown(() => sluice.stop());
  await get(sluice, 'GET /mine HTTP/1.1\r\nHost: c.test\r\nCookie: session=alice\r\n\r\n');
  const other = await get(sluice, 'GET /mine HTTP/1.1\r\nHost: c.test\r\nCookie: session=bob\r\n\r\n');
  t.not(other.cache, 'HIT');
  t.regex(other.body, /for session=bob$/);
  for (const path of ['/public', '/shared']) {
    await get(sluice, `GET ${path} HTTP/1.1\r\nHost: c.test\r\nCookie: session=alice\r\n\r\n`);
    t.is((await get(sluice, `GET ${path} HTTP/1.1\r\nHost: c.test\r\n\r\n`)).cache, 'HIT', path);
  }
  const shared = await cachingSluice('cache: { storeWithCookie: true }');
  t.teardown(() => shared.stop());
  await get(shared, 'GET /mine HTTP/1.1\r\nHost: c.test\r\nCookie: session=alice\r\n\r\n');
  t.is((await get(shared, 'GET /mine HTTP/1.1\r\nHost: c.test\r\n\r\n')).cache, 'HIT');
});

for (const field of [
  'X-HTTP-Method-Override',
  'X-HTTP-Method',
  'X-Method-Override',
  'X-Original-Method',
  'X-Forwarded-Method',
]) {
  test.serial(`a GET with ${field} neither fills nor reads the cache`, async (t) => {
    // Some frameworks act on the override: its answer is not the GET's.
    answer = (request, socket) =>
      socket.write(
        reply(fieldOf(request, field) === undefined ? 'item page' : 'item deleted', {
          'Cache-Control': 'max-age=600',
        }),
      );
    const sluice = await cachingSluice();
    t.teardown(() => sluice.stop());
    const overridden = await get(
      sluice,
      `GET /item HTTP/1.1\r\nHost: cache.test\r\n${field}: DELETE\r\n\r\n`,
    );
    t.is(overridden.body, 'item deleted');
    const victim = await get(sluice, 'GET /item HTTP/1.1\r\nHost: cache.test\r\n\r\n');
    t.is(victim.cache, 'MISS');
    t.is(victim.body, 'item page');
    const again = await get(sluice, `GET /item HTTP/1.1\r\nHost: cache.test\r\n${field}: DELETE\r\n\r\n`);
    t.is(again.body, 'item deleted', 'an override is not answered from the stored GET either');
  });
}

test.serial(
  'the backend sees the Host spelling the cache keys on: one client spelling cannot set every client’s links',
  async (t) => {
    answer = (request, socket) =>
      socket.write(
        reply(`link to http://${fieldOf(request, 'host')}/login`, { 'Cache-Control': 'max-age=600' }),
      );
    const sluice = await cachingSluice();
    t.teardown(() => sluice.stop());
    const odd = await get(sluice, 'GET /home HTTP/1.1\r\nHost: Spelled.Cache.Test.:80\r\n\r\n');
    t.is(odd.cache, 'MISS');
    t.is(odd.body, 'link to http://spelled.cache.test/login');
    const victim = await get(sluice, 'GET /home HTTP/1.1\r\nHost: spelled.cache.test\r\n\r\n');
    t.is(victim.cache, 'HIT');
    t.is(victim.body, 'link to http://spelled.cache.test/login');
  },
);
