// The admin port full of slow clients (16 connections, each trickling a request head): container
// healthchecks and keepalived still get /healthz and /readyz answered, each on a connection that
// then closes; everything else gets the limit's 503.
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { createAdminServer } from '../../src/admin/server.ts';
import { listenOn } from '../../src/proxy/server.ts';
import { tricklingRequests, untilClosed } from '../support/raw-http.ts';

test('with all 16 admin connections mid-request, probes get their real answers and the rest 503', async (t) => {
  let ready = true;
  const shed: string[] = [];
  const admin = createAdminServer({
    pools: () => new Map(),
    ready: () => ready,
    now: () => Date.now(),
    token: () => 'probes-need-no-token',
    onShed: (reason) => shed.push(reason),
  });
  const { port } = (await listenOn(admin, '127.0.0.1', 0)) as AddressInfo;
  const full = await tricklingRequests(port, 16);
  t.teardown(() => {
    full.stop();
    for (const socket of full.sockets) socket.destroy();
    admin.close();
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  for (let i = 0; i < 20; i++) {
    t.is(
      (await untilClosed(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8099\r\n\r\n')).text,
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n',
      `GET /healthz ${i + 1}`,
    );
    t.is(
      (await untilClosed(port, 'HEAD /readyz HTTP/1.1\r\nHost: 127.0.0.1:8099\r\n\r\n')).text,
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 6\r\nconnection: close\r\n\r\n',
      `HEAD /readyz ${i + 1}`,
    );
  }
  ready = false;
  t.is(
    (await untilClosed(port, 'GET /readyz?verbose HTTP/1.1\r\nHost: 127.0.0.1:8099\r\n\r\n')).text,
    'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 14\r\nconnection: close\r\n\r\nshutting down\n',
  );
  t.deepEqual(shed, [], 'no probe was shed');
  t.is(
    (await untilClosed(port, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1:8099\r\n\r\n')).text,
    'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n',
  );
  t.deepEqual(shed, ['admin_max_connections']);
});
