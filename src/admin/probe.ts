// A health probe of Sluice's admin port, for places that have node but no curl: keepalived's
// track script in the VRRP sidecar (deploy/keepalived/), a HEALTHCHECK of a scratch image.
//
//   node probe.ts [PATH] [HOST:PORT]     exit 0 if PATH answered 200, 1 otherwise
//
// PATH defaults to /readyz; the address to SLUICE_ADMIN (as for `sluice serve`), else
// 127.0.0.1:9100; a wildcard host (0.0.0.0, ::) is probed on loopback. It imports nothing of
// Sluice, so this one file can be mounted into another image and run there.
import { connect } from 'node:net';

export const DEFAULT_ADMIN = '127.0.0.1:9100';

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

if (import.meta.main) {
  const [path = '/readyz', address = process.env.SLUICE_ADMIN || DEFAULT_ADMIN] = process.argv.slice(2);
  const status = await probeAdmin(address, path, 2000);
  process.exitCode = status === 200 ? 0 : 1;
}
