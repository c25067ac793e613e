import test from 'ava';
import type { ServerConfig } from '../../../src/config/types.ts';
import { resolveServers } from '../../../src/upstream/discovery.ts';

function server(address: string, weight = 1): ServerConfig {
  const colon = address.lastIndexOf(':');
  return {
    address,
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    weight,
    name: address,
  };
}

const pool = (...servers: ServerConfig[]) => ({ name: 'web', servers });

test('an IP address stays one backend; a DNS name becomes one backend per address', async (t) => {
  const lookups: string[] = [];
  const resolved = await resolveServers(
    pool(server('127.0.0.1:9001'), server('web.internal:80', 2)),
    async (name) => {
      lookups.push(name);
      return ['10.0.0.5', '10.0.0.6', '10.0.0.5'];
    },
  );
  t.deepEqual(lookups, ['web.internal']);
  t.deepEqual(
    resolved.map(({ name, host, port, server: config }) => [name, host, port, config.weight]),
    [
      ['127.0.0.1:9001', '127.0.0.1', 9001, 1],
      ['web.internal:80/10.0.0.5', '10.0.0.5', 80, 2],
      ['web.internal:80/10.0.0.6', '10.0.0.6', 80, 2],
    ],
  );
});

test('IPv6 literals are not looked up', async (t) => {
  const resolved = await resolveServers(pool({ ...server('[::1]:80'), host: '::1' }), async () => {
    throw new Error('no lookup expected');
  });
  t.deepEqual(
    resolved.map((entry) => entry.host),
    ['::1'],
  );
});

test('a name that does not resolve fails with the key of its server, as check --resolve says it', async (t) => {
  await t.throwsAsync(
    resolveServers(pool(server('127.0.0.1:80'), server('nowhere.invalid:80')), async (name) => {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    }),
    { message: 'pools.web.servers[1].address: "nowhere.invalid" does not resolve (ENOTFOUND)' },
  );
});
