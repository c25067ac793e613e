// Sluice's side-by-side benchmark: `npm run bench [-- options]`. See bench/README.md.
//
// On loopback it starts 3 nginx backends serving a 1024-byte file, then the targets, and
// drives each target in turn with the same wrk load (`wrk -t1 -c64 --latency`). Rounds
// interleave the targets (round 1: all targets, round 2: all targets, ...; the order rotates
// each round) so that the noise of a shared machine hits all of them alike, and the table
// shows medians over the rounds.
//
// CPU pinning (`--pin`, default `split`): the machine has 2 cores, and wrk, the backends and
// the proxy compete for them. With `split` every proxy (and the `backend` reference) runs
// on CPU 0 alone: nginx and HAProxy have one worker thread, and Sluice is one Node.js thread,
// so each gets one whole core, Node's helper threads (GC, libuv) included. wrk and the three
// backends share CPU 1 (at ~60k req/s they nearly fill it: a ceiling for the fastest peers).
// Without pinning the scheduler moves wrk or the backends onto the proxy's core now and then
// and the same target's req/s swung more between rounds in our trials (±3–13% against ±3–6%
// pinned); `--pin none` and `--pin float` are there to compare.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { haproxyConf, nginxProxyConf, nginxStaticConf, sluiceYaml } from './lib/configs.ts';
import { waitReady } from './lib/http-check.ts';
import {
  cpuSeconds,
  cpuTimes,
  killAllNow,
  machineCpuSeconds,
  peakRssBytes,
  processTree,
  rssBytes,
  type Server,
  selfAndReapedCpuSeconds,
  startServer,
  stopAll,
  stopServer,
} from './lib/proc.ts';
import { killWrk, runWrk, type WrkResult } from './lib/wrk.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FILE = '1k.txt';
const FILE_SIZE = 1024;
const ALL_TARGETS = [
  'backend',
  'sluice',
  'sluice-nolog',
  'sluice-cache',
  'haproxy',
  'nginx-proxy',
  'sluice-2w',
  'haproxy-2t',
  'nginx-proxy-2w',
  'http-proxy',
  'node-pipe',
  'node-plain',
  'node-plain-cache',
] as const;
type TargetName = (typeof ALL_TARGETS)[number];

const PIN_LAYOUTS: Record<string, { proxy?: string; backends?: string; wrk?: string }> = {
  split: { proxy: '0', backends: '1', wrk: '1' },
  float: { proxy: '0', wrk: '1' },
  none: {},
};

const USAGE = `usage: npm run bench -- [options]
  --duration S       seconds of each measured wrk run (default 10)
  --warmup S         seconds of the uncounted wrk run before each measured one (default 1, 0: none)
  --rounds N         rounds over all targets; the table shows medians (default 3)
  --connections LIST wrk connections, one series per count, ascending (default 64,256,1024)
  --threads N        wrk threads (default 1)
  --only LIST        comma-separated targets: ${ALL_TARGETS.join(',')}
  --pin LAYOUT       split: proxy on CPU 0, wrk and backends on CPU 1 (default);
                     float: only proxy (CPU 0) and wrk (CPU 1) pinned; none
  --json FILE        also write all results as JSON
  --ready-timeout S  how long a target may take to come up (default 10)
  --sluice FILE      Sluice's entry point, run with node (default bin/sluice.js, the package bin)
  --check            exit 1 unless Sluice ran and met every target
  --keep             keep the temp dir with the generated configs and logs
  -h, --help`;

interface Options {
  duration: number;
  warmup: number;
  rounds: number;
  connections: number[];
  threads: number;
  only: TargetName[];
  pin: string;
  json?: string;
  readyTimeout: number;
  sluice: string;
  check: boolean;
  keep: boolean;
}

