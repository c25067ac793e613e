// Starts Sluice in-process for tests, from YAML, with logs silenced.
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { type RunningSluice, startSluice } from '../../src/sluice.ts';

export async function startProxy(yaml: string): Promise<RunningSluice> {
  const config = parseConfig(yaml, 'test');
  return startSluice(config, createLogger(config.logLevel, true));
}

/** A one-pool config on an ephemeral port; `extra` is more top-level YAML. */
export function poolYaml(ports: readonly number[], extra = '', pool = ''): string {
  const servers = ports.map((port) => `      - address: 127.0.0.1:${port}`).join('\n');
  return `listen: 127.0.0.1:0
admin: false
accessLog: false
${extra}
pools:
  web:
${pool}
    servers:
${servers}
routes:
  - host: "*"
    pool: web
`;
}
