// Real nginx backends in containers, for integration and chaos tests.
//
// The image comes from NGINX_IMAGE: by default `sluice-local/nginx:1.22`, built by
// scripts/build-images.sh from Debian's nginx (no registry needed); on a connected machine
// `NGINX_IMAGE=nginx:1.27-alpine` works the same, since both lay files out alike and the default
// server block below uses stock nginx only. Ryuk is disabled (TESTCONTAINERS_RYUK_DISABLED=true):
// every test file must stop what it starts, e.g. `test.after.always(() => stopNginxBackends(all))`.
import { randomBytes } from 'node:crypto';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer, Wait } from 'testcontainers';
import { NGINX_IMAGE } from './images.ts';

export { NGINX_IMAGE };

/** Where the demo site (web/) lives in the image, and the DAV upload directory. */
export const HTML_ROOT = '/usr/share/nginx/html';
export const UPLOAD_DIR = '/tmp/upload';

/**
 * `size` random bytes, none of them `<`, which nginx's SSI filter (it makes `/chunked/…` chunked)
 * sends back unchanged. It holds a trailing `<`, `<!`, `<!-` or `<!--` as a directive's start and
 * drops it at the end (one random body in 256 ends in `<`), and it would run a `<!--#` directive.
 */
export function ssiInertBytes(size: number): Buffer {
  const bytes = randomBytes(size);
  for (let at = bytes.indexOf(0x3c); at !== -1; at = bytes.indexOf(0x3c, at + 1)) bytes[at] = 0x3e;
  return bytes;
}

export interface NginxBackend {
  /** `nginx-1`, `nginx-2`, ...; also sent back in the `X-Backend` response header. */
  name: string;
  /** Always an IP literal (127.0.0.1), never `localhost`, which would resolve to two addresses. */
  host: string;
  /** The host port mapped to the container's port 80. */
  port: number;
  /** `host:port`, as a Sluice server address. */
  address: string;
  container: StartedTestContainer;
  /** `http://host:port` + path. */
  url(path?: string): string;
  /** Stops and removes the container; safe to call more than once, also while paused. */
  stop(): Promise<void>;
  /** Everything the container wrote so far (stdout and stderr: access and error log). */
  logs(): Promise<string>;
  /** Freezes every process in the container (cgroup freezer): connections hang, nothing is refused. */
  pause(): Promise<void>;
  unpause(): Promise<void>;
}

export interface NginxFile {
  /** An absolute path in the container, e.g. `/usr/share/nginx/html/big.bin`. */
  target: string;
  content: string | Buffer;
  mode?: number;
}

export interface NginxBackendOptions {
  /** The whole of /etc/nginx/conf.d/default.conf for the backend of this name. */
  serverConf?: (name: string) => string;
  /** More files to put in each container before it starts. */
  files?: (name: string) => NginxFile[];
  /** Backends are named `${namePrefix}-1` ... (default `nginx`). */
  namePrefix?: string;
  image?: string;
  /** Milliseconds to wait for `GET /` to answer (default 30 s). */
  startupTimeout?: number;
}

/**
 * The default server block. Every response (any status) carries:
 * - `X-Backend: <name>`;
 * - `X-Conn` (nginx's connection serial number) and `X-Conn-Requests` (requests so far on that
 *   connection), to see keep-alive reuse;
 * - what the backend received: `X-Seen-Host` ($host), `X-Seen-Http-Host` (the raw Host header),
 *   `X-Seen-Method`, `X-Seen-Uri` (the request target), `X-Seen-Forwarded-For`, `X-Seen-Forwarded-Proto`,
 *   `X-Seen-Forwarded-Host`, `X-Seen-Forwarded`, `X-Seen-Via`, `X-Seen-Request-Id`, `X-Seen-Connection`,
 *   `X-Seen-Env`, `X-Seen-Debug`. nginx leaves out a header whose value is empty, so a request header
 *   that did not arrive has no `X-Seen-` header at all.
 *
 * Locations:
 * - `/` the demo site (web/);
 * - `/upload/` WebDAV PUT and DELETE into /tmp/upload (any body size, intermediate directories made);
 *   GET of the same URL returns the stored bytes. PUT answers 201 (created) or 204 (replaced);
 * - `/chunked` the 1 KiB text file (web/1k.txt) sent with `Transfer-Encoding: chunked` (SSI removes
 *   Content-Length); `/chunked/<path>` any file of the site chunked; `/chunked/upload/<path>` an
 *   uploaded file chunked. SSI parses what it sends: upload `ssiInertBytes` to get them back whole;
 * - `/nginx_status` stub_status.
 *
 * `extra` is put inside the server block (more locations or directives).
 */