function fail(msg: string): never {
  console.error(`bench: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function parseOptions(): Options {
  let parsed: ReturnType<typeof parseArgs<{ options: Record<string, { type: 'string' | 'boolean' }> }>>;
  try {
    parsed = parseArgs({
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rounds: { type: 'string' },
        connections: { type: 'string' },
        threads: { type: 'string' },
        only: { type: 'string' },
        pin: { type: 'string' },
        json: { type: 'string' },
        'ready-timeout': { type: 'string' },
        sluice: { type: 'string' },
        check: { type: 'boolean' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    fail((e as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name: string, def: number, min: number): number => {
    const raw = v[name];
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) fail(`--${name}: expected a number ≥ ${min}, got "${raw}"`);
    return n;
  };
  const int = (name: string, def: number, min: number): number => {
    const n = num(name, def, min);
    if (!Number.isInteger(n)) fail(`--${name}: expected a whole number, got "${n}"`);
    return n;
  };
  const only = typeof v.only === 'string' ? v.only.split(',').map((s) => s.trim()) : [...ALL_TARGETS];
  for (const t of only) {
    if (!(ALL_TARGETS as readonly string[]).includes(t)) fail(`--only: unknown target "${t}"`);
  }
  const connections = (typeof v.connections === 'string' ? v.connections : '64,256,1024')
    .split(',')
    .map((c) => Number(c.trim()));
  if (connections.some((c) => !Number.isInteger(c) || c < 1))
    fail(`--connections: expected whole numbers ≥ 1, got "${v.connections}"`);
  connections.sort((a, b) => a - b);
  const pin = typeof v.pin === 'string' ? v.pin : 'split';
  if (!(pin in PIN_LAYOUTS)) fail(`--pin: expected ${Object.keys(PIN_LAYOUTS).join(' | ')}`);
  return {
    duration: int('duration', 10, 1),
    warmup: int('warmup', 1, 0),
    rounds: int('rounds', 3, 1),
    connections: [...new Set(connections)],
    threads: int('threads', 1, 1),
    only: ALL_TARGETS.filter((t) => only.includes(t)),
    pin,
    json: typeof v.json === 'string' ? v.json : undefined,
    readyTimeout: num('ready-timeout', 10, 1),
    sluice: typeof v.sluice === 'string' ? path.resolve(v.sluice) : path.join(ROOT, 'bin/sluice.js'),
    check: v.check === true,
    keep: v.keep === true,
  };
}

// ---- small helpers ----

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return 'not found';
  return (
    `${r.stdout ?? ''}${r.stderr ?? ''}`
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? 'unknown'
  );
}

/** Short versions: "nginx/1.22.1", "HAProxy 2.6.12", "wrk 4.1.0". */
function versions(): Record<string, string> {
  const nginx = firstLine('nginx', ['-v']).replace(/^nginx version:\s*/, '');
  const haproxy = firstLine('haproxy', ['-v']).replace(/^HAProxy version (\S+).*$/, 'HAProxy $1');
  const wrk = firstLine('wrk', ['-v']).replace(/^wrk (\S+).*$/, 'wrk $1');
  return {
    node: `node ${process.version}`,
    sluice: `sluice ${pkgVersion(ROOT)} (${gitRev()})`,
    nginx,
    haproxy,
    wrk,
    httpProxy: `http-proxy ${pkgVersion(path.join(ROOT, 'node_modules/http-proxy'))}`,
  };
}

/** One line for the table: "exited with code 1 — <the line of its output that says why>". */
function shortReason(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Node\.js v/.test(l) && !/^at /.test(l));
  if (lines.length < 2) return lines[0] ?? s;
  const why = [...lines.slice(1)]
    .reverse()
    .find((l) => /error|alert|emerg|fatal|cannot|failed|refused|EADDR/i.test(l));
  return `${(lines[0] as string).replace(/:$/, '')} — ${why ?? lines.at(-1)}`;
}

function hasCommand(cmd: string): boolean {
  return !spawnSync('sh', ['-c', `command -v ${cmd}`], { timeout: 5000 }).status;
}

function pkgVersion(dir: string): string {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function gitRev(): string {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'no commit';
  }
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (ms: number) => (ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`);
const fmtMB = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const fmtRatio = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? '—' : `${x.toFixed(2)}×`;

// ---- targets ----

type Run = WrkResult & {
  connections: number;
  cpuSeconds: number;
  /** The user-space part of cpuSeconds (the rest is the kernel's, mostly the socket calls). */
  userSeconds: number;
  otherLoad: number;
  steal: number;
};

interface Target {
  name: TargetName;
  port: number;
  server?: Server;
  skipped?: string;
  runs: Run[];
  /** Per connection count: peak RSS (VmHWM) and RSS now (VmRSS) after its rounds. */
  memory: Map<number, { peak: number; now: number }>;
  died?: string;
}

interface Ctx {
  opts: Options;
  tmp: string;
  webRoot: string;
  backendPorts: number[];
  cpus: { proxy?: string; backends?: string; wrk?: string };
}

function startNginx(ctx: Ctx, name: string, conf: string, cpus: string | undefined): Server {
  const prefix = path.join(ctx.tmp, name);
  mkdirSync(prefix, { recursive: true });
  const file = path.join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  // -e: the error log before the config is read; the default one is root-owned /var/log/nginx.
  return startServer(name, 'nginx', ['-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', file], {
    cpus,
  });
}

/** The multi-core rows: two workers or threads, on both CPUs (wrk and the backends share CPU 1). */
const MULTI_CORE: ReadonlySet<TargetName> = new Set(['sluice-2w', 'haproxy-2t', 'nginx-proxy-2w']);

async function startTarget(ctx: Ctx, t: Target): Promise<Server | string> {
  const { tmp, backendPorts } = ctx;
  const cpus = {
    ...ctx.cpus,
    proxy: MULTI_CORE.has(t.name) && ctx.cpus.proxy !== undefined ? '0,1' : ctx.cpus.proxy,
  };
  switch (t.name) {
    case 'backend':
      // A fourth nginx with the backends' config, in the proxy's place (CPU 0 under `split`):
      // the ceiling of what this machine, loopback and wrk allow, without a proxy hop.
      return startNginx(
        ctx,
        'backend-direct',
        nginxStaticConf(path.join(tmp, 'backend-direct'), ctx.webRoot, [t.port]),
        cpus.proxy,
      );
    case 'sluice':
    case 'sluice-nolog':
    case 'sluice-2w':
    case 'sluice-cache': {
      // Sluice as shipped: its defaults, access log on, written to stdout, which goes to a file
      // (as a container's stdout goes to the engine's json-file log). sluice-nolog: the same
      // with `accessLog: false`. sluice-2w: the defaults with two workers on both CPUs.
      // sluice-cache: defaults with `cache: true` on the route; the backends' answers are
      // cacheable for an hour, so after the first miss every request is a cache hit.
      const main = ctx.opts.sluice;
      if (!existsSync(main)) return `${path.relative(ROOT, main)} does not exist yet`;
      const file = path.join(tmp, `${t.name}.yaml`);
      const options = {
        adminPort: (await freePorts(1))[0] as number,
        cache: t.name === 'sluice-cache',
        ...(t.name === 'sluice-nolog' ? { accessLog: false as const } : {}),
      };
      writeFileSync(file, sluiceYaml(t.port, backendPorts, options));
      // The same V8 flag as `npm start`, the `sluice` bin and the image: Sluice as users run it.
      // The number of workers comes from the environment, which a build without workers ignores.
      return startServer(t.name, process.execPath, ['--max-semi-space-size=8', main, '--config', file], {
        cwd: ROOT,
        cpus: cpus.proxy,
        env: { ...process.env, SLUICE_WORKERS: t.name === 'sluice-2w' ? '2' : '1' },
        stdoutFile: path.join(tmp, `${t.name}.stdout.log`),
      });
    }
    case 'haproxy':
    case 'haproxy-2t': {
      if (!hasCommand('haproxy')) return 'haproxy is not installed';
      const file = path.join(tmp, `${t.name}.cfg`);
      writeFileSync(file, haproxyConf(t.port, backendPorts, t.name === 'haproxy-2t' ? 2 : 1));
      return startServer('haproxy', 'haproxy', ['-db', '-f', file], { cpus: cpus.proxy });
    }
    case 'nginx-proxy':
    case 'nginx-proxy-2w':
      return startNginx(
        ctx,
        t.name,
        nginxProxyConf(path.join(tmp, t.name), t.port, backendPorts, t.name === 'nginx-proxy-2w' ? 2 : 1),
        cpus.proxy,
      );
    case 'http-proxy':
    case 'node-pipe':
    case 'node-plain':
    case 'node-plain-cache': {
      // The Node peers written here run with Sluice's V8 flag: they differ only in what their code does.
      const flags = t.name === 'http-proxy' ? [] : ['--max-semi-space-size=8'];
      const script = path.join(
        ROOT,
        `bench/peers/${t.name === 'http-proxy' ? 'http-proxy-server' : t.name.replace('-cache', '')}.ts`,
      );
      const backends = backendPorts.map((p) => `127.0.0.1:${p}`).join(',');
      const cache = t.name === 'node-plain-cache' ? ['--cache'] : [];
      return startServer(
        t.name,
        process.execPath,
        [...flags, script, '--port', String(t.port), '--backends', backends, ...cache],
        // node-plain's access log goes to a file, as Sluice's does.
        { cwd: ROOT, cpus: cpus.proxy, stdoutFile: path.join(tmp, `${t.name}.stdout.log`) },
      );
    }
  }
}

/** Starts Sluice once and stops it, which writes Node's compile cache (see bin/sluice.js). */
async function warmSluice(ctx: Ctx): Promise<void> {
  const port = (await freePorts(1))[0] as number;
  const file = path.join(ctx.tmp, 'warm.yaml');
  writeFileSync(file, sluiceYaml(port, ctx.backendPorts, { adminPort: (await freePorts(1))[0] as number }));
  const server = startServer('sluice-warm', process.execPath, [ctx.opts.sluice, '--config', file], {
    cwd: ROOT,
    stdoutFile: path.join(ctx.tmp, 'warm.stdout.log'),
  });
  await waitReady(server, port, `/${FILE}`, FILE_SIZE, ctx.opts.readyTimeout * 1000);
  await stopServer(server);
}

/** The file the backends serve: web/1k.txt when it is there, else one made in the temp dir. */
function webRoot(tmp: string): { root: string; note: string } {
  const repoFile = path.join(ROOT, 'web', FILE);
  if (existsSync(repoFile) && statSync(repoFile).size === FILE_SIZE) {
    return { root: path.join(ROOT, 'web'), note: `web/${FILE}` };
  }
  const root = path.join(tmp, 'www');
  mkdirSync(root, { recursive: true });
  const line = 'Sluice benchmark payload: 1024 bytes of plain text, served by nginx.\n';
  writeFileSync(path.join(root, FILE), line.repeat(Math.ceil(FILE_SIZE / line.length)).slice(0, FILE_SIZE));
  const why = existsSync(repoFile) ? `web/${FILE} is not ${FILE_SIZE} bytes` : `web/${FILE} is missing`;
  return { root, note: `generated ${FILE_SIZE}-byte ${FILE} (${why})` };
}

// ---- main ----

/** CPU counters around a measured run (seconds); `bench` is the backends, wrk and this process. */
function snapshot(target: number[], backends: number[]) {
  const m = machineCpuSeconds();
  return {
    at: Date.now(),
    target: cpuTimes(target),
    bench: cpuSeconds(backends) + selfAndReapedCpuSeconds(),
    busy: m.busy,
    steal: m.steal,
  };
}

let tmpDir: string | undefined;
let keepTmp = false;
let stopping = false;

/** After Ctrl-C, main parks here while the signal handler stops the servers and exits. */
async function halted(): Promise<void> {
  if (stopping) await new Promise(() => {});
}

async function cleanup(): Promise<string[]> {
  killWrk();
  const notes = await stopAll(5000);
  if (tmpDir && !keepTmp) rmSync(tmpDir, { recursive: true, force: true });
  return notes;
}

async function main(): Promise<number> {
  const opts = parseOptions();
  keepTmp = opts.keep;

  for (const cmd of ['wrk', 'nginx']) {
    if (!hasCommand(cmd)) fail(`${cmd} is not installed (apt-get install ${cmd})`);
  }
  const nproc = os.availableParallelism();
  let pin = opts.pin;
  if (pin !== 'none' && (nproc < 2 || !hasCommand('taskset'))) {
    console.log(`note: pinning needs taskset and 2 CPUs; running with --pin none`);
    pin = 'none';
  }

  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  const web = webRoot(tmpDir);
  const ports = await freePorts(3 + opts.only.length);
  const ctx: Ctx = {
    opts,
    tmp: tmpDir,
    webRoot: web.root,
    backendPorts: ports.slice(0, 3),
    cpus: PIN_LAYOUTS[pin] as Ctx['cpus'],
  };
  const url = (port: number) => `http://127.0.0.1:${port}/${FILE}`;

  // Machine and versions.
  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  console.log('# Sluice benchmark\n');
  console.log(`- machine: ${nproc} CPUs (nproc), ${cpuModel}, Linux ${os.release()}`);
  console.log(
    `- load average at start: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const vers = versions();
  console.log(`- versions: ${Object.values(vers).join(', ')}`);
  console.log(
    `- load: wrk -t${opts.threads} -c{${opts.connections.join(',')}} -d${opts.duration}s --latency GET /${FILE} ` +
      `(${web.note}); warm-up ${opts.warmup} s before each run; ${opts.rounds} round(s) per connection count, interleaved`,
  );
  const c = ctx.cpus;
  const where = (cpu: string | undefined) => (cpu === undefined ? 'any CPU' : `CPU ${cpu}`);
  console.log(
    `- pinning: ${pin} (proxy on ${where(c.proxy)}, backends on ${where(c.backends)}, wrk on ${where(c.wrk)})`,
  );
  console.log(`- temp dir: ${tmpDir}${opts.keep ? ' (kept)' : ''}\n`);

  // Backends: one nginx master, one worker, three server blocks on three ports.
  const backends = startNginx(
    ctx,
    'backends',
    nginxStaticConf(path.join(tmpDir, 'backends'), web.root, ctx.backendPorts),
    c.backends,
  );
  for (const port of ctx.backendPorts) {
    const why = await waitReady(backends, port, `/${FILE}`, FILE_SIZE, opts.readyTimeout * 1000);
    await halted();
    if (why) throw new Error(`nginx backends did not come up: ${why}`);
  }

  // Sluice's bin keeps Node's compile cache (stripped TypeScript) on disk, so every start after
  // the first one runs without the type stripper: 30 MB less RSS. One start and stop first, so
  // that the measured Sluice is one that has started before, as it is on a user's machine.
  if (opts.only.some((t) => t.startsWith('sluice'))) await warmSluice(ctx);

  // Targets: any that does not come up is skipped with the reason.
  const earlyNotes: string[] = [];
  const targets: Target[] = opts.only.map((name, i) => ({
    name,
    port: ports[3 + i] as number,
    runs: [],
    memory: new Map(),
  }));
  for (const t of targets) {
    const started = await startTarget(ctx, t);
    if (typeof started === 'string') {
      t.skipped = started;
    } else {
      const why = await waitReady(started, t.port, `/${FILE}`, FILE_SIZE, opts.readyTimeout * 1000);
      await halted();
      t.server = started;
      if (why) {
        t.skipped = why;
        // Stop it now, so that it takes no CPU while the others are measured.
        const note = await stopServer(started);
        if (note) earlyNotes.push(note);
      }
    }
    console.log(t.skipped ? `skip ${t.name}: ${t.skipped}` : `up   ${t.name} on :${t.port}`);
  }
  console.log('');

  // Rounds, for each connection count in turn (ascending: the peak RSS read after a count's
  // rounds is then that count's peak).
  const active = () => targets.filter((t) => !t.skipped && !t.died);
  for (const connections of opts.connections) {
    for (let round = 0; round < opts.rounds; round++) {
      const list = active();
      const order = list.map((_, i) => list[(i + round) % list.length] as Target);
      for (const t of order) {
        await measure(t, { connections, round, url: url(t.port), backends, opts, wrkCpus: c.wrk, nproc });
      }
    }
    for (const t of active()) {
      const pids = processTree((t.server as Server).pid);
      t.memory.set(connections, { peak: peakRssBytes(pids), now: rssBytes(pids) });
    }
  }

  const stopNotes = [...earlyNotes, ...(await cleanup())];
  tmpDir = undefined;

  return report(opts, targets, stopNotes, {
    nproc,
    cpuModel,
    pin,
    file: web.note,
    versions: vers,
  });
}

/** One measured wrk run of one target (after its warm-up), appended to its runs. */
async function measure(
  t: Target,
  m: {
    connections: number;
    round: number;
    url: string;
    backends: Server;
    opts: Options;
    wrkCpus: string | undefined;
    nproc: number;
  },
): Promise<void> {
  const { opts, connections, nproc } = m;
  const server = t.server as Server;
  const load = { url: m.url, connections, threads: opts.threads, cpus: m.wrkCpus };
  const tag = `c${connections} round ${m.round + 1}/${opts.rounds}`;
  try {
    if (opts.warmup > 0) await runWrk({ ...load, duration: opts.warmup });
    await halted();
    const pids = processTree(server.pid);
    const benchPids = processTree(m.backends.pid);
    const before = snapshot(pids, benchPids);
    const r = await runWrk({ ...load, duration: opts.duration });
    await halted();
    const after = snapshot(pids, benchPids);
    const user = after.target.user - before.target.user;
    const cpu = user + after.target.system - before.target.system;
    // CPU time the machine spent outside this benchmark (other jobs), and hypervisor steal,
    // in % of all CPUs over the run: the noise this run suffered.
    const wall = (after.at - before.at) / 1000;
    const ours = cpu + after.bench - before.bench;
    const otherLoad = Math.max(0, (after.busy - before.busy - ours) / (wall * nproc)) * 100;
    const steal = ((after.steal - before.steal) / (wall * nproc)) * 100;
    t.runs.push({ ...r, connections, cpuSeconds: cpu, userSeconds: user, otherLoad, steal });
    const errs = r.non2xx + r.socketErrors;
    console.log(
      `${tag} ${t.name.padEnd(12)} ${fmtInt(r.rps).padStart(8)} req/s  ` +
        `p50 ${fmtMs(r.p50)}  p99 ${fmtMs(r.p99)}  cpu ${((cpu / Math.max(1, r.requests)) * 1e6).toFixed(1)} µs/req` +
        `  other load ${otherLoad.toFixed(0)}%${steal >= 1 ? ` steal ${steal.toFixed(0)}%` : ''}` +
        (errs ? `  errors ${errs} (non-2xx ${r.non2xx}, socket ${r.socketErrors})` : ''),
    );
  } catch (e) {
    await halted();
    t.died = `${(e as Error).message}`;
    console.log(`${tag} ${t.name}: ${t.died}`);
  }
  if (!server.isRunning()) {
    t.died = `${t.name} ${await server.exited} during the run${server.output() ? `: ${server.output().slice(-500)}` : ''}`;
    console.log(t.died);
  }
}

interface Summary {
  rps: number;
  p50: number;
  p99: number;
  cpuPerReqUs: number;
  userPerReqUs: number;
  spread: number;
  errors: number;
  peakRss?: number;
  rss?: number;
}

function summarize(t: Target, connections: number): Summary | undefined {
  const runs = t.runs.filter((r) => r.connections === connections);
  if (runs.length === 0) return undefined;
  const rps = median(runs.map((r) => r.rps));
  const memory = t.memory.get(connections);
  return {
    rps,
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    cpuPerReqUs: median(runs.map((r) => (r.cpuSeconds / Math.max(1, r.requests)) * 1e6)),
    userPerReqUs: median(runs.map((r) => (r.userSeconds / Math.max(1, r.requests)) * 1e6)),
    spread: (Math.max(...runs.map((r) => r.rps)) - Math.min(...runs.map((r) => r.rps))) / rps,
    errors: runs.reduce((a, r) => a + r.non2xx + r.socketErrors, 0),
    peakRss: memory?.peak,
    rss: memory?.now,
  };
}

type Check = { name: string; ok: boolean; value: string };

/** The table of one connection count, with the lines that compare rows; returns its summaries. */
function reportSeries(opts: Options, targets: Target[], connections: number): Map<TargetName, Summary> {
  const sums = new Map<TargetName, Summary>();
  for (const t of targets) {
    const s = summarize(t, connections);
    if (s) sums.set(t.name, s);
  }
  const ha = sums.get('haproxy');
  const np = sums.get('node-pipe');
  const sl = sums.get('sluice');
  const off = sums.get('sluice-nolog');
  const sc = sums.get('sluice-cache');
  const be = sums.get('backend');
  const nf = sums.get('node-plain');
  const nfc = sums.get('node-plain-cache');

  console.log(
    `\n## Results: ${connections} connections, medians over ${opts.rounds} round(s) of ${opts.duration} s\n`,
  );
  console.log(
    '| target | req/s | spread | p50 | p99 | CPU/req | of it user | CPU/req ÷ node-pipe | peak RSS | RSS after | errors | req/s ÷ HAProxy | p99 ÷ HAProxy |',
  );
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const t of targets) {
    const s = sums.get(t.name);
    if (!s) {
      const why = shortReason(t.skipped ?? t.died ?? 'no result');
      console.log(`| ${t.name} | skipped: ${why} | | | | | | | | | | | |`);
      continue;
    }
    console.log(
      `| ${t.name} | ${fmtInt(s.rps)} | ${opts.rounds > 1 ? `±${((s.spread / 2) * 100).toFixed(0)}%` : '—'} | ` +
        `${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ${s.cpuPerReqUs.toFixed(1)} µs | ${s.userPerReqUs.toFixed(1)} µs | ` +
        `${fmtRatio(np && s.cpuPerReqUs / np.cpuPerReqUs)} | ` +
        `${s.peakRss === undefined ? '—' : fmtMB(s.peakRss)} | ${s.rss === undefined ? '—' : fmtMB(s.rss)} | ` +
        `${s.errors} | ${fmtRatio(ha && s.rps / ha.rps)} | ${fmtRatio(ha && s.p99 / ha.p99)} |`,
    );
  }
  if (sl && off)
    console.log(
      `\nAccess log on ÷ off (sluice ÷ sluice-nolog): ${fmtRatio(sl.rps / off.rps)} req/s, ` +
        `${fmtRatio(sl.cpuPerReqUs / off.cpuPerReqUs)} CPU/req, ${fmtRatio(sl.p99 / off.p99)} p99`,
    );
  if (sl && np)
    console.log(
      `Sluice ÷ node-pipe (Node moving bytes, parsing nothing): ${fmtRatio(sl.rps / np.rps)} req/s, ` +
        `${fmtRatio(sl.cpuPerReqUs / np.cpuPerReqUs)} CPU/req: in user space ${sl.userPerReqUs.toFixed(1)} ÷ ` +
        `${np.userPerReqUs.toFixed(1)} µs (${fmtRatio(sl.userPerReqUs / np.userPerReqUs)}), in the kernel ` +
        `${(sl.cpuPerReqUs - sl.userPerReqUs).toFixed(1)} ÷ ${(np.cpuPerReqUs - np.userPerReqUs).toFixed(1)} µs ` +
        `(${fmtRatio((sl.cpuPerReqUs - sl.userPerReqUs) / (np.cpuPerReqUs - np.userPerReqUs))})`,
    );
  if (nf && np)
    console.log(
      `node-plain ÷ node-pipe (Sluice's job written plainly, without its checks): ` +
        `${fmtRatio(nf.rps / np.rps)} req/s, ${fmtRatio(nf.cpuPerReqUs / np.cpuPerReqUs)} CPU/req` +
        (sl
          ? `; Sluice ÷ node-plain: ${fmtRatio(sl.rps / nf.rps)} req/s, ${fmtRatio(sl.cpuPerReqUs / nf.cpuPerReqUs)} CPU/req`
          : ''),
    );
  if (sc && be)
    console.log(
      `Cached answers: sluice-cache ÷ backend (nginx serving the file itself): ` +
        `${fmtRatio(sc.rps / be.rps)} req/s, ${fmtRatio(sc.p99 / be.p99)} p99` +
        (sl ? `; sluice-cache ÷ sluice (proxied): ${fmtRatio(sc.rps / sl.rps)} req/s` : ''),
    );
  if (nfc && be)
    console.log(
      `node-plain-cache ÷ backend: ${fmtRatio(nfc.rps / be.rps)} req/s, ${fmtRatio(nfc.cpuPerReqUs / be.cpuPerReqUs)} CPU/req` +
        (sc
          ? `; sluice-cache ÷ node-plain-cache: ${fmtRatio(sc.rps / nfc.rps)} req/s, ${fmtRatio(sc.cpuPerReqUs / nfc.cpuPerReqUs)} CPU/req`
          : ''),
    );
  return sums;
}

