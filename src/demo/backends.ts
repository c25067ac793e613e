// The embedded demo: three small backends on loopback serving the demo site from web/, each
// saying which replica it is, so a newcomer sees Sluice balance without any setup.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEndpointServer, type EndpointResponse } from '../http/endpoint.ts';
import { listenOn } from '../proxy/server.ts';

const webRoot = fileURLToPath(new URL('../../web/', import.meta.url));

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.pdf': 'application/pdf',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

interface SiteFile {
  type: string;
  body: Buffer;
}

/** Every file of the site, read once: the demo site is small. */
function loadSite(root: string): Map<string, SiteFile> {
  const files = new Map<string, SiteFile>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else
        files.set(`/${relative(root, path)}`, {
          type: contentTypes[extname(name)] ?? 'application/octet-stream',
          body: readFileSync(path),
        });
    }
  };
  walk(root);
  return files;
}

export interface DemoBackend {
  name: string;
  server: Server;
  address: AddressInfo;
}

export async function startDemoBackends(count: number, host = '127.0.0.1'): Promise<DemoBackend[]> {
  const site = loadSite(webRoot);
  const backends: DemoBackend[] = [];
  for (let index = 1; index <= count; index++) {
    const name = `demo-${index}`;
    const server = createEndpointServer(({ head, path }): EndpointResponse => {
      if (head.method !== 'GET' && head.method !== 'HEAD')
        return { status: 405, headers: { 'x-backend': name } };
      const file = site.get(path.endsWith('/') ? `${path}index.html` : path);
      if (!file) return { status: 404, headers: { 'x-backend': name }, body: 'not found\n' };
      return { status: 200, headers: { 'content-type': file.type, 'x-backend': name }, body: file.body };
    });
    backends.push({ name, server, address: await listenOn(server, host, 0) });
  }
  return backends;
}
