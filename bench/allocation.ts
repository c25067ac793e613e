// Bytes allocated per proxied request: one Sluice (src/cli/main.ts of a checkout) with
// ./lib/count-allocation.ts preloaded, three nginx backends serving 1k.txt, and wrk -c64 runs of
// 1 to 4 s; the slope of allocated bytes against requests is the figure (start-up and other fixed
// costs fall into the intercept). The machine's load does not change it.
//
//   node bench/allocation.ts [checkout, default .] [rounds, default 2]
//
// Sluice runs without admin port and access log (the config `npm run bench` used before issue 12),
// so the figure is the proxy path's alone.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nginxStaticConf } from './lib/configs.ts';

const checkout = path.resolve(process.argv[2] ?? '.');
const rounds = Number(process.argv[3] ?? 2);
const tmp = mkdtempSync(path.join(tmpdir(), 'sluice-alloc-'));
const root = path.join(tmp, 'web');
mkdirSync(root);
mkdirSync(path.join(tmp, 'nginx'));
writeFileSync(path.join(root, '1k.txt'), `${'x'.repeat(1023)}\n`);
const port = 20000 + Math.floor(Math.random() * 20000);
const backends = [port + 1, port + 2, port + 3];
writeFileSync(path.join(tmp, 'nginx.conf'), nginxStaticConf(path.join(tmp, 'nginx'), root, backends));
writeFileSync(
  path.join(tmp, 'sluice.yaml'),
  `listen: 127.0.0.1:${port}
admin: false
accessLog: false
logLevel: warn
pools:
  web:
    servers:
${backends.map((p) => `      - address: 127.0.0.1:${p}\n`).join('')}routes:
  - host: "*"
    pool: web
`,
);
const out = path.join(tmp, 'allocated');
writeFileSync(out, '');
const nginx = spawn('nginx', ['-p', path.join(tmp, 'nginx'), '-c', path.join(tmp, 'nginx.conf')], {
  stdio: 'ignore',
});
const preload = fileURLToPath(new URL('./lib/count-allocation.ts', import.meta.url));
const sluice = spawn(
  process.execPath,
  ['--import', preload, path.join(checkout, 'src/cli/main.ts'), '--config', path.join(tmp, 'sluice.yaml')],
  { env: { ...process.env, ALLOC_OUT: out, SLUICE_WORKERS: '1' }, stdio: ['ignore', 'ignore', 'inherit'] },
);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const totals = () => readFileSync(out, 'utf8').split('\n').filter(Boolean).map(Number);

/** The running total of allocated bytes, now. */
async function mark(): Promise<number> {
  const before = totals().length;
  sluice.kill('SIGUSR2');
  for (let i = 0; i < 250 && totals().length === before; i++) await sleep(20);
  const all = totals();
  if (all.length === before) throw new Error('no total from the Sluice under test');
  return all[all.length - 1] as number;
}

/** Requests wrk completed in `seconds`; throws on any non-2xx answer. */
function wrk(seconds: number): number {
  const text = execFileSync('wrk', ['-t1', '-c64', `-d${seconds}s`, `http://127.0.0.1:${port}/1k.txt`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (text.includes('Non-2xx')) throw new Error(text);
  return Number(/(\d+) requests in/.exec(text)?.[1]);
}

try {
  for (let i = 0; ; i++) {
    await sleep(500);
    try {
      wrk(1);
      break;
    } catch (error) {
      if (i > 40) throw error;
    }
  }
  wrk(2);
  const points: [number, number][] = [];
  for (let round = 0; round < rounds; round++)
    for (const seconds of [1, 3, 2, 4]) {
      const before = await mark();
      const requests = wrk(seconds);
      points.push([requests, (await mark()) - before]);
    }
  const mean = (i: 0 | 1) => points.reduce((sum, p) => sum + p[i], 0) / points.length;
  const [mx, my] = [mean(0), mean(1)];
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - mx) * (y - my);
    variance += (x - mx) ** 2;
  }
  const slope = covariance / variance;
  console.log(
    JSON.stringify({
      checkout,
      bytesPerRequest: Math.round(slope),
      interceptBytes: Math.round(my - slope * mx),
      points,
    }),
  );
} finally {
  sluice.kill('SIGTERM');
  nginx.kill('SIGQUIT');
  await sleep(500);
  rmSync(tmp, { recursive: true, force: true });
}
