// The Swarm stack: docker-compose.yml (through scripts/swarm-stack.ts) with
// docker-compose.swarm.yml (and the local images of docker-compose.swarm.local.yml) deployed by
// `docker stack deploy` on a single-node swarm made
// for the test (`docker swarm init --advertise-addr 127.0.0.1`, left with `docker swarm leave
// --force` afterwards, whatever happened). One Sluice task (the node's port is bound once) serves
// requests to the three nginx services on its host-mode port.
//
// Leaving a swarm disconnects every container on an attachable network, and docker-compose v1
// makes all its networks attachable: `npm test` runs this file last and alone
// (ava.alone.config.js), and it waits until no such container runs before it makes the swarm.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { swarmStack } from '../../scripts/swarm-stack.ts';
import { freePort } from '../support/node-backend.ts';
import { until } from '../support/wait.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const STACK = 'sluice-swarm-test';
/** The image .ci/run builds from this tree; SLUICE_TEST_IMAGE gives another tag (a machine shared with other work). */
const SLUICE_IMAGE = process.env.SLUICE_TEST_IMAGE || 'sluice-local/sluice:dev';

let env: NodeJS.ProcessEnv = {};
let sluicePort = 0;
let joined = false;

async function docker(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('docker', args, { cwd: ROOT, env, maxBuffer: 16 * 1024 * 1024 });
  return (stdout + stderr).trim();
}

/** Running containers on attachable local networks: leaving a swarm would disconnect them. */
async function disconnectedByLeaving(): Promise<string[]> {
  const names: string[] = [];
  for (const id of (await docker('network', 'ls', '-q', '--filter', 'scope=local')).split('\n')) {
    if (!id) continue;
    const network = JSON.parse(await docker('network', 'inspect', id, '--format', '{{json .}}')) as {
      Attachable: boolean;
      Containers: Record<string, { Name: string }> | null;
    };
    if (network.Attachable) names.push(...Object.values(network.Containers ?? {}).map((c) => c.Name));
  }
  return names;
}

