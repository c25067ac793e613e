// Child processes of the benchmark and what /proc tells about them.
//
// Every server is spawned `detached` so that it leads a process group of its own: nginx's
// workers join their master's group, and stopping a target is `kill(-pgid)` by the id we got
// from spawn — never by name, because other nginx processes may run on this machine. Servers
// in their own group also do not receive the terminal's Ctrl-C: run.ts catches SIGINT and
// stops them itself, in order.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

export interface Server {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Last bytes written to stdout/stderr, for error messages. */
  output: () => string;
  /** Resolves with a description once the process has exited. */
  exited: Promise<string>;
  isRunning: () => boolean;
}

const live = new Set<Server>();

/** `taskset -c CPUS cmd args`, or the command as it is when cpus is undefined. */
export function pinned(cpus: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]];
}

export function startServer(
  name: string,
  cmd: string,
  args: string[],
  opts: { cwd?: string; cpus?: string; env?: NodeJS.ProcessEnv; stdoutFile?: string } = {},
): Server {
  const [file, argv] = pinned(opts.cpus, cmd, args);
  // stdoutFile: the server's stdout goes straight to a file, as a container's stdout goes to
  // the engine's log file (and not through this process, which would cost the load side CPU).
  const stdout = opts.stdoutFile === undefined ? 'pipe' : openSync(opts.stdoutFile, 'a');
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', stdout, 'pipe'],
  });
  if (typeof stdout === 'number') closeSync(stdout);
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let running = true;
  const exited = new Promise<string>((resolve) => {
    child.on('error', (err) => {
      running = false;
      resolve(`could not start ${cmd}: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      running = false;
      resolve(signal ? `killed by ${signal}` : `exited with code ${code}`);
    });
  });
  const server: Server = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => tail.trim(),
    exited,
    isRunning: () => running,
  };
  live.add(server);
  return server;
}

function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // ESRCH: nothing left in the group
  }
}

function groupAlive(pid: number): boolean {
  return killGroup(pid, 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM to the server's process group, then SIGKILL after `graceMs`.
 * Returns a note when the server had to be killed (a proxy should exit on SIGTERM).
 */
export async function stopServer(server: Server, graceMs = 5000): Promise<string | undefined> {
  live.delete(server);
  if (!killGroup(server.pid, 'SIGTERM')) return undefined;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!server.isRunning() && !groupAlive(server.pid)) return undefined;
    await sleep(50);
  }
  killGroup(server.pid, 'SIGKILL');
  await Promise.race([server.exited, sleep(1000)]);
  return `${server.name} did not exit within ${graceMs / 1000} s of SIGTERM: killed`;
}

export async function stopAll(graceMs = 5000): Promise<string[]> {
  const notes = await Promise.all([...live].map((s) => stopServer(s, graceMs)));
  return notes.filter((n): n is string => n !== undefined);
}

/** Last resort from a synchronous 'exit' handler. */
export function killAllNow(): void {
  for (const s of live) killGroup(s.pid, 'SIGKILL');
  live.clear();
}

// ---- /proc ----

/** The pid and all its descendants, read from /proc/<pid>/stat's ppid field. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const ppid = Number(stat[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]. */
function readStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime and stime in seconds, each summed over the given processes (all threads of each). */
export function cpuTimes(pids: number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    // utime and stime are fields 14 and 15 of stat; stat[0] here is field 3.
    if (stat) {
      user += Number(stat[11]);
      system += Number(stat[12]);
    }
  }
  return { user: user / ticksPerSecond(), system: system / ticksPerSecond() };
}

/** utime+stime in seconds, summed over the given processes (all threads of each). */
export function cpuSeconds(pids: number[]): number {
  const { user, system } = cpuTimes(pids);
  return user + system;
}

/** VmHWM (peak resident set) in bytes, summed over the given processes. */
export function peakRssBytes(pids: number[]): number {
  return memoryBytes(pids, 'VmHWM');
}

/** VmRSS (resident set now) in bytes, summed over the given processes. */
export function rssBytes(pids: number[]): number {
  return memoryBytes(pids, 'VmRSS');
}

function memoryBytes(pids: number[], field: 'VmHWM' | 'VmRSS'): number {
  const pattern = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm');
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = pattern.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

/** This process's own CPU time plus that of the children it has reaped (wrk), in seconds. */
export function selfAndReapedCpuSeconds(): number {
  const stat = readStat(process.pid);
  if (!stat) return 0;
  // utime, stime, cutime, cstime: fields 14–17.
  return (Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14])) / ticksPerSecond();
}

/** Whole-machine CPU time from /proc/stat, in seconds: user+nice+system, and steal. */
export function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number) => f[i] ?? 0;
    return { busy: (at(0) + at(1) + at(2)) / ticksPerSecond(), steal: at(7) / ticksPerSecond() };
  } catch {
    return { busy: 0, steal: 0 };
  }
}
