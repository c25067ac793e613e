// Prints docker-compose.yml as `docker stack deploy` (Docker 20.10) takes it: the per-container
// limits of compose (mem_limit, cpus), which the stack loader refuses, become
// deploy.resources.limits; `tmpfs`, which a swarm ignores (and a read-only container then
// cannot write), becomes tmpfs mounts; depends_on, which a swarm ignores and whose conditions
// its schema refuses, goes; the file gets the `version` the stack loader needs. Everything else stays;
// docker-compose.swarm.yml does the rest, as an override:
//
//   node scripts/swarm-stack.ts | docker stack deploy -c - -c docker-compose.swarm.yml sluice
//
// (from the repository's folder: the compose file's relative paths are resolved from there).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';

type Service = Record<string, unknown> & { deploy?: { resources?: { limits?: Record<string, unknown> } } };

export function swarmStack(composeYaml: string): string {
  const document = parseDocument(composeYaml, { merge: true });
  const stack = document.toJS() as { version?: string; services: Record<string, Service> };
  for (const service of Object.values(stack.services)) {
    delete service.depends_on;
    if (Array.isArray(service.tmpfs)) {
      const mounts = service.tmpfs.map((target: string) => ({ type: 'tmpfs', target }));
      service.volumes = [...((service.volumes as unknown[]) ?? []), ...mounts];
      delete service.tmpfs;
    }
    const limits: Record<string, unknown> = {};
    if (service.mem_limit !== undefined) limits.memory = String(service.mem_limit).toUpperCase();
    if (service.cpus !== undefined) limits.cpus = String(service.cpus);
    delete service.mem_limit;
    delete service.cpus;
    if (Object.keys(limits).length === 0) continue;
    service.deploy = { ...service.deploy, resources: { ...service.deploy?.resources, limits } };
  }
  // Anchors (x-…) are resolved by toJS; drop the extension fields themselves.
  for (const key of Object.keys(stack))
    if (key.startsWith('x-')) delete (stack as Record<string, unknown>)[key];
  return JSON.stringify({ version: '3.8', ...stack }, null, 2);
}

if (import.meta.main) {
  const file = process.argv[2] ?? path.resolve(import.meta.dirname, '../docker-compose.yml');
  process.stdout.write(`${swarmStack(readFileSync(file, 'utf8'))}\n`);
}
