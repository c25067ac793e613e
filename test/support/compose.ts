// docker-compose for the tests that bring up a stack from the repository's compose files.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * A runner of `docker-compose -f FILE… -p PROJECT ARGS…` in the repository, with the environment
 * `env()` gives at each call (tests set ports in a before hook); resolves with stdout + stderr.
 */
export function composeProject(
  project: string,
  files: readonly string[],
  env: () => NodeJS.ProcessEnv,
): (...args: string[]) => Promise<string> {
  const options = [...files.flatMap((file) => ['-f', file]), '-p', project];
  return async (...args) => {
    const { stdout, stderr } = await run('docker-compose', [...options, ...args], {
      cwd: ROOT,
      env: env(),
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout + stderr;
  };
}