export function defaultServerConf(name: string, extra = ''): string {
  return `server {
    listen 80;
    server_name localhost;
    root ${HTML_ROOT};
    index index.html;
    keepalive_requests 10000;
    keepalive_timeout 65s;

    add_header X-Backend "${name}" always;
    add_header X-Conn $connection always;
    add_header X-Conn-Requests $connection_requests always;
    add_header X-Seen-Host $host always;
    add_header X-Seen-Http-Host $http_host always;
    add_header X-Seen-Method $request_method always;
    add_header X-Seen-Uri $request_uri always;
    add_header X-Seen-Forwarded-For $http_x_forwarded_for always;
    add_header X-Seen-Forwarded-Proto $http_x_forwarded_proto always;
    add_header X-Seen-Forwarded-Host $http_x_forwarded_host always;
    add_header X-Seen-Forwarded $http_forwarded always;
    add_header X-Seen-Via $http_via always;
    add_header X-Seen-Request-Id $http_x_request_id always;
    add_header X-Seen-Connection $http_connection always;
    add_header X-Seen-Env $http_x_env always;
    add_header X-Seen-Debug $http_x_debug always;

    location / {
    }

    location /upload/ {
        alias ${UPLOAD_DIR}/;
        dav_methods PUT DELETE;
        create_full_put_path on;
        dav_access user:rw group:rw all:r;
        client_max_body_size 0;
        client_body_temp_path /tmp/client_body;
    }

    # SSI drops Content-Length, so HTTP/1.1 responses go out chunked.
    location = /chunked {
        ssi on;
        ssi_types *;
        default_type text/plain;
        alias ${HTML_ROOT}/1k.txt;
    }
    location /chunked/ {
        ssi on;
        ssi_types *;
        alias ${HTML_ROOT}/;
    }
    location /chunked/upload/ {
        ssi on;
        ssi_types *;
        alias ${UPLOAD_DIR}/;
    }

    location = /nginx_status {
        stub_status;
    }
${extra}}
`;
}

/** Starts `count` nginx containers in parallel; if any fails, the others are stopped again. */
export async function startNginxBackends(
  count: number,
  options: NginxBackendOptions = {},
): Promise<NginxBackend[]> {
  const prefix = options.namePrefix ?? 'nginx';
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
  const settled = await Promise.allSettled(names.map((name) => startNginxBackend(name, options)));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopNginxBackends(started);
    throw failed.reason;
  }
  return started;
}

/** Starts one nginx container named `name`. */
export async function startNginxBackend(
  name: string,
  options: NginxBackendOptions = {},
): Promise<NginxBackend> {
  const conf = (options.serverConf ?? defaultServerConf)(name);
  const files = options.files?.(name) ?? [];
  const container = await new GenericContainer(options.image ?? NGINX_IMAGE)
    .withExposedPorts(80)
    .withLabels({ 'org.sluice.test': 'nginx-backend', 'org.sluice.backend': name })
    .withCopyContentToContainer([
      { content: conf, target: '/etc/nginx/conf.d/default.conf', mode: 0o644 },
      ...files.map((f) => ({ content: f.content, target: f.target, mode: f.mode ?? 0o644 })),
    ])
    .withWaitStrategy(Wait.forHttp('/', 80).forStatusCodeMatching((status) => status < 500))
    .withStartupTimeout(options.startupTimeout ?? 30_000)
    .start();

  return backendHandle(name, ipHost(container.getHost()), container.getMappedPort(80), container);
}

