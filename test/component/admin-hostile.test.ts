// The admin port under hostile input (issue 10): no request ends the process, every malformed
// one gets a 4xx, and state changes need a non-browser caller (and the token when one is set).
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { closedPort } from '../support/node-backend.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';

async function sluiceWithAdmin(extra = ''): Promise<RunningSluice> {
  const port = await closedPort();
  return startProxy(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
logLevel: error
${extra}
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers: [{ address: 127.0.0.1:${port}, name: b1 }]
`);
}

async function send(sluice: RunningSluice, request: string): Promise<{ status: number; text: string }> {
  const result = await rawExchange(sluice.adminAddress?.port ?? 0, request, { idleMs: 300 });
  return { status: statuses(result.text)[0] ?? 0, text: result.text };
}

const malformed = [
  'GET //x:99999/ HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET http://[1.2.3.4]/ HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET http://a:99999/healthz HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET http://[::1/x HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET //evil.example/healthz HTTP/1.1\r\nHost: a\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /backends/%E0%A4%A/b1 HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /backends/web/%ZZ HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /healthz HTTP/1.1\r\n\r\n',
  'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
  'GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST /cache/purge HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  'GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n',
  'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /healthz HTTP/9.9\r\nHost: a\r\n\r\n',
];

test('every malformed admin request gets a 4xx and the admin port keeps answering', async (t) => {
  const sluice = await sluiceWithAdmin();
  t.teardown(() => sluice.stop());
  for (const request of malformed) {
    const { status } = await send(sluice, request);
    t.true((status >= 400 && status < 500) || status === 505, `${JSON.stringify(request)} got ${status}`);
    t.is((await send(sluice, 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')).status, 200);
  }
  // The absolute form still works where it parses.
  t.is((await send(sluice, 'GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: a\r\n\r\n')).status, 200);
});

const drain = (headers: string) =>
  `POST /backends/web/b1/drain HTTP/1.1\r\n${headers}Content-Length: 0\r\n\r\n`;

test('state changes from browsers or through a rebound host name are refused', async (t) => {
  const sluice = await sluiceWithAdmin();
  t.teardown(() => sluice.stop());
  const refused = [
    'Host: 127.0.0.1:9100\r\nOrigin: http://evil.example\r\n',
    'Host: 127.0.0.1:9100\r\nOrigin: null\r\n',
    'Host: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\n',
    'Host: 127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n',
    'Host: evil.example:9100\r\n',
    'Host: rebind.127.0.0.1.nip.io\r\n',
  ];
  for (const headers of refused) t.is((await send(sluice, drain(headers))).status, 403, headers);
  t.false(sluice.pools.get('web')?.backends[0]?.health.state === 'draining');
  for (const host of ['127.0.0.1:9100', 'localhost', '[::1]:9100', 'LOCALHOST.']) {
    t.is((await send(sluice, drain(`Host: ${host}\r\n`))).status, 202, host);
  }
  t.is(sluice.pools.get('web')?.backends[0]?.health.state, 'draining');
  const metrics = await send(sluice, 'GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n');
  t.regex(metrics.text, /sluice_requests_rejected_total\{reason="admin_browser"\} 4/);
  t.regex(metrics.text, /sluice_requests_rejected_total\{reason="admin_host"\} 2/);
});

test('with adminToken, everything but /healthz and /readyz needs the bearer token', async (t) => {
  const token = 'tok-0123456789abcdef';
  const sluice = await sluiceWithAdmin(`adminToken: ${token}`);
  t.teardown(() => sluice.stop());
  t.is((await send(sluice, 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')).status, 200);
  t.is((await send(sluice, 'GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n')).status, 200);
  const status = await send(sluice, 'GET /status HTTP/1.1\r\nHost: a\r\n\r\n');
  t.is(status.status, 401);
  t.regex(status.text, /www-authenticate: Bearer/i);
  t.is(
    (await send(sluice, `GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}x\r\n\r\n`))
      .status,
    401,
  );
  t.is(
    (await send(sluice, `GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\n\r\n`)).status,
    200,
  );
  // The token stands for a deliberate caller, whatever name it used; a browser is still refused.
  t.is(
    (await send(sluice, drain(`Host: sluice.internal\r\nAuthorization: bearer ${token}\r\n`))).status,
    202,
  );
  t.is(
    (await send(sluice, drain(`Host: 127.0.0.1\r\nOrigin: http://x\r\nAuthorization: Bearer ${token}\r\n`)))
      .status,
    403,
  );
  t.is((await send(sluice, drain('Host: 127.0.0.1\r\n'))).status, 401);
});
