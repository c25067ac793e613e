// `sluice healthcheck`: GET /healthz on the admin port and exit 0 (healthy) or 1, for container
// healthchecks in images without a shell or curl (Dockerfile HEALTHCHECK, compose).
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { DEFAULTS } from '../config/defaults.ts';
import { ConfigError, loadConfigFile, overridesFromEnv } from '../config/load.ts';
import type { ListenAddress } from '../config/types.ts';
import { formatAddress, parseAddress } from '../config/values.ts';

/**
 * The admin address: `--admin`, else SLUICE_ADMIN, else the config file's `admin`, else the
 * default (also when the file does not exist: the image names one, and `demo` runs without it).
 * A wildcard host (0.0.0.0, ::) is asked on loopback.
 */
export async function healthcheck(
  adminFlag: string | undefined,
  configPath: string | undefined,
): Promise<number> {
  const admin = adminAddress(adminFlag ?? overridesFromEnv(process.env).admin, configPath);
  if (typeof admin === 'string') {
    console.error(`sluice healthcheck: ${admin}`);
    return 1;
  }
  const host = admin.host === '0.0.0.0' || admin.host === '::' ? '127.0.0.1' : admin.host;
  const url = `http://${formatAddress({ host, port: admin.port })}/healthz`;
  const { processIO, runClient } = await import('../client/run.ts');
  // Healthy is 2xx only: a 3xx (-f lets it pass) is not /healthz answering.
  let status = '';
  const stdout = new Writable({
    write(chunk, _encoding, callback) {
      status += chunk;
      callback();
    },
  });
  const args = ['-f', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url];
  // The client's failure is told as the healthcheck's (`sluice healthcheck: connection refused …`).
  const stderr = new Writable({
    write(chunk, _encoding, callback) {
      process.stderr.write(String(chunk).replace(/^sluice client: /gm, 'sluice healthcheck: '), callback);
    },
  });
  if ((await runClient(args, Object.assign(processIO(), { stdout, stderr }))) !== 0) return 1;
  if (status.startsWith('2')) return 0;
  console.error(`sluice healthcheck: ${url} answered ${status}, not 2xx`);
  return 1;
}

export function adminAddress(
  given: string | undefined,
  configPath: string | undefined,
): ListenAddress | string {
  if (given !== undefined) {
    const parsed = parseAddress(given, { listening: true });
    return parsed.ok ? parsed.value : `--admin / SLUICE_ADMIN: ${parsed.message}`;
  }
  if (configPath === undefined || !existsSync(configPath)) return DEFAULTS.admin;
  try {
    return loadConfigFile(configPath).admin ?? `the admin listener is off in ${configPath}`;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message;
  }
}
