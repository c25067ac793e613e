import test from 'ava';
import { parseConfig } from '../../../src/config/load.ts';
import { unresolvedNames } from '../../../src/upstream/discovery.ts';

test('unresolvedNames: each DNS name looked up once, failures at their key paths, IPs skipped', async (t) => {
  const config = parseConfig(`pools:
  web:
    servers: [127.0.0.1:80, good.test:80, gone.test:80, empty.test:80, gone.test:81]
routes:
  - pool: web
`);
  const asked: string[] = [];
  const problems = await unresolvedNames(config, async (host) => {
    asked.push(host);
    if (host === 'good.test') return ['10.0.0.1'];
    if (host === 'empty.test') return [];
    throw Object.assign(new Error('queryA ENOTFOUND'), { code: 'ENOTFOUND' });
  });
  t.deepEqual(asked.sort(), ['empty.test', 'gone.test', 'good.test']);
  t.deepEqual(problems, [
    { path: ['pools', 'web', 'servers', 2, 'address'], message: '"gone.test" does not resolve (ENOTFOUND)' },
    { path: ['pools', 'web', 'servers', 3, 'address'], message: '"empty.test" resolves to no address' },
    { path: ['pools', 'web', 'servers', 4, 'address'], message: '"gone.test" does not resolve (ENOTFOUND)' },
  ]);
});
