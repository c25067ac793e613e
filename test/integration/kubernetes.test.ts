// deploy/kubernetes/, checked offline (no cluster can run here): every object against the
// Kubernetes API's JSON schemas (npm `kubernetes-models`, and its Prometheus Operator package for
// the ServiceMonitor), no field the API does not know (the field lists of npm
// `@kubernetes/client-node`'s models: the API server would drop an unknown field silently), and
// what the issue asks of them, including the config in the ConfigMap as Sluice itself loads it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as client from '@kubernetes/client-node';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import test from 'ava';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';

const DIR = path.resolve(import.meta.dirname, '../../deploy/kubernetes');
const FILES = [
  'configmap.yaml',
  'deployment.yaml',
  'service.yaml',
  'poddisruptionbudget.yaml',
  'servicemonitor.yaml',
];

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
} & Record<string, unknown>;

/** The schema validator and the client's model name of every kind shipped. */
const KINDS: Record<string, { validate: (doc: Manifest) => void; model?: string }> = {
  'v1/ConfigMap': { validate: (d) => new ConfigMap(d as never).validate(), model: 'V1ConfigMap' },
  'v1/Service': { validate: (d) => new Service(d as never).validate(), model: 'V1Service' },
  'apps/v1/Deployment': { validate: (d) => new Deployment(d as never).validate(), model: 'V1Deployment' },
  'policy/v1/PodDisruptionBudget': {
    validate: (d) => new PodDisruptionBudget(d as never).validate(),
    model: 'V1PodDisruptionBudget',
  },
  'monitoring.coreos.com/v1/ServiceMonitor': { validate: (d) => new ServiceMonitor(d as never).validate() },
};

async function manifests(): Promise<Map<string, Manifest>> {
  const byKind = new Map<string, Manifest>();
  for (const file of FILES) {
    for (const doc of parseAllDocuments(await readFile(path.join(DIR, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const manifest = doc.toJS() as Manifest;
      byKind.set(manifest.kind, manifest);
    }
  }
  return byKind;
}

type AttributeMap = { baseName: string; type: string }[];
const models = client as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

/** Paths of keys in `value` that the client's model `type` does not have, recursively. */
function unknownFields(value: unknown, type: string, at: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array)
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownFields(v, array[1] as string, `${at}[${i}]`))
      : [];
  const record = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (record)
    return Object.entries(value as object).flatMap(([k, v]) =>
      unknownFields(v, record[1] as string, `${at}.${k}`),
    );
  const attributes = models[type]?.getAttributeTypeMap?.();
  if (!attributes || typeof value !== 'object' || value === null) return [];
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([key, v]) => {
    const fieldType = known.get(key);
    return fieldType === undefined ? [`${at}.${key}`] : unknownFields(v, fieldType, `${at}.${key}`);
  });
}

test('every object validates against the Kubernetes API schemas and has no unknown field', async (t) => {
  const all = await manifests();
  t.deepEqual([...all.keys()].sort(), [
    'ConfigMap',
    'Deployment',
    'PodDisruptionBudget',
    'Service',
    'ServiceMonitor',
  ]);
  for (const manifest of all.values()) {
    const kind = KINDS[`${manifest.apiVersion}/${manifest.kind}`];
    if (!kind) {
      t.fail(`${manifest.apiVersion} ${manifest.kind}: no schema`);
      continue;
    }
    t.notThrows(() => kind.validate(manifest), `${manifest.kind} against its schema`);
    if (kind.model)
      t.deepEqual(unknownFields(manifest, kind.model, manifest.kind), [], `${manifest.kind}: unknown fields`);
  }
  // The checks can fail: a misspelt field and a wrong type are caught.
  const deployment = all.get('Deployment') as Manifest;
  const typo = structuredClone(deployment) as unknown as {
    spec: { template: { spec: { containers: Record<string, unknown>[] } } };
  };
  (typo.spec.template.spec.containers[0] as Record<string, unknown>).readinesProbe = {};
  t.deepEqual(unknownFields(typo, 'V1Deployment', 'Deployment'), [
    'Deployment.spec.template.spec.containers[0].readinesProbe',
  ]);
  t.throws(() =>
    new Deployment({
      ...deployment,
      spec: { ...(deployment.spec as object), replicas: 'two' },
    } as never).validate(),
  );
});

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}

