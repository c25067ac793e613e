// The compose stack as a whole, on the local images (docker-compose.local.yml, no Grafana):
// three nginx replicas behind Sluice, and Prometheus scraping Sluice's /metrics. Also runs
// every PromQL expression of the Grafana dashboard and the alert rules against that real
// Prometheus, since Grafana itself cannot run here.
//
// The images come from scripts/build-images.sh (it keeps what is up to date and rebuilds
// sluice-local/sluice:dev from the working tree when the sources changed). Ports are free ones
// picked at start; the compose project is `sluice-test`, removed with its volumes afterwards.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { composeProject } from '../support/compose.ts';
import { freePort } from '../support/node-backend.ts';
import { until } from '../support/wait.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const PROJECT = 'sluice-test';

let env: NodeJS.ProcessEnv = {};
let sluicePort = 0;
let adminPort = 0;
let prometheusPort = 0;
let started = false;

const compose = composeProject(PROJECT, ['docker-compose.yml', 'docker-compose.local.yml'], () => env);

interface PromResponse<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

async function prometheus<T>(apiPath: string): Promise<PromResponse<T>> {
  const response = await fetch(`http://127.0.0.1:${prometheusPort}${apiPath}`);
  return (await response.json()) as PromResponse<T>;
}

type Vector = { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };

async function query(expr: string): Promise<PromResponse<Vector>> {
  return prometheus<Vector>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
}

test.before(async (t) => {
  const begun = Date.now();
  // The ports must all differ: take them together.
  [sluicePort, adminPort, prometheusPort] = await Promise.all([freePort(), freePort(), freePort()]);
  env = {
    ...process.env,
    SLUICE_PORT: String(sluicePort),
    SLUICE_ADMIN_PORT: String(adminPort),
    PROMETHEUS_PORT: String(prometheusPort),
    GRAFANA_PORT: String(await freePort()),
  };
  await run(
    'bash',
    [path.join(ROOT, 'scripts/build-images.sh'), 'nginx', 'node', 'node-build', 'prometheus', 'sluice'],
    {
      cwd: ROOT,
      env,
    },
  );
  t.log(`images ready in ${Date.now() - begun} ms`);
});

test.after.always(async (t) => {
  if (!started) return;
  if (process.env.SLUICE_TEST_KEEP_STACK) return;
  try {
    await compose('down', '-v', '--remove-orphans', '--timeout', '5');
  } catch (error) {
    t.log(`docker-compose down failed: ${(error as Error).message}`);
  }
});

test.afterEach.always(async (t) => {
  if (t.passed) return;
  try {
    t.log(await compose('logs', '--no-color', '--tail', '40'));
  } catch {}
});

// The first test, not the before hook: `up` waits for each level of health in turn, and AVA's
// timeout (no result for 120 s) must not count an image build and that wait together.
test.serial(
  'docker-compose up: every service passes its healthcheck (nginx -t, sluice healthcheck, promtool)',
  async (t) => {
    const begun = Date.now();
    // A project left over by an interrupted run would hold the names.
    await compose('down', '-v', '--remove-orphans').catch(() => {});
    started = true;
    await compose('up', '-d');
    t.log(`stack up in ${Date.now() - begun} ms`);
    const ids = (await compose('ps', '-q')).split('\n').filter((line) => /^[0-9a-f]{12,}$/.test(line));
    t.is(ids.length, 5);
    const states = await until('all healthy', 60_000, async () => {
      const inspected = await run('docker', [
        'inspect',
        '--format',
        '{{.Name}} {{.State.Health.Status}}',
        ...ids,
      ]);
      const lines = inspected.stdout.trim().split('\n').sort();
      return lines.every((line) => line.endsWith(' healthy')) ? lines : undefined;
    });
    t.deepEqual(
      states.map((line) => line.replace(/^\/sluice-test_(.+)_1 healthy$/, '$1')),
      ['prometheus', 'sluice', 'web-1', 'web-2', 'web-3'],
    );
  },
);

