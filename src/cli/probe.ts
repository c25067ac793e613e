// A readiness probe of Sluice's admin port, for images without curl: the readiness file keepalived
// tracks in the VRRP pair (docker-compose.ha.yml) and the Swarm healthcheck.
//
//   node probe.ts [PATH]
//       once: exit 0 if PATH answered 200 within 4 s, 1 otherwise
//   node probe.ts --watch FILE [PATH]
//       every 250 ms, for as long as it runs: FILE holds 0 while PATH answers 200 and 1 while it
//       does not (2 results in a row change it; written only on a change, by rename)
//
// PATH defaults to /readyz. The address is found as `sluice healthcheck` finds it: SLUICE_ADMIN,
// else the config file (SLUICE_CONFIG), else the default; a wildcard host is probed on loopback.
import { renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { formatAddress } from '../config/values.ts';
import { adminAddress } from './healthcheck.ts';

/** Where to reach an admin address given as `host:port` or `[v6]:port`. */
export function probeTarget(address: string): { host: string; port: number } {
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  if (!match) throw new Error(`expected host:port, got "${address}"`);
  const [, host = '', port = ''] = match;
  return { host: ['', '0.0.0.0', '::'].includes(host) ? '127.0.0.1' : host, port: Number(port) };
}

/** GETs `path` from the admin port: the status code, or undefined on no answer within `timeoutMs`. */
export function probeAdmin(address: string, path: string, timeoutMs: number): Promise<number | undefined> {
  const { host, port } = probeTarget(address);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let head = '';
    const done = (status: number | undefined) => {
      socket.destroy();
      resolve(status);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () =>
      socket.end(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
    );
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(head);
      if (status) done(Number(status[1]));
      else if (head.includes('\r\n')) done(undefined);
    });
    socket.on('end', () => done(undefined));
  });
}

/**
 * Probes every `everyMs` and keeps `file` at `0` (ready) or `1` (not), changing it after `streak`
 * equal results in a row: one late answer on a busy machine does not move a VIP. Starts at `1`.
 * Returns a stop function.
 */
export function watchReadiness(options: {
  file: string;
  address: string;
  path: string;
  everyMs: number;
  timeoutMs: number;
  streak: number;
}): () => void {
  let written: '0' | '1' = '1';
  let candidate: '0' | '1' = written;
  let count = 0;
  // By rename, so that a reader never sees a half-written file.
  const write = (value: '0' | '1') => {
    writeFileSync(`${options.file}.tmp`, `${value}\n`);
    renameSync(`${options.file}.tmp`, options.file);
    written = value;
  };
  write('1');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    const status = await probeAdmin(options.address, options.path, options.timeoutMs);
    const result = status === 200 ? '0' : '1';
    count = result === candidate ? count + 1 : 1;
    candidate = result;
    if (candidate !== written && count >= options.streak) write(candidate);
    if (!stopped) timer = setTimeout(tick, options.everyMs);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const watch = args[0] === '--watch' ? args.splice(0, 2)[1] : undefined;
  const [path = '/readyz'] = args;
  const admin = adminAddress(process.env.SLUICE_ADMIN || undefined, process.env.SLUICE_CONFIG);
  if (typeof admin === 'string') {
    console.error(`probe: ${admin}`);
    process.exit(1);
  }
  const address = formatAddress(admin);
  if (watch) {
    const stop = watchReadiness({ file: watch, address, path, everyMs: 250, timeoutMs: 2000, streak: 2 });
    process.on('SIGTERM', () => {
      stop();
      process.exit(0);
    });
  } else {
    const status = await probeAdmin(address, path, 4000);
    process.exitCode = status === 200 ? 0 : 1;
  }
}
