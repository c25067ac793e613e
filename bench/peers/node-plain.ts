// Sluice's default job written plainly on Node, with none of its checks: what the job itself
// costs on Node, next to node-pipe (which parses nothing) and Sluice (which checks everything).
// Backend connections are kept alive and shared (round robin); the request's head is scanned for
// its hop-by-hop and forwarding fields; X-Forwarded-For/-Proto/-Host, Forwarded, Via and
// X-Request-Id are added; the response's head is scanned for its framing and given Via; and a
// JSON access line per request goes into a 64 KiB buffer written to stdout by size and every
// 100 ms. It handles only what the benchmark sends (bodiless requests, each answer's head in one
// read, Content-Length) and has no timeouts, limits, retries, health checks or metrics.
// With --cache it keeps the first whole answer for each host and target, and answers later GETs
// of it from memory with an Age field, freshness unchecked: a cache hit, written plainly.
// Backend sockets read as Sluice's and node-pipe's do (Node's `onread` into one shared buffer).
//
//   node bench/peers/node-plain.ts --port 8083 --backends 127.0.0.1:9001,127.0.0.1:9002 [--cache]
//
// Prints "listening <port>" once ready; exits on SIGTERM/SIGINT.

import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import net from 'node:net';
import { peerArgs } from './args.ts';

const { host, port, backends: targets, cache } = peerArgs('node-plain.ts');

interface StoredAnswer {
  bytes: Buffer;
  headEnd: number; // where the head's last CRLF starts: the Age line goes there
  storedAt: number;
}
const stored = new Map<string, StoredAnswer>();

const CRLF2 = Buffer.from('\r\n\r\n');
const readBuffer = Buffer.allocUnsafe(64 * 1024);
const VIA = Buffer.from('Via: 1.1 node-plain\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const dropped = new Set([
  'connection',
  'keep-alive',
  'te',
  'upgrade',
  'proxy-connection',
  'x-forwarded-for',
  'forwarded',
  'via',
]);

const log = Buffer.allocUnsafe(64 * 1024);
let logged = 0;
function flushLog(): void {
  if (logged > 0) writeSync(1, log, 0, logged);
  logged = 0;
}
setInterval(flushLog, 100).unref();
function logLine(line: string): void {
  if (process.env.FLOOR_NOLOG) return;
  if (logged + line.length * 3 > log.length) flushLog();
  logged += log.write(line, logged);
}

let stampedAt = 0;
let stamp = '';
/** The time as ISO 8601, made once per millisecond. */
function timestamp(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = new Date(now).toISOString();
  }
  return stamp;
}

let ids = 0;
const idPrefix = randomBytes(6).toString('hex');

interface Exchange {
  client: net.Socket;
  clientIp: string;
  clientPort: number;
  method: string;
  target: string;
  host: string;
  id: string;
  started: number;
  bodyLeft: number; // -1 until the response's head is read
  status: number;
  bytesOut: number;
}

const idle: Backend[][] = targets.map(() => []);
let next = 0;

class Backend {
  readonly socket: net.Socket;
  readonly index: number;
  exchange: Exchange | null = null;
  constructor(index: number) {
    this.index = index;
    const target = targets[index] as { host: string; port: number };
    this.socket = net.connect({
      ...target,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (size) => this.read(size) },
    });
    this.socket.on('error', () => this.exchange?.client.destroy());
    this.socket.on('close', () => {
      const pool = idle[this.index] as Backend[];
      const at = pool.indexOf(this);
      if (at >= 0) pool.splice(at, 1);
      this.exchange?.client.destroy();
    });
  }

  /** Relays the `size` bytes just read into the shared buffer. */
  read(size: number): boolean {
    const ex = this.exchange;
    if (!ex) return true;
    let out: Buffer;
    const end = ex.bodyLeft < 0 ? readBuffer.subarray(0, size).indexOf(CRLF2) : -1;
    if (end >= 0) {
      // The whole head came in one read (the benchmark's answers always do): Via goes before its
      // last CRLF, and the head and the body bytes with it leave in one write.
      const head = readBuffer.toString('latin1', 0, end + 2);
      ex.status = Number(head.slice(9, 12));
      const length = CONTENT_LENGTH.exec(head);
      ex.bodyLeft = Number(length?.[1] ?? 0) - (size - end - 4);
      out = Buffer.allocUnsafe(size + VIA.length);
      readBuffer.copy(out, 0, 0, end + 2);
      VIA.copy(out, end + 2);
      readBuffer.copy(out, end + 2 + VIA.length, end + 2, size);
      if (cache && ex.bodyLeft === 0 && ex.method === 'GET') {
        stored.set(ex.host + ex.target, { bytes: out, headEnd: end + 2 + VIA.length, storedAt: Date.now() });
      }
    } else if (ex.bodyLeft < 0) {
      this.socket.destroy(); // a head split over reads: not handled here
      return false;
    } else {
      ex.bodyLeft -= size;
      out = Buffer.from(readBuffer.subarray(0, size));
    }
    ex.bytesOut += out.length;
    ex.client.write(out);
    if (ex.bodyLeft <= 0) this.done(ex);
    return true;
  }

  done(ex: Exchange): void {
    this.exchange = null;
    (idle[this.index] as Backend[]).push(this);
    logExchange(ex, this.index);
  }
}

