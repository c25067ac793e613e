import test from 'ava';
import {
  closest,
  formatDuration,
  isHostname,
  parseAddress,
  parseDuration,
  parseHostPattern,
  parseIpOrCidr,
  parseSize,
  parseStatusRange,
} from '../../../src/config/values.ts';

const value = <T>(r: { ok: true; value: T } | { ok: false; message: string }): T | string =>
  r.ok ? r.value : `error: ${r.message}`;

test('durations', (t) => {
  t.is(value(parseDuration('250ms')), 250);
  t.is(value(parseDuration('2s')), 2000);
  t.is(value(parseDuration('1.5s')), 1500);
  t.is(value(parseDuration('1m')), 60_000);
  t.is(value(parseDuration('1h')), 3_600_000);
  t.is(value(parseDuration(1500)), 1500);
  t.is(value(parseDuration('1500')), 1500);
  t.is(value(parseDuration('-1s')), 'error: must be greater than 0 (got "-1s")');
  t.is(value(parseDuration('1d')), 'error: expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h (got "1d")');
});

test('compound durations, as Go and Prometheus write them', (t) => {
  t.is(value(parseDuration('1m30s')), 90_000);
  t.is(value(parseDuration('1h15m')), 4_500_000);
  t.is(value(parseDuration('2s500ms')), 2500);
  t.is(value(parseDuration('1h0m0.5s')), 3_600_500);
  const hint = 'expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h';
  // Units from the largest down, each once, nothing between the terms.
  t.is(value(parseDuration('30s1m')), `error: ${hint} (got "30s1m")`);
  t.is(value(parseDuration('1s1s')), `error: ${hint} (got "1s1s")`);
  t.is(value(parseDuration('1m 30s')), `error: ${hint} (got "1m 30s")`);
  t.is(value(parseDuration('1m30')), `error: ${hint} (got "1m30")`);
  t.is(value(parseDuration('0m0s')), 'error: must be greater than 0 (got "0m0s")');
});

test('formatDuration writes durations back the way the file does', (t) => {
  t.deepEqual([250, 1000, 1500, 60_000, 90_000, 3_600_000, 1001].map(formatDuration), [
    '250ms',
    '1s',
    '1.5s',
    '1m',
    '90s',
    '1h',
    '1001ms',
  ]);
});

test('sizes', (t) => {
  t.is(value(parseSize(512)), 512);
  t.is(value(parseSize('512')), 512);
  t.is(value(parseSize('16KiB')), 16_384);
  t.is(value(parseSize('1MiB')), 1_048_576);
  t.is(value(parseSize('1GiB')), 1_073_741_824);
  t.is(value(parseSize('10KB')), 10_000);
  t.is(value(parseSize('10MB')), 10_000_000);
  t.is(value(parseSize('1.5KiB')), 1536);
  t.is(value(parseSize('10mb')), 'error: expected a size like 512, 16KiB, 1MiB, 1GiB or 10MB (got "10mb")');
});

test('addresses', (t) => {
  t.deepEqual(value(parseAddress('127.0.0.1:9001')), {
    address: '127.0.0.1:9001',
    host: '127.0.0.1',
    port: 9001,
  });
  t.deepEqual(value(parseAddress('[::1]:8080')), { address: '[::1]:8080', host: '::1', port: 8080 });
  t.deepEqual(value(parseAddress('web.internal:80')), {
    address: 'web.internal:80',
    host: 'web.internal',
    port: 80,
  });
  t.is(value(parseAddress('[::1]')), 'error: expected host:port');
  t.is(value(parseAddress('[nope]:80')), 'error: invalid IPv6 address "nope"');
  t.is(value(parseAddress(':80')), 'error: expected host:port');
  t.is(value(parseAddress('999.1.1.1:80')), 'error: invalid host "999.1.1.1"');
});

test('host names', (t) => {
  t.true(isHostname('localhost'));
  t.true(isHostname('web-1.internal'));
  t.false(isHostname('-web.internal'));
  t.false(isHostname('web..internal'));
  t.false(isHostname(`${'a'.repeat(64)}.test`));
});

test('host patterns are lower-cased', (t) => {
  t.is(value(parseHostPattern('API.Example.Test')), 'api.example.test');
  t.is(value(parseHostPattern('*.Example.test')), '*.example.test');
  t.is(value(parseHostPattern('*')), '*');
  t.is(value(parseHostPattern('*.')), 'error: expected a host name, "*.domain" or "*" (got "*.")');
});

test('IPs and CIDRs', (t) => {
  for (const ok of ['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '::1', 'fd00::/8', '2001:db8::/128']) {
    t.is(value(parseIpOrCidr(ok)), ok);
  }
  t.is(value(parseIpOrCidr('10.0.0.0/')), 'error: prefix length must be between 0 and 32 (got "10.0.0.0/")');
  t.is(
    value(parseIpOrCidr('example.com')),
    'error: expected an IP address or CIDR like 10.0.0.0/8 or fd00::/8 (got "example.com")',
  );
});

test('status ranges', (t) => {
  t.deepEqual(value(parseStatusRange('200-399')), [200, 399]);
  t.deepEqual(value(parseStatusRange([200, 399])), [200, 399]);
  t.deepEqual(value(parseStatusRange(204)), [204, 204]);
  t.is(
    value(parseStatusRange([200])),
    'error: expected a status range like 200-399 or [200, 399] (got a list)',
  );
});

test('closest suggests only near misses', (t) => {
  const keys = ['health', 'servers', 'balance', 'maxIdlePerBackend', 'panic'];
  t.is(closest('helth', keys), 'health');
  t.is(closest('Servers', keys), 'servers');
  t.is(closest('max_idle_per_backend', keys), 'maxIdlePerBackend');
  t.is(closest('weight', keys), undefined);
  t.is(closest('pnc', keys), undefined);
});
