// A raw TCP backend for hostile-backend tests: it records every request exactly as it arrived
// and answers with whatever bytes the test scripts, including malformed or extra ones.
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

export interface ScriptedRequest {
  /** The whole request as received (head, body, trailers). */
  raw: string;
  /** The request line. */
  line: string;
  /** Header fields in order, names as sent. */
  headers: [string, string][];
  /** Which connection (0, 1, …) it came on. */
  connection: number;
}

export interface ScriptedBackend {
  server: Server;
  port: number;
  requests: ScriptedRequest[];
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export type Script = (request: ScriptedRequest, socket: Socket) => void;

/** The value of the first field `name` (any case), or undefined. */
export function fieldOf(request: ScriptedRequest, name: string): string | undefined {
  return request.headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
}

export async function startScriptedBackend(script: Script): Promise<ScriptedBackend> {
  const sockets = new Set<Socket>();
  const backend: ScriptedBackend = {
    server: createServer((socket) => {
      const connection = backend.connections++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      let buffer = '';
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (;;) {
          const size = requestSize(buffer);
          if (size === undefined) return;
          const raw = buffer.slice(0, size);
          buffer = buffer.slice(size);
          const lines = raw.slice(0, raw.indexOf('\r\n\r\n')).split('\r\n');
          const request: ScriptedRequest = {
            raw,
            line: lines[0] ?? '',
            headers: lines.slice(1).map((line) => {
              const colon = line.indexOf(':');
              return [line.slice(0, colon), line.slice(colon + 1).trim()];
            }),
            connection,
          };
          backend.requests.push(request);
          script(request, socket);
        }
      });
    }),
    port: 0,
    requests: [],
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        backend.server.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve) => backend.server.listen(0, '127.0.0.1', resolve));
  backend.port = (backend.server.address() as AddressInfo).port;
  return backend;
}

/** Length of the first whole request in `text` (by Content-Length or chunked), if complete. */
function requestSize(text: string): number | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = text.slice(0, end);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) {
    const size = end + 4 + Number(length[1]);
    return text.length >= size ? size : undefined;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
    // The body ends with the last chunk and an empty line after any trailers.
    let at = end + 4;
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd === -1) return undefined;
      const size = Number.parseInt(text.slice(at, lineEnd), 16);
      if (size === 0) {
        const close = text.indexOf('\r\n\r\n', lineEnd);
        return close === -1 ? undefined : close + 4;
      }
      at = lineEnd + 2 + size + 2;
      if (at > text.length) return undefined;
    }
  }
  return end + 4;
}

/** A complete small answer. */
export function reply(body: string, headers: Record<string, string> = {}, status = '200 OK'): string {
  let head = `HTTP/1.1 ${status}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