/** The access line of an exchange, answered by a backend or (backend -1) from memory. */
function logExchange(ex: Exchange, backend: number): void {
  const t = targets[backend];
  const upstream = t
    ? `"pool":"web","backend":"b${backend + 1}","backendAddress":"${t.host}:${t.port}","backendStatus":${ex.status},"attempts":1,`
    : '"cache":"HIT",';
  logLine(
    `{"timestamp":"${timestamp()}","level":"info","message":"access","type":"access","requestId":${JSON.stringify(ex.id)},"client":"${ex.clientIp}","clientPort":${ex.clientPort},"method":"${ex.method}","host":${JSON.stringify(ex.host)},"path":${JSON.stringify(ex.target)},"protocol":"HTTP/1.1","status":${ex.status},${upstream}"bytesIn":0,"bytesOut":${ex.bytesOut},"durationMs":${(performance.now() - ex.started).toFixed(3)}}\n`,
  );
}

/** Writes a stored answer with its Age, and logs it. */
function answerStored(ex: Exchange, copy: StoredAnswer): void {
  const age = `Age: ${Math.floor((Date.now() - copy.storedAt) / 1000)}\r\n`;
  const out = Buffer.allocUnsafe(copy.bytes.length + age.length);
  copy.bytes.copy(out, 0, 0, copy.headEnd);
  out.write(age, copy.headEnd, 'latin1');
  copy.bytes.copy(out, copy.headEnd + age.length, copy.headEnd);
  ex.status = 200;
  ex.bytesOut = out.length;
  ex.client.write(out);
  logExchange(ex, -1);
}

function forward(client: net.Socket, head: string): void {
  const lineEnd = head.indexOf('\r\n');
  const [method = '', target = ''] = head.slice(0, lineEnd).split(' ');
  let kept = '';
  let hostName = '';
  let id = '';
  for (let at = lineEnd + 2; at > 1; ) {
    const eol = head.indexOf('\r\n', at);
    const line = eol < 0 ? head.slice(at) : head.slice(at, eol);
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    if (name === 'host') hostName = line.slice(colon + 1).trim();
    else if (name === 'x-request-id') id = line.slice(colon + 1).trim();
    if (!dropped.has(name) && name !== 'x-request-id') kept += `${line}\r\n`;
    at = eol < 0 ? 0 : eol + 2;
  }
  if (id === '') id = `${idPrefix}-${++ids}`;
  const clientIp = client.remoteAddress ?? '';
  const ex: Exchange = {
    client,
    clientIp,
    clientPort: client.remotePort ?? 0,
    method,
    target,
    host: hostName,
    id,
    started: performance.now(),
    bodyLeft: -1,
    status: 0,
    bytesOut: 0,
  };
  const copy = cache && method === 'GET' ? stored.get(hostName + target) : undefined;
  if (copy) {
    answerStored(ex, copy);
    return;
  }
  const index = next;
  next = (next + 1) % targets.length;
  const backend = (idle[index] as Backend[]).pop() ?? new Backend(index);
  backend.exchange = ex;
  backend.socket.write(
    `${method} ${target} HTTP/1.1\r\n${kept}X-Forwarded-For: ${clientIp}\r\nX-Forwarded-Proto: http\r\n` +
      `X-Forwarded-Host: ${hostName}\r\nForwarded: for=${clientIp};host="${hostName}";proto=http\r\n` +
      `Via: 1.1 node-plain\r\nX-Request-Id: ${id}\r\n\r\n`,
    'latin1',
  );
}

const server = net.createServer({ noDelay: true }, (client) => {
  let pending: Buffer | null = null;
  client.on('data', (chunk: Buffer) => {
    let bytes = pending ? Buffer.concat([pending, chunk]) : chunk;
    for (let end = bytes.indexOf(CRLF2); end >= 0; end = bytes.indexOf(CRLF2)) {
      forward(client, bytes.toString('latin1', 0, end));
      bytes = bytes.subarray(end + 4);
    }
    pending = bytes.length > 0 ? bytes : null;
  });
  client.on('error', () => client.destroy());
});

server.listen(port, host, () => {
  console.log(`listening ${port}`);
});

const stop = () => {
  flushLog();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
