// Raw-socket HTTP exchanges for tests: exact bytes out, every byte back.
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

export interface RawResult {
  text: string;
  bytes: Buffer;
  /** The server closed the connection (rather than the idle wait running out). */
  closed: boolean;
}

/**
 * Sends `request` and collects what comes back until the server closes or nothing arrives for
 * `idleMs`. `halfClose` shuts down the sending side after the request.
 */
export function rawExchange(
  port: number,
  request: string | Buffer,
  options: { idleMs?: number; halfClose?: boolean } = {},
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const idleMs = options.idleMs ?? 500;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(chunks);
      resolve({ bytes, text: bytes.toString('latin1'), closed });
    };
    let timer = setTimeout(() => finish(false), idleMs + 1000);
    socket.on('connect', () => {
      socket.write(request);
      if (options.halfClose) socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
    });
    socket.on('end', () => finish(true));
    socket.on('error', reject);
  });
}

/** Opens a socket and resolves once connected. */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with the next data the socket receives (accumulated until `until` matches). */
export function readUntil(
  socket: Readable,
  until: (text: string) => boolean,
  timeoutMs = 3000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`timed out waiting; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (until(text)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

/** Status codes of every response in a byte stream, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((match) => Number(match[1]));
}

/**
 * `count` connections to `port`, each with a request in progress that never ends (a header line
 * every `everyMs`): a connection limit full of connections none may close. `finish()` ends their
 * requests; `stop()` their trickle.
 */
export async function tricklingRequests(
  port: number,
  count: number,
  everyMs = 100,
): Promise<{ sockets: Socket[]; finish(): void; stop(): void }> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = await openSocket(port);
    socket.on('error', () => {});
    socket.write('GET /healthz HTTP/1.1\r\nHost: a\r\n');
    sockets.push(socket);
  }
  const timer = setInterval(() => {
    for (const socket of sockets) socket.write('X-Slow: y\r\n');
  }, everyMs);
  const stop = () => clearInterval(timer);
  return {
    sockets,
    stop,
    finish() {
      stop();
      for (const socket of sockets) socket.write('\r\n');
    },
  };
}

/**
 * Opens a connection, writes `request` (nothing if empty), and resolves once the server closed
 * it (an end or a reset), or after `giveUpMs`: what came back, and after how many ms.
 */
export function untilClosed(
  port: number,
  request: string | Buffer,
  giveUpMs = 5000,
): Promise<{ text: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port }, () => {
      if (request.length > 0) socket.write(request);
    });
    const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(giveUp);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - started });
    });
    socket.once('end', () => socket.destroy());
  });
}
