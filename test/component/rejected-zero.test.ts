// sluice_requests_rejected_total exists at 0 for every known reason on a fresh /metrics, with
// one worker and with two (the supervisor's merged /metrics), so that rate() and increase() see
// the first rejection of each and the dashboard's panel is not empty.
import test from 'ava';
import { startChildSluice } from '../support/child-sluice.ts';
import { parseExposition } from '../support/design-metrics.ts';
import { startNodeBackend } from '../support/node-backend.ts';
import { rawExchange } from '../support/raw-http.ts';

const reasons = [
  'accept_backoff',
  'admin_browser',
  'admin_host',
  'admin_idle_evicted',
  'admin_max_connections',
  'admin_unauthorized',
  'bad_path',
  'bad_request',
  'bad_request_body',
  'body_too_large',
  'client_body_timeout',
  'client_not_reading',
  'client_timeout',
  'connect',
  'header_too_large',
  'idle_evicted',
  'loop',
  'max_connections',
  'no_pool',
  'no_route',
  'not_implemented',
  'uri_too_long',
  'version_not_supported',
];

for (const workers of ['1', '2'])
  test(`with ${workers} worker(s), every known rejection reason is at 0 from the start`, async (t) => {
    const backend = await startNodeBackend((_request, response) => response.end('hi'));
    const sluice = await startChildSluice(
      `listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
pools:
  web:
    servers: [127.0.0.1:${backend.port}]
`,
      workers,
    );
    try {
      const result = await rawExchange(
        sluice.adminPort ?? 0,
        'GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n',
      );
      const exposition = parseExposition(result.text.slice(result.text.indexOf('\r\n\r\n') + 4));
      const rejected = exposition.samples.filter(
        (sample) => sample.name === 'sluice_requests_rejected_total',
      );
      t.deepEqual(
        rejected
          .map((sample) => sample.labels)
          .sort((a, b) => String(a.reason).localeCompare(String(b.reason))),
        reasons.map((reason) => ({ reason })),
      );
      t.true(rejected.every((sample) => sample.value === 0));
    } finally {
      await sluice.stop();
      await backend.close();
    }
  });
