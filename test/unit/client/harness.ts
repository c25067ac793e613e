// For the in-process tests of runClient: fake streams that capture what the client writes, and
// small raw node:net servers on 127.0.0.1 that answer as a test tells them.
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import test from 'ava';
import type { ClientIO } from '../../../src/client/run.ts';

export interface Captured {
  io: ClientIO;
  stdout: () => Buffer;
  stderr: () => string;
}

export function capture(
  options: { cwd?: string; stdin?: Buffer; highWaterMark?: number; stdoutIsTTY?: boolean } = {},
): Captured {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[], slow: boolean, highWaterMark?: number) =>
    new Writable({
      highWaterMark,
      write(chunk: Buffer | string, _encoding, callback) {
        into.push(Buffer.from(chunk));
        // stdout is asynchronous (as a pipe can be), so the client must wait for 'drain' and
        // for the last write before it resolves.
        if (slow) setImmediate(callback);
        else callback();
      },
    });
  return {
    io: {
      stdout: sink(out, true, options.highWaterMark),
      stderr: sink(err, false),
      stdin: Readable.from(options.stdin ? [options.stdin] : []),
      isTTY: false,
      stdoutIsTTY: options.stdoutIsTTY ?? true,
      cwd: options.cwd,
    },
    stdout: () => Buffer.concat(out),
    stderr: () => Buffer.concat(err).toString('utf8'),
  };
}

export interface Received {
  head: string;
  body: Buffer;
}

/** A server that reads one request per connection (head and Content-Length body) and lets `answer` reply. */
async function rawServer(
  answer: (request: Received, socket: Socket) => void,
): Promise<{ port: number; requests: Received[]; server: Server }> {
  const requests: Received[] = [];
  const server = createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffer.toString('latin1', 0, end + 4);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const request = { head, body: buffer.subarray(end + 4, end + 4 + length) };
        buffer = buffer.subarray(end + 4 + length);
        requests.push(request);
        answer(request, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, requests, server };
}

const servers: Server[] = [];
export async function serve(answer: (request: Received, socket: Socket) => void) {
  const s = await rawServer(answer);
  servers.push(s.server);
  return s;
}
test.after.always(() => {
  for (const server of servers) server.close();
});

export function reply(socket: Socket, head: string, body: Buffer | string = ''): void {
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]));
}
