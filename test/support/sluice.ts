// Starts Sluice in-process for tests, from YAML, with logs silenced.
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { type RunningSluice, startSluice } from '../../src/sluice.ts';

export async function startProxy(yaml: string): Promise<RunningSluice> {
  const config = parseConfig(yaml, 'test');
  return startSluice(config, createLogger(config.logLevel, true), { accessLog: null });
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

/**
 * A config on an ephemeral port, without admin port or access log, whose health checks run once
 * at start (interval 1h): `pools` maps names to backend ports; `routes` is the YAML list under
 * `routes:` (default: everything to the first pool); `extra` is more top-level YAML.
 */
export function quietYaml(
  pools: Record<string, readonly number[]>,
  options: { routes?: string; extra?: string; listen?: string } = {},
): string {
  const poolLines = Object.entries(pools).map(
    ([name, ports]) =>
      `  ${name}:\n    health: { interval: 1h, timeout: 1s }\n    servers: [${ports.map((port) => `127.0.0.1:${port}`).join(', ')}]`,
  );
  return `listen: ${options.listen ?? '127.0.0.1:0'}
admin: false
accessLog: false
${options.extra ?? ''}
pools:
${poolLines.join('\n')}
${options.routes === undefined ? '' : `routes:\n${options.routes}`}
`;
}
