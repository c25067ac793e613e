// The command as users start it: `sluice serve` needs a config, `npm start` runs the demo and
// passes signals to it, and `npm test`'s Docker check says what is missing.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { dockerEndpoint, dockerProblem } from '../support/require-docker.ts';
import { envWithoutSluice, runCommand } from '../support/run.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

function sluice(args: string[]) {
  return runCommand(process.execPath, [MAIN, ...args], { env: envWithoutSluice(), timeout: 10_000 });
}

for (const args of [['serve'], [], ['--listen', '127.0.0.1:0']]) {
  test(`sluice ${args.join(' ') || '(no arguments)'} without a config file exits 2 with one line`, async (t) => {
    const { code, stdout, stderr } = await sluice(args);
    t.is(code, 2);
    t.is(stdout, '');
    t.is(
      stderr,
      'sluice serve: no config file: give --config FILE or SLUICE_CONFIG (sluice demo runs the demo)\n',
    );
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test('npm start serves the demo, and SIGTERM to npm stops Sluice and frees the port', async (t) => {
  const npm = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--admin', 'off'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ended = exited(npm);
  let output = '';
  npm.stdout?.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  npm.stderr?.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${output}`)), 20_000);
    npm.stdout?.on('data', () => {
      const match = /"try":"curl -i http:\/\/127\.0\.0\.1:(\d+)\/"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  const backends = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const header = await new Promise<string>((resolve, reject) => {
      http
        .get({ port, host: '127.0.0.1', path: '/', agent: false }, (response) => {
          response.resume();
          resolve(String(response.headers['x-backend']));
        })
        .on('error', reject);
    });
    backends.add(header);
  }
  t.deepEqual([...backends].sort(), ['demo-1', 'demo-2', 'demo-3']);

  npm.kill('SIGTERM');
  const code = await Promise.race([ended, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
  t.not(code, 'still running');
  t.regex(output, /"message":"stopped"/);
  t.true(await refused(port), `port ${port} still accepts connections after SIGTERM`);
});

test('the Docker check names the engine it could not reach', async (t) => {
  const socketPath = path.join(tmpdir(), `sluice-no-docker-${process.pid}.sock`);
  t.regex(
    (await dockerProblem({ socketPath, label: `unix://${socketPath}` })) ?? '',
    new RegExp(`^no Docker engine answers at unix://${socketPath} \\(connect ENOENT`),
  );
});

test('the Docker check names a missing image, and passes when engine and image are there', async (t) => {
  const socketPath = path.join(tmpdir(), `sluice-fake-docker-${process.pid}.sock`);
  const engine = http.createServer((request, response) => {
    const ok = request.url === '/_ping' || request.url === '/images/sluice-local%2Fnginx%3A1.22/json';
    response.writeHead(ok ? 200 : 404).end();
  });
  await new Promise<void>((resolve) => engine.listen(socketPath, resolve));
  t.teardown(() => engine.close());
  const endpoint = { socketPath, label: 'fake' };
  t.is(await dockerProblem(endpoint, 'sluice-local/nginx:1.22'), undefined);
  t.is(
    await dockerProblem(endpoint, 'nginx:1.27-alpine'),
    'the image nginx:1.27-alpine (NGINX_IMAGE) is not in the Docker engine at fake',
  );
});

test('DOCKER_HOST picks the engine as the docker client does', (t) => {
  t.deepEqual(dockerEndpoint('unix:///run/user/1000/docker.sock'), {
    socketPath: '/run/user/1000/docker.sock',
    label: 'unix:///run/user/1000/docker.sock',
  });
  t.deepEqual(dockerEndpoint('tcp://10.0.0.2:2376'), {
    host: '10.0.0.2',
    port: 2376,
    label: 'tcp://10.0.0.2:2376',
  });
  t.is(dockerEndpoint(undefined).socketPath, '/var/run/docker.sock');
});
