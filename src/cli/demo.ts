// `sluice demo` (and `sluice` with no config): three built-in backends behind the proxy.
import { parseConfig } from '../config/load.ts';
import { startDemoBackends } from '../demo/backends.ts';
import { startSluice } from '../sluice.ts';
import { type Flags, stopOnSignals, withOverrides } from './serve.ts';

export async function startDemo(flags: Flags): Promise<number> {
  const backends = await startDemoBackends(3);
  const servers = backends.map(
    (backend) => `      - address: 127.0.0.1:${backend.address.port}\n        name: ${backend.name}`,
  );
  // One process: the demo's backends live in it (--workers and SLUICE_WORKERS do not apply).
  const yaml = `listen: 0.0.0.0:8080
admin: 127.0.0.1:8099
workers: 1
pools:
  demo:
    servers:
${servers.join('\n')}
routes:
  - host: "*"
    pool: demo
`;
  const sluice = await startSluice(withOverrides(parseConfig(yaml, 'embedded demo'), flags));
  const { port } = sluice.address;
  sluice.logger.info('demo ready', { try: `curl -i http://127.0.0.1:${port}/` });
  stopOnSignals(sluice, async () => {
    for (const backend of backends) backend.server.close();
  });
  return 0;
}