/** The Docker API's view of a started container (pause, kill, inspect …). */
export async function dockerContainer(container: StartedTestContainer) {
  return (await getContainerRuntimeClient()).container.getById(container.getId());
}

/** The handle tests use for a started nginx container reachable at host:port. */
export function backendHandle(
  name: string,
  host: string,
  port: number,
  container: StartedTestContainer,
): NginxBackend {
  let stopped: Promise<void> | undefined;
  const docker = () => dockerContainer(container);
  return {
    name,
    host,
    port,
    address: `${host}:${port}`,
    container,
    url: (path = '/') => `http://${host}:${port}${path}`,
    logs: async () => (await containerLogs(container)).all,
    pause: async () => {
      await (await docker()).pause();
    },
    unpause: async () => {
      await (await docker()).unpause();
    },
    stop: () => {
      stopped ??= (async () => {
        const info = await (await docker()).inspect().catch(() => undefined);
        if (info?.State.Paused) await (await docker()).unpause();
        await container.stop();
      })();
      return stopped;
    },
  };
}

/** Stops every backend (in parallel), ignoring those already stopped; never throws for one failure. */
export async function stopNginxBackends(backends: readonly NginxBackend[]): Promise<void> {
  const results = await Promise.allSettled(backends.map((b) => b.stop()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** A container's output so far: `stdout`, `stderr` and both interleaved in order (`all`). */
export async function containerLogs(
  container: StartedTestContainer,
): Promise<{ stdout: string; stderr: string; all: string }> {
  const client = await getContainerRuntimeClient();
  const raw = await client.container
    .getById(container.getId())
    .logs({ follow: false, stdout: true, stderr: true });
  // Without a TTY the engine multiplexes: frames of [stream, 0, 0, 0, size (uint32 BE)] + payload.
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const kind = raw[offset];
    const size = raw.readUInt32BE(offset + 4);
    const payload = raw.subarray(offset + 8, offset + 8 + size);
    (kind === 2 ? err : out).push(payload);
    all.push(payload);
    offset += 8 + size;
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    all: Buffer.concat(all).toString('utf8'),
  };
}

export interface AccessLogEntry {
  remoteAddr: string;
  method: string;
  /** The request target as received, e.g. `/upload/x.bin?y=1`. */
  path: string;
  protocol: string;
  status: number;
  bytesSent: number;
  userAgent: string;
  forwardedFor: string;
  line: string;
}

// nginx's `main` format, the same in the official image and in docker/nginx/nginx.conf.
const ACCESS_LINE =
  /^(\S+) - \S+ \[[^\]]+\] "(\S+) (\S+) ([^"]+)" (\d{3}) (\d+) "[^"]*" "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

export function parseAccessLogLine(line: string): AccessLogEntry | undefined {
  const m = ACCESS_LINE.exec(line);
  if (!m) return undefined;
  return {
    remoteAddr: m[1] ?? '',
    method: m[2] ?? '',
    path: m[3] ?? '',
    protocol: m[4] ?? '',
    status: Number(m[5]),
    bytesSent: Number(m[6]),
    userAgent: m[7] ?? '',
    forwardedFor: m[8] === '-' ? '' : (m[8] ?? ''),
    line,
  };
}

/**
 * The backend's access log (its stdout), one parsed entry per request; with `where`, only the
 * entries it accepts. nginx writes a line after the response is sent and the engine copies it a
 * moment later: pass `atLeast` to wait (up to `timeoutMs`, default 3 s) until that many entries
 * are there; it resolves with what there is then. Count with `where`: Sluice's health checks add
 * lines of their own at any time.
 */
export async function accessLog(
  backend: NginxBackend,
  options: { where?: (entry: AccessLogEntry) => boolean; atLeast?: number; timeoutMs?: number } = {},
): Promise<AccessLogEntry[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 3_000);
  const where = options.where ?? (() => true);
  for (;;) {
    const { stdout } = await containerLogs(backend.container);
    const entries = stdout
      .split('\n')
      .map(parseAccessLogLine)
      .filter((e): e is AccessLogEntry => e !== undefined && where(e));
    if (entries.length >= (options.atLeast ?? 0) || Date.now() >= deadline) return entries;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function ipHost(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host;
}
