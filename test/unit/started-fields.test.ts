import test from 'ava';
import { startedFields } from '../../src/sluice.ts';

test('the sluice started line writes IPv6 addresses in brackets, as the config does', (t) => {
  const fields = startedFields(
    { address: '::1', family: 'IPv6', port: 8080 },
    { address: '127.0.0.1', family: 'IPv4', port: 8099 },
    new Map(),
  );
  t.deepEqual(fields, { listen: '[::1]:8080', admin: '127.0.0.1:8099', pools: [] });
});
