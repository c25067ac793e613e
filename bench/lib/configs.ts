// Configuration files of the servers under test, written into the run's temp dir.
// Every peer gets the settings a fair operator would give it for a keep-alive benchmark:
// one worker / one thread (Sluice is one Node.js thread: SLUICE_WORKERS=1), or two of each for
// the multi-core rows, keep-alive to the backends, its default logging (Sluice and nginx as a
// proxy: an access line per request; HAProxy logs nothing until a `log` target is configured;
// the nginx backends log nothing, they are the load side), and no cap on requests per
// connection (nginx closes a keep-alive connection after 1000 requests by default; HAProxy and
// Sluice do not), so every target serves the same long-lived client connections.

import { userInfo } from 'node:os';
import { DEFAULTS } from '../../src/config/defaults.ts';
import { clientConnectionLimit } from '../../src/proxy/descriptors.ts';

/** nginx as root would switch its workers to `nobody`, who cannot read our 0700 temp dir. */
function userLine(): string {
  if (process.getuid?.() !== 0) return '';
  return `user ${userInfo().username};\n`;
}

function nginxCommon(prefix: string, workers = 1): string {
  return `${userLine()}worker_processes ${workers};
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events {
  worker_connections 4096;
  multi_accept on;
}
`;
}

function nginxHttpCommon(prefix: string, accessLog: boolean): string {
  return `  access_log ${accessLog ? `${prefix}/access.log` : 'off'};
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  types { text/plain txt; text/html html; }
  default_type application/octet-stream;
`;
}

/**
 * Static file server: one nginx master, one worker, one server block per port. Responses are
 * cacheable for an hour (`Expires` and `Cache-Control: max-age=3600`), so the `sluice-cache`
 * target can serve them from its cache; proxies without a cache pass the two fields through.
 */
export function nginxStaticConf(prefix: string, root: string, ports: number[]): string {
  const servers = ports
    .map(
      (port) => `  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { expires 1h; }
  }
`,
    )
    .join('');
  return `${nginxCommon(prefix)}http {
${nginxHttpCommon(prefix, false)}  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=60s;
${servers}}
`;
}

// Every proxy does the work Sluice does by default, so the rows compare one job: X-Forwarded-For,
// -Proto and -Host, Forwarded (RFC 7239), Via both ways, X-Request-Id kept or made, and (where
// the proxy has them) active HEAD checks every 2 s.

/**
 * nginx as a reverse proxy: HTTP/1.1 upstream with a keep-alive cache of 1024 idle connections,
 * and its default access log (the `combined` format, one unbuffered write per request) to a
 * file. The cache holds as many as the bench's largest connection count: with `keepalive 64`
 * nginx closed and reopened upstream connections from 256 clients on (25,900 against 31,700
 * req/s at 256, 17,900 against 28,400 at 1024).
 */
export function nginxProxyConf(prefix: string, port: number, backends: number[], workers = 1): string {
  const servers = backends.map((p) => `    server 127.0.0.1:${p};\n`).join('');
  return `${nginxCommon(prefix, workers)}http {
${nginxHttpCommon(prefix, true)}  map $http_x_request_id $forward_request_id {
    default $http_x_request_id;
    "" $request_id;
  }
  upstream web {
${servers}    keepalive 1024;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header Forwarded "for=$remote_addr;host=\\"$http_host\\";proto=$scheme";
      proxy_set_header Via "1.1 nginx";
      proxy_set_header X-Request-Id $forward_request_id;
      add_header Via "1.1 nginx" always;
    }
  }
}
`;
}

/**
 * HAProxy with Sluice's connection limit as its `maxconn` (Sluice's default, lowered to fit the
 * descriptors, as Sluice lowers it). HAProxy keeps idle server connections only while under 20%
 * of its descriptors are in use (`tune.pool-low-fd-ratio`), a share of `maxconn`: at 4096 it
 * stopped keeping them near 1000 clients, closed a server connection after each request, and
 * served 10,700 req/s at 1024 connections where it serves 23,000 with the same limit as Sluice.
 */
export function haproxyConf(port: number, backends: number[], threads = 1): string {
  const servers = backends.map((p, i) => `  server b${i + 1} 127.0.0.1:${p}\n`).join('');
  const maxconn = clientConnectionLimit(DEFAULTS.limits.maxConnections, backends.length);
  return `global
  nbthread ${threads}
  maxconn ${maxconn}

defaults
  mode http
  option http-keep-alive
  http-reuse safe
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend fe
  bind 127.0.0.1:${port}
  unique-id-format %{+X}o%ci%cp%fi%fp%Ts%rt%pid
  http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header Forwarded "for=%[src];host=\\"%[req.hdr(host)]\\";proto=http"
  http-request add-header Via "1.1 haproxy"
  http-response add-header Via "1.1 haproxy"
  default_backend web

backend web
  balance roundrobin
  option httpchk HEAD /
  default-server check inter 2s rise 2 fall 3
${servers}`;
}

/**
 * Sluice with its defaults (access log on, to stdout; metrics and the admin port on; health
 * checks on; log level info), round robin over the backends. `cache` adds `cache: true` to the
 * route (the `sluice-cache` target: answers from Sluice's shared cache after the first miss);
 * `accessLog: false` is the one switch of the `sluice-nolog` row.
 */
export function sluiceYaml(
  port: number,
  backends: number[],
  options: { adminPort: number; cache?: boolean; accessLog?: false },
): string {
  const servers = backends.map((p) => `        - address: 127.0.0.1:${p}\n`).join('');
  return `listen: 127.0.0.1:${port}
admin: 127.0.0.1:${options.adminPort}
${options.accessLog === false ? 'accessLog: false\n' : ''}pools:
  web:
    servers:
${servers}routes:
  - host: "*"
    pool: web
${options.cache ? '    cache: true\n' : ''}`;
}
