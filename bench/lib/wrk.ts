// Running wrk and reading its report.

import { spawn } from 'node:child_process';
import { pinned } from './proc.ts';

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p99: number;
  non2xx: number;
  socketErrors: number;
  raw: string;
}

export interface WrkOptions {
  url: string;
  duration: number;
  connections: number;
  threads: number;
  cpus?: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read duration "${text}"`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

function count(text: string): number {
  const m = /^([\d.]+)([kMG]?)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read number "${text}"`);
  const mult = { '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'k' | 'M' | 'G'];
  return Number(m[1]) * mult;
}

/** Parses the output of `wrk --latency`. */
export function parseWrk(out: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+\w+),/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  if (!total || !rps || !p50 || !p99) throw new Error(`wrk: unexpected output:\n${out}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  return {
    requests: count(total[1] as string),
    seconds: durationMs(total[2] as string) / 1000,
    rps: Number(rps[1]),
    p50: durationMs(p50[1] as string),
    p99: durationMs(p99[1] as string),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors,
    raw: out,
  };
}

let current: ReturnType<typeof spawn> | undefined;

/** Kills a running wrk (on SIGINT). */
export function killWrk(): void {
  current?.kill('SIGKILL');
}

/** Runs wrk once; it is killed if it takes 15 s longer than asked. */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.duration}s`,
    '--latency',
    '--timeout',
    '5s',
    o.url,
  ];
  const [file, argv] = pinned(o.cpus, 'wrk', args);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.duration + 15) * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      current = undefined;
      reject(new Error(`wrk: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      if (code !== 0) {
        reject(
          new Error(`wrk ${signal ? `killed by ${signal}` : `exited ${code}`}: ${err.trim() || out.trim()}`),
        );
        return;
      }
      try {
        resolve(parseWrk(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}