test('the Deployment: probes on the admin port of the config, preStop pause and grace above timeouts.shutdown, locked down', async (t) => {
  const all = await manifests();
  const deployment = all.get('Deployment') as unknown as {
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string>; annotations: Record<string, string> };
        spec: {
          shareProcessNamespace?: boolean;
          terminationGracePeriodSeconds: number;
          securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
          containers: Container[];
        };
      };
    };
  };
  const configMap = all.get('ConfigMap') as unknown as { data: Record<string, string> };
  const config = parseConfig(configMap.data['sluice.yaml'] as string, 'configmap.yaml');
  const pod = deployment.spec.template.spec;
  const [sluice, sidecar] = pod.containers as [Container, Container];
  t.is(sluice.name, 'sluice');
  const port = (name: string) => sluice.ports?.find((p) => p.name === name)?.containerPort;
  // The ports Sluice listens on are the ones the pod declares.
  t.is(port('http'), config.listen.port);
  t.is(port('admin'), config.admin?.port);
  t.is(config.admin?.host, '0.0.0.0');
  t.deepEqual(sluice.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
  t.deepEqual(sluice.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
  const preStop = sluice.lifecycle?.preStop?.sleep?.seconds ?? 0;
  t.true(preStop >= 5, 'a preStop pause long enough for endpoints to update');
  t.true(
    pod.terminationGracePeriodSeconds > preStop + config.timeouts.shutdown / 1000,
    `grace ${pod.terminationGracePeriodSeconds} s > preStop ${preStop} s + timeouts.shutdown ${config.timeouts.shutdown / 1000} s`,
  );
  t.true(pod.securityContext.runAsNonRoot);
  t.is(pod.securityContext.runAsUser, 1000);
  for (const container of pod.containers) {
    t.true(container.securityContext?.readOnlyRootFilesystem, `${container.name}: read-only root`);
    t.false(
      container.securityContext?.allowPrivilegeEscalation,
      `${container.name}: no privilege escalation`,
    );
    t.truthy(
      container.resources?.requests?.cpu && container.resources.requests.memory,
      `${container.name}: requests`,
    );
    t.truthy(
      container.resources?.limits?.cpu && container.resources.limits.memory,
      `${container.name}: limits`,
    );
  }
  // The reload sidecar: same image, sees Sluice's process, watches the config's folder mount
  // (a subPath mount would never see the ConfigMap change).
  t.true(pod.shareProcessNamespace);
  t.is(sidecar.image, sluice.image);
  t.deepEqual(sidecar.command, ['node', '/app/src/cli/reload-on-change.ts', '/etc/sluice/sluice.yaml']);
  t.deepEqual(sluice.args, ['--config', '/etc/sluice/sluice.yaml']);
  for (const container of pod.containers) {
    const mount = container.volumeMounts?.find((m) => m.name === 'config');
    t.is(mount?.mountPath, '/etc/sluice');
    t.is(mount?.subPath, undefined);
  }
  // Prometheus: the annotations name the admin port; the ServiceMonitor its Service port.
  const annotations = deployment.spec.template.metadata.annotations;
  t.is(annotations['prometheus.io/scrape'], 'true');
  t.is(annotations['prometheus.io/port'], String(port('admin')));
  t.is(annotations['prometheus.io/path'], '/metrics');
  const labels = deployment.spec.template.metadata.labels;
  t.deepEqual(deployment.spec.selector.matchLabels, labels);
  const service = all.get('Service') as unknown as {
    spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
  };
  t.deepEqual(service.spec.selector, labels);
  t.deepEqual(
    service.spec.ports.map((p) => [p.name, p.targetPort]),
    [
      ['http', 'http'],
      ['admin', 'admin'],
    ],
  );
  const monitor = all.get('ServiceMonitor') as unknown as {
    spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
  };
  t.deepEqual(
    monitor.spec.endpoints.map((e) => [e.port, e.path]),
    [['admin', '/metrics']],
  );
  const pdb = all.get('PodDisruptionBudget') as unknown as {
    spec: { selector: { matchLabels: Record<string, string> } };
  };
  t.deepEqual(pdb.spec.selector.matchLabels, labels);
  t.deepEqual(monitor.spec.selector.matchLabels, all.get('Service')?.metadata.labels);
});

test('kustomization.yaml lists every manifest', async (t) => {
  const kustomization = parseAllDocuments(
    await readFile(path.join(DIR, 'kustomization.yaml'), 'utf8'),
  )[0]?.toJS() as {
    resources: string[];
  };
  t.deepEqual([...kustomization.resources].sort(), [...FILES].sort());
});