test.before(async (t) => {
  sluicePort = await freePort();
  env = {
    ...process.env,
    SLUICE_IMAGE,
    SLUICE_REPLICAS: '1',
    SLUICE_PORT: String(sluicePort),
    SLUICE_ADMIN_PORT: String(await freePort()),
    PROMETHEUS_PORT: String(await freePort()),
    GRAFANA_PORT: String(await freePort()),
    SLUICE_CONFIG_NAME: `${STACK}_config`,
  };
  // The stand-ins (nginx, node, prometheus) come from .ci/run, and so does Sluice there (then
  // this is a check that it is up to date).
  await run('bash', [path.join(ROOT, 'scripts/build-images.sh'), 'sluice'], {
    cwd: ROOT,
    env: { ...env, SLUICE_LOCAL_IMAGE: SLUICE_IMAGE },
  });
  let running: string[] = [];
  await until(
    'no container that leaving the swarm would disconnect',
    120_000,
    async () => {
      running = await disconnectedByLeaving();
      return running.length === 0 ? true : undefined;
    },
    2000,
  ).catch(() => {
    throw new Error(`these would lose their network when the test leaves the swarm: ${running.join(', ')}`);
  });
  const state = await docker('info', '--format', '{{.Swarm.LocalNodeState}}');
  if (state !== 'inactive')
    t.log(`the engine was already in a swarm (${state}): using it, and leaving it afterwards`);
  else await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
  joined = true;
  const begun = Date.now();
  // As the README says: docker-compose.yml through scripts/swarm-stack.ts, then the overrides.
  const deploying = run(
    'docker',
    [
      'stack',
      'deploy',
      '--resolve-image',
      'never',
      ...['-', 'docker-compose.swarm.yml', 'docker-compose.swarm.local.yml'].flatMap((f) => ['-c', f]),
      STACK,
    ],
    { cwd: ROOT, env },
  );
  deploying.child.stdin?.end(swarmStack(await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8')));
  await deploying;
  t.log(`stack deployed in ${Date.now() - begun} ms`);
});

test.after.always(async (t) => {
  if (!joined) return;
  try {
    await docker('stack', 'rm', STACK);
    await until('the stack gone', 30_000, async () =>
      (await docker('ps', '-aq', '--filter', `label=com.docker.stack.namespace=${STACK}`)) === ''
        ? true
        : undefined,
    );
  } catch (error) {
    t.log(`docker stack rm: ${(error as Error).message}`);
  } finally {
    await docker('swarm', 'leave', '--force').catch((error: Error) => t.log(`swarm leave: ${error.message}`));
  }
});

test.afterEach.always(async (t) => {
  if (t.passed) return;
  try {
    t.log(await docker('stack', 'ps', '--no-trunc', STACK));
    t.log(await docker('service', 'logs', '--tail', '30', `${STACK}_sluice`));
  } catch {}
});

test.serial(
  'the stack serves requests through Sluice on its host-mode port to the three nginx services',
  async (t) => {
    await until('Sluice answers on the node port', 90_000, async () => {
      const response = await fetch(`http://127.0.0.1:${sluicePort}/`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      return response.status === 200 && response.headers.get('x-backend') ? true : undefined;
    });
    const seen = new Set<string>();
    await until(
      'every nginx service answered',
      30_000,
      async () => {
        const response = await fetch(`http://127.0.0.1:${sluicePort}/`, { headers: { connection: 'close' } });
        t.is(response.status, 200);
        t.regex(await response.text(), /<html/i);
        seen.add(response.headers.get('x-backend') ?? 'none');
        return seen.size === 3 ? true : undefined;
      },
      50,
    );
    t.deepEqual([...seen].sort(), ['web-1', 'web-2', 'web-3']);
  },
);

test.serial(
  'the Sluice service: one task, healthy by sluice healthcheck, rolling updates, its config a Swarm config',
  async (t) => {
    const spec = JSON.parse(
      await docker('service', 'inspect', `${STACK}_sluice`, '--format', '{{json .Spec}}'),
    ) as {
      Mode: { Replicated?: { Replicas: number } };
      UpdateConfig: { Parallelism: number; Order: string; FailureAction: string };
      EndpointSpec: { Mode: string; Ports: { TargetPort: number; PublishMode: string }[] };
      TaskTemplate: {
        ContainerSpec: {
          Healthcheck: { Test: string[] };
          Configs: { ConfigName: string; File: { Name: string } }[];
        };
      };
    };
    t.is(spec.Mode.Replicated?.Replicas, 1);
    t.deepEqual(
      [spec.UpdateConfig.Parallelism, spec.UpdateConfig.Order, spec.UpdateConfig.FailureAction],
      [1, 'stop-first', 'rollback'],
    );
    t.is(spec.EndpointSpec.Mode, 'dnsrr');
    t.deepEqual(spec.EndpointSpec.Ports.map((p) => [p.TargetPort, p.PublishMode]).sort(), [
      [8080, 'host'],
      [8099, 'host'],
    ]);
    t.deepEqual(spec.TaskTemplate.ContainerSpec.Healthcheck.Test, [
      'CMD',
      'node',
      '/app/src/cli/main.ts',
      'healthcheck',
    ]);
    t.deepEqual(
      spec.TaskTemplate.ContainerSpec.Configs.map((c) => [c.ConfigName, c.File.Name]),
      [[`${STACK}_config`, '/etc/sluice/swarm/sluice.yaml']],
    );
    // The task's container turns healthy: the probe module answers from inside the image.
    const status = await until(
      'the Sluice task healthy',
      60_000,
      async () => {
        const id = await docker(
          'ps',
          '-q',
          '--filter',
          `label=com.docker.swarm.service.name=${STACK}_sluice`,
        );
        if (!id) return undefined;
        const health = await docker('inspect', '--format', '{{.State.Health.Status}}', id);
        return health === 'healthy' ? health : undefined;
      },
      1000,
    );
    t.is(status, 'healthy');
  },
);