function report(
  opts: Options,
  targets: Target[],
  stopNotes: string[],
  machine: { nproc: number; cpuModel: string; pin: string; file: string; versions: Record<string, string> },
): number {
  const series = new Map(opts.connections.map((c) => [c, reportSeries(opts, targets, c)]));
  console.log(
    '\nspread: half the range of req/s over the rounds, relative to the median. ' +
      'CPU/req: user+system CPU time of the target process tree during the measured run ÷ requests. ' +
      'peak RSS: VmHWM after the rounds of that connection count (counts run in ascending order), ' +
      'RSS after: VmRSS then; both summed over the process tree (nginx: master + worker). ' +
      'Sluice and nginx-proxy write an access line per request (Sluice: to stdout, a file here; ' +
      'nginx: its unbuffered default); HAProxy logs nothing by default.',
  );

  if (opts.connections.length > 1) {
    console.log('\n## Peak RSS against client connections\n');
    console.log(`| target | ${opts.connections.map((c) => `${c} conns`).join(' | ')} |`);
    console.log(`|---|${opts.connections.map(() => '--:').join('|')}|`);
    for (const t of targets) {
      if (t.memory.size === 0) continue;
      const cells = opts.connections.map((c) => {
        const m = t.memory.get(c);
        return m ? fmtMB(m.peak) : '—';
      });
      console.log(`| ${t.name} | ${cells.join(' | ')} |`);
    }
  }

  const runs = targets.flatMap((t) => t.runs);
  if (runs.length > 0) {
    const other = runs.map((r) => r.otherLoad);
    const steal = Math.max(...runs.map((r) => r.steal));
    const busy = Math.max(...other) >= 10 || steal >= 5;
    console.log(
      `\nOther load on the machine during the measured runs (CPU time outside the benchmark, % of all CPUs): ` +
        `median ${median(other).toFixed(0)}%, max ${Math.max(...other).toFixed(0)}%; max steal ${steal.toFixed(0)}%.` +
        (busy ? ' The machine was busy: expect noisy numbers, compare ratios, or run again.' : ''),
    );
  }

  // The targets of issue 12, at the smallest connection count (64 by default) and RSS at 1024.
  const first = opts.connections[0] as number;
  const sums = series.get(first) ?? new Map<TargetName, Summary>();
  const sl = sums.get('sluice');
  const checks: Check[] = [];
  let verdict: string;
  if (!sl) {
    const t = targets.find((x) => x.name === 'sluice');
    verdict = t
      ? `Sluice targets: NOT MEASURED (${shortReason(t.skipped ?? t.died ?? 'no result')})`
      : 'Sluice targets: NOT MEASURED (sluice not selected with --only)';
  } else {
    const add = (
      name: string,
      base: Summary | undefined,
      ok: (b: Summary) => boolean,
      value: (b: Summary) => string,
    ) =>
      checks.push(
        base ? { name, ok: ok(base), value: value(base) } : { name, ok: false, value: 'not measured' },
      );
    const at = `at ${first} conns`;
    add(
      `req/s ≥ 0.75× HAProxy ${at}`,
      sums.get('haproxy'),
      (b) => sl.rps >= 0.75 * b.rps,
      (b) => fmtRatio(sl.rps / b.rps),
    );
    add(
      `p99 ≤ 1.5× HAProxy ${at}`,
      sums.get('haproxy'),
      (b) => sl.p99 <= 1.5 * b.p99,
      (b) => fmtRatio(sl.p99 / b.p99),
    );
    add(
      `access log on ÷ off ≥ 0.92 ${at}`,
      sums.get('sluice-nolog'),
      (b) => sl.rps >= 0.92 * b.rps,
      (b) => fmtRatio(sl.rps / b.rps),
    );
    add(
      `CPU/req ≤ 1.25× node-pipe ${at}`,
      sums.get('node-pipe'),
      (b) => sl.cpuPerReqUs <= 1.25 * b.cpuPerReqUs,
      (b) => fmtRatio(sl.cpuPerReqUs / b.cpuPerReqUs),
    );
    for (const [conns, limit] of [
      [64, 120e6],
      [1024, 200e6],
    ] as const) {
      const s = series.get(conns)?.get('sluice');
      if (!opts.connections.includes(conns)) continue;
      add(
        `peak RSS < ${limit / 1e6} MB at ${conns} conns`,
        s,
        (b) => (b.peakRss ?? Infinity) < limit,
        (b) => (b.peakRss ? fmtMB(b.peakRss) : '—'),
      );
    }
    const errors = [...series.values()].reduce((a, m) => a + (m.get('sluice')?.errors ?? 0), 0);
    if (errors > 0) checks.push({ name: 'no errors', ok: false, value: `${errors} errors` });
    const all = checks.every((x) => x.ok);
    verdict =
      `Sluice targets: ${all ? 'PASS' : 'FAIL'} — ` +
      checks.map((x) => `${x.name}: ${x.ok ? 'pass' : 'FAIL'} (${x.value})`).join('; ');
  }
  console.log(`\n${verdict}`);
  for (const n of stopNotes) console.log(`note: ${n}`);

  if (opts.json) {
    const data = {
      date: new Date().toISOString(),
      machine: { nproc: machine.nproc, cpuModel: machine.cpuModel, release: os.release(), pin: machine.pin },
      file: machine.file,
      versions: machine.versions,
      options: opts,
      targets: targets.map((t) => ({
        name: t.name,
        skipped: t.skipped,
        died: t.died,
        medians: Object.fromEntries(opts.connections.map((c) => [c, series.get(c)?.get(t.name)])),
        runs: t.runs.map(({ raw: _raw, ...r }) => r),
      })),
      checks,
      verdict,
      notes: stopNotes,
    };
    mkdirSync(path.dirname(path.resolve(opts.json)), { recursive: true });
    writeFileSync(opts.json, `${JSON.stringify(data, null, 2)}\n`);
    console.log(`results written to ${opts.json}`);
  }
  return opts.check && !(checks.length > 0 && checks.every((x) => x.ok)) ? 1 : 0;
}

// Stop every server we started, whatever happens.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: stopping the servers`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => killAllNow());

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    await halted();
    console.error(`bench: ${(e as Error).stack ?? e}`);
    await cleanup();
    process.exit(1);
  },
);
