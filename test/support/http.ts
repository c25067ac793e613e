// A node:http request to a local port, answered as status, headers and the whole body (tests
// may use any client; Sluice itself does not).
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  port: number;
  path: string;
  method?: string;
  /** The Host header (default `site.test`). */
  host?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: http.Agent;
}

export function httpRequest(options: RequestOptions): Promise<Reply> {
  const { body } = options;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: options.port,
        path: options.path,
        agent: options.agent,
        method: options.method ?? 'GET',
        headers: {
          host: options.host ?? 'site.test',
          // Node frames no body of a DELETE by itself.
          ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
