// The files of the monitoring stack, checked without starting it: Prometheus' config and alert
// rules with promtool (Debian package `prometheus`), the Grafana dashboard and provisioning, the
// compose files and Sluice's config for the stack. The running stack is compose.test.ts.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';
import { knownSeriesNames } from '../support/design-metrics.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const at = (file: string) => path.join(ROOT, file);
const known = knownSeriesNames();
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template.
const DATASOURCE = '${datasource}';

/** Names of metrics a PromQL expression reads (Sluice's and the Node.js/process ones). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:sluice|nodejs|process)_[a-z0-9_]+)\b/g)].map((m) => m[1] as string);
}

async function promtool(t: import('ava').ExecutionContext, ...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: ROOT });
    return stdout + stderr;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT')
      t.fail('promtool is missing: apt-get install -y prometheus (.ci/run installs it)');
    else t.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    return '';
  }
}

test('promtool check config: prometheus.yml and the rule file it names', async (t) => {
  const out = await promtool(t, 'check', 'config', 'prometheus.yml');
  t.regex(out, /SUCCESS: 1 rule files found/);
  t.regex(out, /Checking prometheus\/rules\/sluice\.yml\s+SUCCESS: 11 rules found/);
});

test('promtool test rules: every alert firing and not firing', async (t) => {
  const out = await promtool(t, 'test', 'rules', 'prometheus/rules/sluice.test.yml');
  t.regex(out, /SUCCESS/);
});

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

test('the alerts named in the issue exist, each with a severity, reading metrics Sluice exports', async (t) => {
  const rules = parseYaml(await readFile(at('prometheus/rules/sluice.yml'), 'utf8')) as {
    groups: { rules: Rule[] }[];
  };
  const all = rules.groups.flatMap((g) => g.rules);
  t.deepEqual(all.map((r) => r.alert).sort(), [
    'SluiceBackendDown',
    'SluiceBackendFlapping',
    'SluiceConfigReloadFailing',
    'SluiceDescriptorsNearLimit',
    'SluiceEventLoopLag',
    'SluiceHighErrorRatio',
    'SluiceNoHealthyBackend',
    'SluiceRetryBudgetExhausted',
    'SluiceSlowBackendResponses',
    'SluiceTargetDown',
    'SluiceTargetMissing',
  ]);
  // The target alerts come first: every other one is blind without a scrape.
  t.deepEqual(
    all.slice(0, 2).map((r) => r.expr),
    ['up{job="sluice"} == 0', 'absent(up{job="sluice"})'],
  );
  // Latency pages on the backends' time to first byte, not on whole requests (long downloads).
  const latency = all.find((r) => r.alert === 'SluiceSlowBackendResponses');
  t.regex(latency?.expr ?? '', /sluice_backend_response_duration_seconds_bucket/);
  t.regex(all.find((r) => r.alert === 'SluiceHighErrorRatio')?.expr ?? '', /sum by \(job, pool\)/);
  for (const rule of all) {
    t.true(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity`);
    const names = metricNames(rule.expr);
    t.true(names.length > 0 || /\bup\{job="sluice"\}/.test(rule.expr), `${rule.alert} reads no metric`);
    for (const name of names) t.true(known.has(name), `${rule.alert}: unknown metric ${name}`);
  }
  // Every alert is exercised by the promtool tests.
  const tests = await readFile(at('prometheus/rules/sluice.test.yml'), 'utf8');
  for (const rule of all) t.true(tests.includes(`alertname: ${rule.alert}`), `${rule.alert} is not tested`);
});

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

test('every rule links a runbook section that exists, with what it means, what to check, what to do', async (t) => {
  const rules = parseYaml(await readFile(at('prometheus/rules/sluice.yml'), 'utf8')) as {
    groups: { rules: Rule[] }[];
  };
  const runbook = await readFile(at('docs/runbook.md'), 'utf8');
  const sections = new Map<string, string>();
  for (const part of runbook.split(/^## /m).slice(1)) {
    const [heading = '', ...body] = part.split('\n');
    sections.set(slug(heading), body.join('\n'));
  }
  for (const rule of rules.groups.flatMap((g) => g.rules)) {
    const url = rule.annotations?.runbook_url ?? '';
    const anchor = /^docs\/runbook\.md#([a-z0-9-]+)$/.exec(url)?.[1];
    t.truthy(anchor, `${rule.alert}: runbook_url ${url}`);
    const section = sections.get(anchor ?? '');
    t.truthy(section, `${rule.alert}: no section #${anchor} in docs/runbook.md`);
    for (const part of ['What it means', 'What to check', 'What to do'])
      t.true(section?.includes(`**${part}**`), `${rule.alert}: "${part}" in its runbook`);
  }
});

interface Target {
  expr: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
  fieldConfig?: {
    defaults: {
      thresholds?: { steps: { value: number | null }[] };
      custom?: { thresholdsStyle?: { mode: string } };
    };
  };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  links: { title: string; url: string }[];
  annotations: { list: { name: string; expr?: string; builtIn?: number }[] };
  templating: {
    list: { name: string; type: string; query: unknown; datasource?: { uid?: string } }[];
  };
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(at('grafana/dashboards/sluice.json'), 'utf8')) as Dashboard;
}

test('the dashboard is Grafana 10+ JSON with datasource, job, instance, pool and backend variables', async (t) => {
  const d = await dashboard();
  t.is(d.schemaVersion, 39);
  t.is(d.uid, 'sluice');
  const vars = new Map(d.templating.list.map((v) => [v.name, v]));
  t.is(vars.get('datasource')?.type, 'datasource');
  t.is(vars.get('datasource')?.query, 'prometheus');
  t.deepEqual(
    d.templating.list.map((v) => v.name),
    ['datasource', 'job', 'instance', 'pool', 'backend'],
  );
  for (const name of ['job', 'instance', 'pool', 'backend']) {
    const v = vars.get(name);
    t.is(v?.type, 'query', name);
    t.is(v?.datasource?.uid, DATASOURCE, name);
    const query = JSON.stringify(v?.query);
    t.regex(query, /label_values\(sluice_[a-z_]+/, name);
  }
  const ids = d.panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of d.panels) t.true(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
});

test('every panel uses the datasource variable and queries a metric of the design', async (t) => {
  const d = await dashboard();
  const panels = d.panels.filter((p) => p.type !== 'row');
  t.true(panels.length >= 12);
  for (const p of panels) {
    t.is(p.datasource?.uid, DATASOURCE, `${p.title}: panel datasource`);
    const targets = p.targets ?? [];
    t.true(targets.length > 0, `${p.title}: no target`);
    const names = targets.flatMap((target) => {
      t.is(target.datasource?.uid, DATASOURCE, `${p.title} ${target.refId}: target datasource`);
      return metricNames(target.expr);
    });
    t.true(names.length > 0, `${p.title}: no metric named`);
    for (const name of names) t.true(known.has(name), `${p.title}: unknown metric ${name}`);
    t.true(
      targets.some((target) => target.expr.includes('$instance') && target.expr.includes('job=~"$job"')),
      `${p.title}: filters by $job and $instance`,
    );
  }
});

test('the dashboard has the panels the issue asks for', async (t) => {
  const d = await dashboard();
  const uses = (type: string | undefined, pattern: RegExp) =>
    d.panels.some(
      (p) => (type === undefined || p.type === type) && p.targets?.some((x) => pattern.test(x.expr)),
    );
  t.true(uses(undefined, /rate\(sluice_http_requests_total\{/), 'request rate');
  t.true(uses(undefined, /code=~"5\.\."/), 'error ratio');
  for (const q of ['0.5', '0.95', '0.99']) {
    t.true(
      uses(
        undefined,
        new RegExp(
          `histogram_quantile\\(${q.replace('.', '\\.')}, .*sluice_http_request_duration_seconds_bucket`,
        ),
      ),
      `p${Number(q) * 100}`,
    );
  }
  t.true(
    uses(undefined, /sum by \(pool, backend\) \(rate\(sluice_http_requests_total/),
    'requests by backend',
  );
  t.true(uses('state-timeline', /sluice_backend_up/), 'backend up/down as a state timeline');
  t.true(uses(undefined, /sluice_health_checks_total\{[^}]*result!="success"/), 'health-check failures');
  // Retries (a rate) and ejections (an increase) in panels of their own.
  const panelOf = (title: string) => d.panels.find((p) => p.title === title);
  t.regex(
    panelOf('Retries')
      ?.targets?.map((x) => x.expr)
      .join() ?? '',
    /^[^,]*rate\(sluice_retries_total/,
  );
  t.is(panelOf('Retries')?.targets?.length, 1);
  t.regex(panelOf('Ejections')?.targets?.[0]?.expr ?? '', /increase\(sluice_backend_ejections_total/);
  t.is(panelOf('Ejections')?.targets?.length, 1);
  t.true(uses(undefined, /sluice_http_requests_in_flight/), 'in-flight');
  t.true(uses(undefined, /sluice_cache_requests_total\{[^}]*result=~"hit/), 'cache hit ratio');
  t.true(uses(undefined, /nodejs_eventloop_lag/), 'event-loop lag');
  t.true(uses(undefined, /process_resident_memory_bytes/), 'memory');
});

test('the top row: requests/s, error %, p99, backends up / total, CPU, RSS, build, as stats', async (t) => {
  const d = await dashboard();
  const top = d.panels.filter((p) => p.type !== 'row' && p.gridPos.y === 1);
  t.deepEqual(
    top.map((p) => [p.type, p.title]),
    [
      ['stat', 'Requests/s'],
      ['stat', 'Error %'],
      ['stat', 'p99'],
      ['stat', 'Backends up / total'],
      ['stat', 'CPU'],
      ['stat', 'RSS'],
      ['stat', 'Build'],
    ],
  );
  t.is(
    top.reduce((sum, p) => sum + p.gridPos.w, 0),
    24,
    'one full row',
  );
  const exprs = (title: string) => top.find((p) => p.title === title)?.targets?.map((x) => x.expr) ?? [];
  t.regex(exprs('Backends up / total').join('\n'), /sum\(sluice_backend_up.*\n.*count\(sluice_backend_up/);
  t.regex(exprs('Build')[0] ?? '', /sluice_build_info/);
  t.regex(exprs('CPU')[0] ?? '', /process_cpu_seconds_total/);
  t.regex(exprs('RSS')[0] ?? '', /process_resident_memory_bytes/);
});

test('threshold lines at the alert levels: error ratio 5%, p99 500 ms, event-loop lag 100 ms', async (t) => {
  const d = await dashboard();
  const rules = parseYaml(await readFile(at('prometheus/rules/sluice.yml'), 'utf8')) as {
    groups: { rules: Rule[] }[];
  };
  const level = (alert: string) =>
    Number(
      /> ([0-9.]+)\s*$/m.exec(
        rules.groups.flatMap((g) => g.rules).find((r) => r.alert === alert)?.expr ?? '',
      )?.[1],
    );
  for (const [title, alert] of [
    ['Error ratio (5xx)', 'SluiceHighErrorRatio'],
    ['Latency p50 / p95 / p99', 'SluiceSlowBackendResponses'],
    ['Backend time to first byte (p95 / p99)', 'SluiceSlowBackendResponses'],
    ['Event-loop lag', 'SluiceEventLoopLag'],
  ] as const) {
    const defaults = d.panels.find((p) => p.title === title)?.fieldConfig?.defaults;
    t.is(defaults?.custom?.thresholdsStyle?.mode, 'dashed', `${title}: threshold drawn`);
    t.is(defaults?.thresholds?.steps.at(-1)?.value, level(alert), `${title}: at the ${alert} level`);
  }
});

test('panels for bytes, backend states, health-check duration, transitions, connections, the new metrics', async (t) => {
  const d = await dashboard();
  const reads = (pattern: RegExp) => d.panels.some((p) => p.targets?.some((x) => pattern.test(x.expr)));
  for (const pattern of [
    /sluice_http_request_bytes_total/,
    /sluice_http_response_bytes_total/,
    /sum by \(state\) \(sluice_backend_state\{/,
    /sluice_health_check_duration_seconds_bucket/,
    /increase\(sluice_backend_state_transitions_total/,
    /sluice_backend_open_connections/,
    /sluice_backend_idle_connections/,
    /sluice_backend_connection_attempts_total/,
    /sluice_backend_connection_reuses_total/,
    /sluice_backend_effective_weight/,
    /sluice_backend_last_state_change_timestamp_seconds/,
    /sluice_retry_budget_exhausted_total/,
    /sluice_cache_objects/,
    /sluice_cache_evictions_total/,
    /sluice_cache_max_bytes/,
    /sluice_config_reloads_total/,
  ])
    t.true(reads(pattern), String(pattern));
});

test('links to the alert rules, the runbook and the README; annotations for config reloads', async (t) => {
  const d = await dashboard();
  t.deepEqual(
    d.links.map((l) => [l.title, l.url]),
    [
      ['Alert rules', '/alerting/list?search=Sluice'],
      ['Rules file', '/public/sluice/rules/sluice.yml'],
      ['Runbook', '/public/sluice/docs/runbook.md'],
      ['README', '/public/sluice/README.md'],
    ],
  );
  // The compose stack's Grafana serves those files there.
  const compose = await readFile(at('docker-compose.yml'), 'utf8');
  t.true(compose.includes('./prometheus/rules:/usr/share/grafana/public/sluice/rules:ro'));
  t.true(compose.includes('./docs:/usr/share/grafana/public/sluice/docs:ro'));
  t.true(compose.includes('./README.md:/usr/share/grafana/public/sluice/README.md:ro'));
  const annotations = d.annotations.list.filter((a) => !a.builtIn);
  t.deepEqual(
    annotations.map((a) => a.name),
    ['Config reloads', 'Failed config reloads'],
  );
  t.regex(annotations[0]?.expr ?? '', /changes\(sluice_config_last_reload_success_timestamp_seconds/);
  t.regex(annotations[1]?.expr ?? '', /sluice_config_reloads_total\{[^}]*result="failure"/);
});

test('Grafana provisioning points at the compose Prometheus and the mounted dashboards', async (t) => {
  const ds = parseYaml(await readFile(at('grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
    datasources: { type: string; url: string; uid: string }[];
  };
  t.is(ds.datasources[0]?.type, 'prometheus');
  t.is(ds.datasources[0]?.url, 'http://prometheus:9090');
  const boards = parseYaml(await readFile(at('grafana/provisioning/dashboards/sluice.yml'), 'utf8')) as {
    providers: { options: { path: string } }[];
  };
  const compose = await readFile(at('docker-compose.yml'), 'utf8');
  const dashboardsPath = boards.providers[0]?.options.path ?? '';
  t.true(
    compose.includes(`./grafana/dashboards:${dashboardsPath}:ro`),
    'the provider reads the mounted folder',
  );
  t.true(compose.includes('GF_AUTH_ANONYMOUS_ENABLED: "true"'));
  t.true(compose.includes('GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer'));
});

test("the stack's Sluice config is valid", (t) => {
  const config = loadConfigFile(at('deploy/sluice.yaml'));
  t.deepEqual(config.admin, { host: '0.0.0.0', port: 8099 });
  t.deepEqual(
    config.pools[0]?.servers.map((s) => s.name),
    ['web-1', 'web-2', 'web-3'],
  );
});

interface ComposeService {
  image?: string;
  profiles?: string[];
  build?: { args?: Record<string, string> };
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  logging?: { driver: string; options: Record<string, string> };
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  mem_limit?: string | number;
  cpus?: number | string;
  ports?: (string | { host_ip?: string; published: number | string; target: number })[];
  environment?: Record<string, string>;
}

interface ComposeConfig {
  services: Record<string, ComposeService>;
}

async function composeConfig(t: import('ava').ExecutionContext, files: string[]): Promise<ComposeConfig> {
  const args = [...files.flatMap((f) => ['-f', f]), 'config'];
  try {
    // Without the environment's image overrides (.ci/run sets NGINX_IMAGE): the files' defaults.
    const env = { ...process.env };
    for (const name of ['NGINX_IMAGE', 'PROMETHEUS_IMAGE', 'GRAFANA_IMAGE', 'SLUICE_IMAGE', 'NODE_IMAGE'])
      delete env[name];
    delete env.NODE_BUILD_IMAGE;
    for (const name of ['GRAFANA_ADMIN_PASSWORD', 'PROMETHEUS_BIND', 'GRAFANA_BIND']) delete env[name];
    const { stdout } = await run('docker-compose', args, { cwd: ROOT, env });
    return parseYaml(stdout) as ComposeConfig;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') t.fail('docker-compose is missing: apt-get install -y docker-compose');
    else t.fail(`docker-compose ${args.join(' ')}: ${e.stderr ?? e.message}`);
    return { services: {} };
  }
}

test('docker-compose.yml names official images; the local override swaps in sluice-local ones', async (t) => {
  const base = await composeConfig(t, ['docker-compose.yml']);
  t.deepEqual(Object.keys(base.services).sort(), [
    'grafana',
    'prometheus',
    'sluice',
    'web-1',
    'web-2',
    'web-3',
  ]);
  t.is(base.services['web-1']?.image, 'nginx:1.27-alpine');
  t.is(base.services.prometheus?.image, 'prom/prometheus:v2.42.0');
  t.regex(base.services.grafana?.image ?? '', /^grafana\/grafana:/);
  t.is(base.services.sluice?.build?.args?.NODE_IMAGE, 'node:24-alpine');
  t.is(base.services.grafana?.profiles, undefined);

  const local = await composeConfig(t, ['docker-compose.yml', 'docker-compose.local.yml']);
  for (const name of ['web-1', 'web-2', 'web-3'])
    t.is(local.services[name]?.image, 'sluice-local/nginx:1.22');
  t.is(local.services.prometheus?.image, 'sluice-local/prometheus:2.42');
  t.is(local.services.sluice?.image, 'sluice-local/sluice:dev');
  t.is(local.services.sluice?.build?.args?.NODE_IMAGE, 'sluice-local/node:24');
  t.is(local.services.sluice?.build?.args?.NODE_BUILD_IMAGE, 'sluice-local/node-build:24');
  // Grafana is in no registry reachable here: only `--profile grafana` would start it.
  t.deepEqual(local.services.grafana?.profiles, ['grafana']);
});

test('the compose stack: healthchecks of the programs themselves, start by health, hardened, rotated logs', async (t) => {
  const text = await readFile(at('docker-compose.yml'), 'utf8');
  t.notRegex(text, /^version:/m, 'no obsolete version key');
  t.notRegex(await readFile(at('docker-compose.local.yml'), 'utf8'), /^version:/m);
  const { services } = await composeConfig(t, ['docker-compose.yml']);
  const healthchecks = Object.fromEntries(
    Object.entries(services).map(([name, service]) => [name, service.healthcheck?.test.slice(0, 3)]),
  );
  t.deepEqual(healthchecks, {
    'web-1': ['CMD', 'nginx', '-t'],
    'web-2': ['CMD', 'nginx', '-t'],
    'web-3': ['CMD', 'nginx', '-t'],
    sluice: ['CMD', 'node', '/app/src/cli/main.ts'],
    prometheus: ['CMD', 'promtool', 'query'],
    grafana: ['CMD', 'wget', '-q'],
  });
  t.is(services.sluice?.healthcheck?.test.at(-1), 'healthcheck');
  t.regex(services.grafana?.healthcheck?.test.at(-1) ?? '', /:3000\/api\/health$/);
  const healthy = (...names: string[]) =>
    Object.fromEntries(names.map((name) => [name, { condition: 'service_healthy' }]));
  t.deepEqual(services.sluice?.depends_on, healthy('web-1', 'web-2', 'web-3'));
  t.deepEqual(services.prometheus?.depends_on, healthy('sluice'));
  t.deepEqual(services.grafana?.depends_on, healthy('prometheus'));
  for (const [name, service] of Object.entries(services)) {
    t.deepEqual(
      service.logging,
      { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } },
      name,
    );
    t.true(service.read_only, `${name}: read_only`);
    t.deepEqual(service.cap_drop, ['ALL'], name);
    t.deepEqual(service.security_opt, ['no-new-privileges:true'], name);
    t.truthy(service.mem_limit, `${name}: memory limit`);
    t.true(Number(service.cpus) > 0, `${name}: CPU limit`);
  }
  // Prometheus and Grafana on loopback; Sluice's admin port too; the proxy on every interface.
  // `host_ip:target` whichever way the Compose version renders a port (v1: "127.0.0.1:9090:9090/tcp").
  const hostIps = (name: string) =>
    (services[name]?.ports ?? []).map((p) => {
      if (typeof p !== 'string') return `${p.host_ip ?? ''}:${p.target}`;
      const parts = p.replace(/\/tcp$/, '').split(':');
      return `${parts.length === 3 ? parts[0] : ''}:${parts.at(-1)}`;
    });
  t.deepEqual(hostIps('prometheus'), ['127.0.0.1:9090']);
  t.deepEqual(hostIps('grafana'), ['127.0.0.1:3000']);
  t.deepEqual(hostIps('sluice').sort(), ['127.0.0.1:8099', ':8080']);
  t.is(
    services.grafana?.environment?.GF_SECURITY_ADMIN_PASSWORD,
    'admin',
    'default from GRAFANA_ADMIN_PASSWORD',
  );
});

test('the image: OCI labels, the revision passed in, `sluice healthcheck` as HEALTHCHECK', async (t) => {
  const dockerfile = await readFile(at('Dockerfile'), 'utf8');
  for (const label of ['title', 'description', 'version', 'revision', 'licenses'])
    t.regex(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.${label}=`), label);
  t.regex(dockerfile, /^ARG SLUICE_REVISION=unknown$/m);
  t.regex(dockerfile, /SLUICE_REVISION=\$\{SLUICE_REVISION\}/);
  t.regex(dockerfile, /^ {2}CMD \["node", "\/app\/src\/cli\/main\.ts", "healthcheck"\]$/m);
  t.regex(dockerfile, /^EXPOSE 8080 8099$/m);
  t.notRegex(dockerfile, /node", "-e"/);
});
