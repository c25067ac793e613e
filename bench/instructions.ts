// Instructions per request, counted by valgrind (callgrind): repeatable on a noisy shared machine,
// where CPU time moves by ±20% from run to run. `npm run bench:instructions [-- options]`.
//
// Starts the nginx backends, then each target under `valgrind --tool=callgrind` twice: once
// answering `--base` requests, once `--requests`; the difference of the two totals divided by
// the difference of the request counts is the cost of one request, start-up excluded. The base
// must outlast V8's warm-up: with a base of 5,000 requests, optimizing compilation still ran
// in the counted part and made up a third of it (Sluice: 167k per request against 95k at a
// base of 20,000, where the compiler's share is under 2%). The load
// is a small client in this process: `--connections` keep-alive connections, each sending
// `GET /1k.txt` and waiting for the whole answer before the next.
//
//   npm run bench:instructions -- --only sluice,sluice-nolog,node-pipe --requests 40000

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nginxStaticConf, sluiceYaml } from './lib/configs.ts';
import { waitReady } from './lib/http-check.ts';
import { type Server, startServer, stopAll, stopServer } from './lib/proc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TARGETS = [
  'sluice',
  'sluice-nolog',
  'sluice-cache',
  'node-pipe',
  'node-plain',
  'node-plain-cache',
] as const;
type Target = (typeof TARGETS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: TARGETS.join(',') },
    requests: { type: 'string', default: '40000' },
    base: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '16' },
    sluice: { type: 'string', default: path.join(ROOT, 'bin/sluice.js') },
    keep: { type: 'boolean', default: false },
  },
});
const only = (values.only as string).split(',') as Target[];
const requests = Number(values.requests);
const base = Number(values.base);
const connections = Number(values.connections);

/** Sends `total` GETs over `conns` keep-alive connections, one at a time on each. */
function load(port: number, total: number, conns: number): Promise<void> {
  let sent = 0;
  const request = Buffer.from(`GET /1k.txt HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      let pending = Buffer.alloc(0);
      const next = () => {
        if (sent >= total) {
          socket.end();
          resolve();
          return;
        }
        sent++;
        socket.write(request);
      };
      socket.on('connect', next);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        for (;;) {
          const end = pending.indexOf('\r\n\r\n');
          if (end === -1) return;
          const length = Number(
            /content-length:\s*(\d+)/i.exec(pending.subarray(0, end).toString('latin1'))?.[1],
          );
          if (pending.length < end + 4 + length) return;
          pending = pending.subarray(end + 4 + length);
          next();
        }
      });
      socket.on('error', reject);
    });
  return Promise.all(Array.from({ length: conns }, one)).then(() => {});
}

/** `n` distinct ports that were free a moment ago. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function count(
  target: Target,
  tmp: string,
  backendPorts: number[],
  n: number,
  counted = true,
): Promise<number> {
  const [port, adminPort] = (await freePorts(2)) as [number, number];
  const out = path.join(tmp, `${target}-${n}.callgrind`);
  let argv: string[];
  if (target.startsWith('node-')) {
    const backends = backendPorts.map((p) => `127.0.0.1:${p}`).join(',');
    const script = path.join(ROOT, `bench/peers/${target.replace('-cache', '')}.ts`);
    argv = [
      script,
      '--port',
      String(port),
      '--backends',
      backends,
      ...(target.endsWith('-cache') ? ['--cache'] : []),
    ];
  } else {
    const file = path.join(tmp, `${target}.yaml`);
    const options = {
      adminPort,
      ...(target === 'sluice-nolog' ? { accessLog: false as const } : {}),
      // Answers from its cache after the first request (the backends' 1k.txt is cacheable).
      ...(target === 'sluice-cache' ? { cache: true } : {}),
    };
    writeFileSync(file, sluiceYaml(port, backendPorts, options));
    argv = [values.sluice as string, '--config', file];
  }
  const node = [process.execPath, '--max-semi-space-size=8', ...argv];
  // On one CPU, `workers: auto` (the default) serves in-process: valgrind counts the process
  // that does the work, not a supervisor whose workers it does not follow.
  const [cmd, ...args] = [
    'taskset',
    '-c',
    '0',
    ...(counted ? ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`] : []),
    ...node,
  ];
  const server = startServer(target, cmd as string, args, {
    cwd: ROOT,
    stdoutFile: path.join(tmp, `${target}.stdout.log`),
  });
  const why = await waitReady(server, port, '/1k.txt', 1024, 600_000);
  if (why) throw new Error(`${target} did not come up: ${why}`);
  await load(port, n, connections);
  await stopServer(server, 60_000);
  if (!counted) return 0;
  const summary = /^summary:\s+(\d+)/m.exec(readFileSync(out, 'utf8'));
  if (!summary) throw new Error(`no summary in ${out}`);
  return Number(summary[1]);
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-instr-'));
  try {
    const backendPorts = await freePorts(3);
    const prefix = path.join(tmp, 'backends');
    mkdirSync(prefix, { recursive: true });
    writeFileSync(
      path.join(prefix, 'nginx.conf'),
      nginxStaticConf(prefix, path.join(ROOT, 'web'), backendPorts),
    );
    const backends: Server = startServer('backends', 'nginx', [
      '-p',
      prefix,
      '-e',
      path.join(prefix, 'error.log'),
      '-c',
      path.join(prefix, 'nginx.conf'),
    ]);
    for (const p of backendPorts) {
      const why = await waitReady(backends, p, '/1k.txt', 1024, 10_000);
      if (why) throw new Error(`backends: ${why}`);
    }
    const rev = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
    }).stdout.trim();
    console.log(
      `instructions per request (callgrind), ${connections} connections, (I(${requests}) − I(${base})) ÷ ${requests - base}; ${rev}`,
    );
    for (const target of only) {
      // One plain start first: Node's compile cache (bin/sluice.js) is then warm for both counted
      // runs, or one of them would include loading the TypeScript stripper.
      await count(target, tmp, backendPorts, 1, false);
      const small = await count(target, tmp, backendPorts, base);
      const large = await count(target, tmp, backendPorts, requests);
      console.log(
        `${target.padEnd(13)} ${Math.round((large - small) / (requests - base)).toLocaleString('en-US')} instructions/request`,
      );
    }
  } finally {
    await stopAll(5000);
    // --keep: the callgrind files stay, for callgrind_annotate.
    if (values.keep) console.log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
