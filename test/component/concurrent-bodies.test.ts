// Many responses at once through one Sluice, each body different, chunked or with a length,
// up to 8 MiB, written by the backend in pieces of 1 byte to 96 KiB, read by fast and by slow clients (whose
// socket writes queue up in Sluice). Every backend socket reads into one shared buffer
// (src/upstream/connection.ts): a read kept past its callback, or handed to the wrong exchange,
// shows here as a body that differs.
import { createHash } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { seeded } from '../support/seeded.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

const mib = 1024 * 1024;
/** Every third body goes to a slow reader, and is larger than the socket buffers take (4 MiB+). */
const slowReader = (seed: number) => seed % 3 === 0;

/** The body for `seed`: its size and bytes follow from the seed alone. */
function body(seed: number): Buffer {
  const random = seeded(seed);
  const size = slowReader(seed) ? 5 * mib + Math.floor(random() * 3 * mib) : 1 + Math.floor(random() * mib);
  const words = Buffer.allocUnsafe(size + 3);
  for (let at = 0; at < size; at += 4) words.writeUInt32LE(Math.floor(random() * 2 ** 32), at);
  return words.subarray(0, size);
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let backend: NodeBackend;
let sluice: RunningSluice;

test.before(async () => {
  backend = await startNodeBackend(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const seed = Number(url.searchParams.get('seed'));
    const bytes = body(seed);
    const chunked = url.searchParams.has('chunked');
    response.writeHead(200, chunked ? {} : { 'content-length': bytes.length });
    // Pieces of varied size, some a tick apart, so Sluice reads them in many sizes.
    const random = seeded(seed + 1);
    for (let at = 0; at < bytes.length; ) {
      const size = Math.min(bytes.length - at, 1 + Math.floor(random() ** 3 * 96 * 1024));
      response.write(bytes.subarray(at, at + size));
      at += size;
      if (random() < 0.3) await new Promise((resolve) => setImmediate(resolve));
    }
    response.end();
  });
  sluice = await startProxy(quietYaml({ web: [backend.port] }));
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

/**
 * GETs body `seed` over `agent`. A slow reader reads nothing for its first 50 ms (so the socket
 * buffers fill and Sluice must queue what it writes), then pauses after every chunk.
 */
function fetchBody(agent: http.Agent, seed: number, chunked: boolean, slow: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const path = `/body?seed=${seed}${chunked ? '&chunked' : ''}`;
    http
      .get({ host: '127.0.0.1', port: sluice.address.port, path, agent }, (response) => {
        const hash = createHash('sha256');
        if (slow) {
          response.pause();
          setTimeout(() => response.resume(), 50);
        }
        response.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          if (slow) {
            response.pause();
            setTimeout(() => response.resume(), 2);
          }
        });
        response.on('end', () => resolve(hash.digest('hex')));
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

test('48 bodies, 16 at a time over kept-alive connections, fast and slow readers: every byte intact', async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const seeds = Array.from({ length: 48 }, (_, index) => 1000 + index);
  const got = await Promise.all(
    seeds.map((seed) => fetchBody(agent, seed, seed % 2 === 0, slowReader(seed))),
  );
  agent.destroy();
  const wrong = seeds.filter((seed, index) => got[index] !== sha256(body(seed)));
  t.deepEqual(wrong, []);
});