test.serial('requests through Sluice on the published port reach all three nginx replicas', async (t) => {
  await until('Sluice answers', 30_000, async () => {
    const response = await fetch(`http://127.0.0.1:${sluicePort}/`);
    await response.arrayBuffer();
    return response.status === 200 ? true : undefined;
  });
  const seen: string[] = [];
  for (let i = 0; i < 9; i++) {
    const response = await fetch(`http://127.0.0.1:${sluicePort}/`, { headers: { connection: 'close' } });
    t.is(response.status, 200);
    t.regex(await response.text(), /<html/i);
    seen.push(response.headers.get('x-backend') ?? 'none');
  }
  t.log(`X-Backend over 9 requests: ${seen.join(' ')}`);
  t.deepEqual([...new Set(seen)].sort(), ['web-1', 'web-2', 'web-3']);
});

test.serial('the admin port is published on loopback and serves /metrics and /healthz', async (t) => {
  const healthz = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
  t.is(healthz.status, 200);
  await healthz.arrayBuffer();
  const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  t.is(metrics.status, 200);
  const text = await metrics.text();
  t.regex(text, /^sluice_backend_info\{pool="web",backend="web-1\/[0-9.]+",address="[0-9.]+:80"\} 1$/m);
  // The image has no .git: the revision came in as a build argument (scripts/build-images.sh).
  const revision = (await run('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT })).stdout.trim();
  t.regex(
    text,
    new RegExp(`^sluice_build_info\\{version="[^"]+",revision="${revision}",node="v24\\.[0-9.]+"\\} 1$`, 'm'),
  );
});

test.serial('Prometheus scrapes Sluice: the target is up within 30 s', async (t) => {
  type Targets = { activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] };
  const target = await until('sluice target up', 30_000, async () => {
    const targets = await prometheus<Targets>('/api/v1/targets');
    return targets.data.activeTargets.find((x) => x.labels.job === 'sluice' && x.health === 'up');
  });
  t.regex(target.labels.instance ?? '', /:8099$/);
  // The three backends, healthy, as Prometheus stored them.
  const up = await until('sluice_backend_up in Prometheus', 15_000, async () => {
    const result = await query('sluice_backend_up');
    return result.data.result.length === 3 ? result : undefined;
  });
  t.deepEqual(up.data.result.map((r) => r.metric.backend?.split('/')[0]).sort(), ['web-1', 'web-2', 'web-3']);
  t.true(up.data.result.every((r) => r.value[1] === '1'));
});

test.serial(
  "every PromQL expression of the dashboard and the alert rules runs on the stack's Prometheus",
  async (t) => {
    const dashboard = JSON.parse(
      await readFile(path.join(ROOT, 'grafana/dashboards/sluice.json'), 'utf8'),
    ) as {
      panels: { title: string; targets?: { expr: string }[] }[];
      templating: { list: { name: string; query: unknown }[] };
    };
    const rules = parseYaml(await readFile(path.join(ROOT, 'prometheus/rules/sluice.yml'), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    // Grafana's variables as "All" would expand them.
    const expand = (expr: string) =>
      expr
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$job', '.*')
        .replaceAll('$instance', '.*')
        .replaceAll('$pool', '.*')
        .replaceAll('$backend', '.*');
    const exprs: [string, string][] = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((x): [string, string] => [p.title, x.expr])),
      ...rules.groups.flatMap((g) => g.rules.map((r): [string, string] => [r.alert, r.expr])),
    ];
    t.true(exprs.length > 20);
    for (const [where, expr] of exprs) {
      const result = await query(expand(expr));
      t.is(result.status, 'success', `${where}: ${result.error ?? ''}\n${expr}`);
    }
    // The variables' queries find what Sluice exports.
    const series = await prometheus<Record<string, string>[]>(
      `/api/v1/series?match[]=${encodeURIComponent('sluice_backend_info')}`,
    );
    t.is(series.data.length, 3);
    // The panels that read gauges Sluice sets at start have data at once.
    for (const expr of [
      'max by (pool, backend) (sluice_backend_up)',
      'max by (pool) (sluice_pool_panic)',
      'sum by (side) (sluice_open_connections)',
      'process_resident_memory_bytes{job="sluice"}',
      'nodejs_eventloop_lag_p99_seconds{job="sluice"}',
    ]) {
      const result = await query(expr);
      t.true(result.data.result.length > 0, `no data for ${expr}`);
    }
    // No alert fires on a healthy stack.
    type Alerts = { alerts: { labels: Record<string, string>; state: string }[] };
    const alerts = await prometheus<Alerts>('/api/v1/alerts');
    t.deepEqual(
      alerts.data.alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname),
      [],
    );
  },
);
