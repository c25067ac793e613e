// Runs Sluice as a child process (the real command), to see its memory and signals from outside.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface ChildSluice {
  process: ChildProcess;
  /** The proxy's and the admin port's ports, from the `sluice started` line. */
  port: number;
  adminPort: number | undefined;
  /** The config file it runs with (rewrite it and send SIGHUP to reload). */
  configPath: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Peak resident memory (VmHWM) in bytes. */
  peakRss(): number;
  /** Resident memory now (VmRSS) in bytes. */
  rss(): number;
  /** Open file descriptors now. */
  descriptors(): number;
  stop(): Promise<number | null>;
}

/**
 * Starts `sluice --config` with `yaml` and resolves once the proxy logged that it listens. One
 * process (`SLUICE_WORKERS=1`) unless `workers` says otherwise; `nofile` runs it under that
 * open-file limit (prlimit).
 */
export async function startChildSluice(
  yaml: string,
  workers = '1',
  options: { nofile?: number } = {},
): Promise<ChildSluice> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
  const config = join(dir, 'sluice.yaml');
  writeFileSync(config, yaml);
  const command = [process.execPath, main, '--config', config];
  if (options.nofile !== undefined)
    command.unshift('prlimit', `--nofile=${options.nofile}:${options.nofile}`);
  const child = spawn(command[0] as string, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLUICE_WORKERS: workers },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not start:\n${output}`)), 10_000);
    const check = () => {
      if (output.includes('sluice started')) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    void exited.then(() => reject(new Error(`sluice exited:\n${output}`)));
  });
  const started = JSON.parse(output.split('\n').find((line) => line.includes('"sluice started"')) ?? '{}');
  const portOf = (address: string | null | undefined) => Number(address?.split(':').pop()) || undefined;
  return {
    process: child,
    port: portOf(started.listen) ?? 0,
    adminPort: portOf(started.admin),
    configPath: config,
    output: () => output,
    peakRss: () => memory(child, 'VmHWM'),
    rss: () => memory(child, 'VmRSS'),
    descriptors: () => readdirSync(`/proc/${child.pid}/fd`).length,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

function memory(child: ChildProcess, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
}
