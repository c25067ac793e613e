// Sends SIGHUP to Sluice when its config file changes: the sidecar of deploy/kubernetes/, where a
// ConfigMap update replaces the mounted file but tells no process. The pod shares its process
// namespace (shareProcessNamespace), so this finds Sluice in /proc; both run as the same user,
// so it may signal it. Sluice then reads the file again, or keeps its config if the new one has
// errors (and logs them).
//
//   node reload-on-change.ts FILE [--every MS] [--match TEXT]
//
// FILE is read every MS (default 2000) and compared by content, which also covers the kubelet's
// atomic swap of the ConfigMap's folder. The process signalled is every other one whose command
// line contains TEXT (default `bin/sluice.js`, Sluice's entry point in its image). It imports
// nothing of Sluice.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

export interface WatchOptions {
  file: string;
  everyMs: number;
  match: string;
  /** Where processes are listed (default /proc). */
  procDir?: string;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** The pids under `procDir` whose command line contains `match`, this process left out. */
export function findProcesses(match: string, procDir = '/proc'): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync(procDir)) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`${procDir}/${entry}/cmdline`, 'latin1').replaceAll('\0', ' ');
      if (cmdline.includes(match)) pids.push(pid);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

function digest(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

/** Polls `file`; on every change of its content, SIGHUPs the matching processes. Returns a stop function. */
export function watchAndSignal(options: WatchOptions): () => void {
  const log =
    options.log ??
    ((message: string, fields: Record<string, unknown>) =>
      console.log(
        JSON.stringify({ level: 'info', message, ...fields, timestamp: new Date().toISOString() }),
      ));
  let last = digest(options.file);
  log('watching the config file', { file: options.file, everyMs: options.everyMs, match: options.match });
  const timer = setInterval(() => {
    const now = digest(options.file);
    if (now === undefined || now === last) return;
    last = now;
    const pids = findProcesses(options.match, options.procDir);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        log('could not signal', { pid, error: (error as Error).message });
      }
    }
    log('config file changed: SIGHUP sent', { file: options.file, pids });
  }, options.everyMs);
  return () => clearInterval(timer);
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args.splice(at, 2)[1] : undefined;
  };
  const everyMs = Number(option('--every') ?? 2000);
  const match = option('--match') ?? 'bin/sluice.js';
  const [file] = args;
  if (!file || !Number.isFinite(everyMs) || everyMs <= 0) {
    console.error('usage: reload-on-change.ts FILE [--every MS] [--match TEXT]');
    process.exit(2);
  }
  const stop = watchAndSignal({ file, everyMs, match });
  process.on('SIGTERM', () => {
    stop();
    process.exit(0);
  });
}
