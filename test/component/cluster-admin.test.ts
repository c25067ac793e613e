// The admin port as a supervisor serves it: load summed over workers, the workers in /status,
// the rolling restart endpoint; and what a single process says to that endpoint.
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { type ClusterAdmin, createAdminServer } from '../../src/admin/server.ts';
import { listenOn } from '../../src/proxy/server.ts';
import { httpRequest } from '../support/http.ts';
import { closedPort } from '../support/node-backend.ts';
import { poolYaml, startProxy } from '../support/sluice.ts';

async function withCluster(cluster: ClusterAdmin, use: (port: number) => Promise<void>): Promise<void> {
  const ports = [await closedPort(), await closedPort()];
  const sluice = await startProxy(poolYaml(ports));
  const admin = createAdminServer({
    pools: () => sluice.pools,
    ready: () => true,
    now: () => Date.now(),
    cluster,
  });
  const { port } = (await listenOn(admin, '127.0.0.1', 0)) as AddressInfo;
  try {
    await use(port);
  } finally {
    admin.close();
    await sluice.stop();
  }
}

const json = async (port: number, path: string, method = 'GET') => {
  const reply = await httpRequest({ port, path, method, host: '127.0.0.1' });
  return { status: reply.status, body: JSON.parse(reply.body.toString()) };
};

test('a supervisor shows its workers and the load summed over them', async (t) => {
  let restarts = 0;
  const cluster: ClusterAdmin = {
    status: async () => ({
      load: { backend: () => ({ inFlight: 3, open: 5, idle: 2 }), panic: () => true },
      more: { workers: [{ worker: 1, pid: 42, requests: 7 }], spare: { pid: 43, booted: true } },
    }),
    restart: () =>
      restarts++ === 0 ? { started: true, message: 'go' } : { started: false, message: 'busy' },
  };
  await withCluster(cluster, async (port) => {
    const status = await json(port, '/status');
    t.deepEqual(status.body.workers, [{ worker: 1, pid: 42, requests: 7 }]);
    t.deepEqual(status.body.spare, { pid: 43, booted: true });
    const pool = status.body.pools[0];
    t.true(pool.panic);
    t.deepEqual(pool.backends[0].connections, { open: 5, idle: 2 });
    t.is(pool.backends[0].inFlight, 3);
    const name = encodeURIComponent(pool.backends[0].name);
    const drained = await json(port, `/backends/web/${name}/drain`, 'POST');
    t.is(drained.status, 202);
    t.false(drained.body.drained, 'in flight in a worker: not drained yet');
    t.deepEqual(await json(port, '/workers/restart', 'POST'), {
      status: 202,
      body: { started: true, message: 'go' },
    });
    t.deepEqual(await json(port, '/workers/restart', 'POST'), {
      status: 409,
      body: { started: false, message: 'busy' },
    });
    t.is((await httpRequest({ port, path: '/workers/restart' })).status, 405);
  });
});

test('one process has no workers to restart', async (t) => {
  const sluice = await startProxy(
    poolYaml([await closedPort()]).replace('admin: false', 'admin: 127.0.0.1:0'),
  );
  try {
    const reply = await httpRequest({
      port: sluice.adminAddress?.port ?? 0,
      path: '/workers/restart',
      method: 'POST',
      host: '127.0.0.1',
    });
    t.is(reply.status, 404);
    t.is(reply.body.toString(), 'not a cluster (workers: 1)\n');
    const status = JSON.parse(
      (await httpRequest({ port: sluice.adminAddress?.port ?? 0, path: '/status' })).body.toString(),
    );
    t.false('workers' in status);
  } finally {
    await sluice.stop();
  }
});
