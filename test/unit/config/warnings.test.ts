// Settings accepted with a warning: periods short enough to cost real CPU (audit E), named by
// their key path as the config's problems are.
import test from 'ava';
import { parseConfig } from '../../../src/config/load.ts';
import { configWarnings, logConfigWarnings } from '../../../src/config/warnings.ts';

const POOLS =
  'routes: [{ host: "*", pool: web }]\npools:\n  web:\n    servers: [127.0.0.1:9001]\n  api:\n    servers: [127.0.0.1:9002]\n';
const texts = (yaml: string) => configWarnings(parseConfig(yaml)).map((warning) => warning.text);

test('the defaults, and the floors themselves, have no warning', (t) => {
  t.deepEqual(texts(POOLS), []);
  t.deepEqual(texts(`dnsRefresh: 1s\n${POOLS}    health: { interval: 100ms, timeout: 50ms }\n`), []);
});

test('dnsRefresh below 1s and a health interval below 100ms are warned about, by key path', (t) => {
  // A bare number is milliseconds: `dnsRefresh: 1` is 1 ms, as audit E ran it.
  t.deepEqual(texts(`dnsRefresh: 1\n${POOLS}    health: { interval: 2, timeout: 1 }\n`), [
    'dnsRefresh: 1ms is below 1s; resolving names that often costs CPU and loads the DNS server (default 30s)',
    'pools.api.health.interval: 2ms is below 100ms; probing that often costs CPU and loads the backends (default 2s)',
  ]);
  t.deepEqual(
    configWarnings(parseConfig(`dnsRefresh: 999ms\n${POOLS}`)).map((warning) => warning.path),
    [['dnsRefresh']],
  );
});

test('serve and a reload log the warnings as one line; nothing for a config without any', (t) => {
  const logged: unknown[][] = [];
  const logger = { warn: (...args: unknown[]) => logged.push(args) };
  logConfigWarnings(parseConfig(POOLS), logger);
  t.deepEqual(logged, []);
  logConfigWarnings(parseConfig(`dnsRefresh: 500ms\n${POOLS}`), logger);
  t.deepEqual(logged, [
    [
      'the config has warnings',
      {
        warnings: [
          'dnsRefresh: 500ms is below 1s; resolving names that often costs CPU and loads the DNS server (default 30s)',
        ],
      },
    ],
  ]);
});
