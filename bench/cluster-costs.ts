// What several workers cost, measured: `node bench/cluster-costs.ts [--workers 2,8]`.
//
// - Memory: resident memory of the supervisor, each worker and the spare of `sluice serve` with
//   N workers, idle, next to N worker *threads* each running the same Sluice in one process
//   (the alternative the README weighs).
// - /metrics and /status: time of one scrape on the admin port with N workers (median and max of
//   30, one at a time), the CPU of all processes per scrape, and the size of the exposition; and
//   the CPU the tree spends idle, without scrapes (workers push their metrics every second).
// - Messages: a round trip supervisor -> child -> supervisor over fork's IPC channel with the
//   serialization the cluster uses, for a health-state update and a passive-failure report.
// Backends are three node:http servers in this process; nothing is sent beyond loopback.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds } from './lib/proc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const { values } = parseArgs({ options: { workers: { type: 'string', default: '2,8' } } });
const counts = String(values.workers).split(',').map(Number);
const tmp = mkdtempSync(path.join(tmpdir(), 'sluice-cluster-costs-'));

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

function get(port: number, target: string): Promise<{ ms: number; body: string }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk;
        });
        res.on('end', () => resolve({ ms: performance.now() - start, body }));
      })
      .on('error', reject);
  });
}

async function backends(): Promise<{ ports: number[]; close: () => void }> {
  const servers = await Promise.all(
    [1, 2, 3].map(
      (i) =>
        new Promise<http.Server>((resolve) => {
          const server = http.createServer((_req, res) => res.end(`backend ${i}\n`));
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  return {
    ports: servers.map((server) => (server.address() as AddressInfo).port),
    close: () => {
      for (const server of servers) server.close();
    },
  };
}

function yaml(ports: number[], workers: number): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: ${workers}
accessLog: false
logLevel: warn
pools:
  web:
    servers: [${ports.map((p) => `127.0.0.1:${p}`).join(', ')}]
`;
}

async function processes(ports: number[], workers: number): Promise<void> {
  const file = path.join(tmp, `cluster-${workers}.yaml`);
  writeFileSync(file, yaml(ports, workers).replace('logLevel: warn', 'logLevel: info'));
  const child = spawn(process.execPath, ['--max-semi-space-size=8', MAIN, '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  try {
    while (!output.includes('"sluice started"')) await sleep(50);
    const started = JSON.parse(output.split('\n').find((l) => l.includes('"sluice started"')) ?? '{}');
    const admin = Number(String(started.admin).split(':').pop());
    let status = JSON.parse((await get(admin, '/status')).body);
    while (!status.spare?.booted) {
      await sleep(100);
      status = JSON.parse((await get(admin, '/status')).body);
    }
    await sleep(1000);
    const workerRss = status.workers.map((w: { pid: number }) => rss(w.pid));
    console.log(
      `${workers} worker processes, idle: supervisor ${mb(rss(child.pid ?? 0))}, workers ${workerRss.map(mb).join(' ')} ` +
        `(median ${mb(median(workerRss))}), spare ${mb(rss(status.spare.pid))}`,
    );
    const tree = [child.pid ?? 0, ...status.workers.map((w: { pid: number }) => w.pid)];
    // What the tree spends with no scrape at all (health checks, timers, the workers' metric pushes).
    const idleBefore = cpuSeconds(tree);
    await sleep(10_000);
    console.log(
      `  idle, no scrape: CPU ${(((cpuSeconds(tree) - idleBefore) / 10) * 1000).toFixed(1)} ms per second (all processes)`,
    );
    for (const target of ['/metrics', '/status']) {
      await get(admin, target);
      const times: number[] = [];
      let size = 0;
      const cpuBefore = cpuSeconds(tree);
      for (let i = 0; i < 30; i++) {
        const { ms, body } = await get(admin, target);
        times.push(ms);
        size = body.length;
      }
      const cpu = ((cpuSeconds(tree) - cpuBefore) / 30) * 1000;
      console.log(
        `  GET ${target} with ${workers} workers: median ${median(times).toFixed(2)} ms, ` +
          `max ${Math.max(...times).toFixed(2)} ms, CPU ${cpu.toFixed(1)} ms per scrape (all processes), ${(size / 1024).toFixed(1)} KiB`,
      );
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

/** The same Sluice, one per worker thread of one process: what threads would cost instead. */
async function threads(ports: number[], workers: number): Promise<void> {
  const file = path.join(tmp, `threads-${workers}.yaml`);
  writeFileSync(file, yaml(ports, 1).replace('admin: 127.0.0.1:0', 'admin: false'));
  const script = path.join(tmp, 'threads.mts');
  writeFileSync(
    script,
    `import { Worker } from 'node:worker_threads';
const code = \`
  const { parseConfig } = await import(${JSON.stringify(path.join(ROOT, 'src/config/load.ts'))});
  const { startSluice } = await import(${JSON.stringify(path.join(ROOT, 'src/sluice.ts'))});
  const { readFileSync } = await import('node:fs');
  await startSluice(parseConfig(readFileSync(${JSON.stringify(file)}, 'utf8')));
  (await import('node:worker_threads')).parentPort.postMessage('up');
\`;
let up = 0;
for (let i = 0; i < ${workers}; i++)
  new Worker(code, { eval: true }).on('message', () => { if (++up === ${workers}) process.send('up'); });
`,
  );
  const child = fork(script, [], {
    execArgv: ['--max-semi-space-size=8'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => child.once('message', resolve));
  await sleep(1500);
  console.log(`${workers} worker threads in one process, idle: ${mb(rss(child.pid ?? 0))} in all`);
  child.kill('SIGKILL');
}

/** Round trips over fork's IPC channel, `advanced` serialization, as the cluster sends them. */
async function messages(): Promise<void> {
  const echo = path.join(tmp, 'echo.mjs');
  writeFileSync(echo, "process.on('message', (m) => process.send(m));\n");
  const child = fork(echo, [], { serialization: 'advanced' });
  const state = {
    type: 'health',
    states: [
      {
        pool: 'web',
        name: 'web-1/10.0.0.7',
        identity: JSON.stringify(['web', 'web-1/10.0.0.7', '10.0.0.7', 80, 1, { path: '/', interval: 2000 }]),
        record: {
          health: 'ejected',
          drained: false,
          changedAt: Date.now(),
          clock: Date.now(),
          passes: 0,
          fails: 0,
          passiveFailures: 0,
          slowStartAt: 0,
          ejectedAt: Date.now(),
          ejectionEnd: Date.now() + 30_000,
          ejectionMs: 30_000,
          level: 1,
          decayFrom: 0,
          ejectionCount: 1,
          refusedCount: 0,
          result: 'success',
          reason: 'HEAD / answered 200',
          last: {
            from: 'up',
            to: 'ejected',
            reason: '5 consecutive failed requests',
            at: Date.now(),
            cause: 'passive',
          },
        },
      },
    ],
  };
  const passive = {
    type: 'passive',
    pool: 'web',
    name: 'web-1/10.0.0.7',
    identity: state.states[0]?.identity,
    ok: false,
  };
  for (const [what, message] of [
    ['health-state update', state],
    ['passive-failure report', passive],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const start = performance.now();
      child.send(message);
      await new Promise((resolve) => child.once('message', resolve));
      times.push((performance.now() - start) * 1000);
    }
    console.log(`message round trip, ${what}: median ${median(times.slice(200)).toFixed(0)} µs`);
  }
  child.kill();
}

const { ports, close } = await backends();
try {
  await messages();
  for (const n of counts) {
    await processes(ports, n);
    await threads(ports, n);
  }
} finally {
  close();
  rmSync(tmp, { recursive: true, force: true });
}
