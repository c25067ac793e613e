import test from 'ava';
import { clientConnectionLimit, loweredLimitReport } from '../../../src/proxy/descriptors.ts';

test('a limit lowered to fit the open-file limit is reported with the numbers and what to do', (t) => {
  t.is(clientConnectionLimit(10_000, 10, 1024), 470);
  t.deepEqual(loweredLimitReport(10_000, 470, 10, 1024), {
    level: 'warn',
    message: 'limits.maxConnections lowered to fit the open-file limit',
    meta: {
      configured: 10_000,
      effective: 470,
      nofile: 1024,
      backends: 10,
      fix: 'raise the open-file limit to 20084 (ulimit -n, LimitNOFILE= in a systemd unit, --ulimit nofile= for docker) or lower limits.maxConnections',
    },
  });
});

test('below 16 client connections the report is an error; a limit lowered by a tenth or less is not reported', (t) => {
  t.is(clientConnectionLimit(10_000, 480, 1024), 1);
  t.is(loweredLimitReport(10_000, 1, 480, 1024)?.level, 'error');
  t.is(loweredLimitReport(100, 100, 10, 1024), undefined);
  t.is(clientConnectionLimit(10_000, 3, 20_000), 9965);
  t.is(loweredLimitReport(10_000, 9965, 3, 20_000), undefined, 'lowered by the reserve alone');
  t.is(loweredLimitReport(10_000, 10_000, 10, undefined), undefined);
});
