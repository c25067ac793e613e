// A 1 GB upload and a 1 GB download pass through Sluice with flat memory: bodies stream with
// backpressure and are never held whole. "Flat" is measured against the idle process: what a
// transfer adds is V8 garbage (read buffers freed lazily, up to its 64 MB external-memory soft
// limit), the same for 64 MB as for 1 GB.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import test from 'ava';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { freePort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { poolYaml } from '../support/sluice.ts';

const gigabyte = 1024 ** 3;
const block = Buffer.alloc(256 * 1024);
for (let index = 0; index < block.length; index++) block[index] = (index * 31 + 7) & 0xff;

/** `size` bytes of a fixed pattern, produced lazily. */
function pattern(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const piece = left >= block.length ? block : block.subarray(0, left);
      left -= piece.length;
      this.push(piece);
    },
  });
}

async function patternHash(size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of pattern(size)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

let backend: NodeBackend;
let sluice: ChildSluice;
let port: number;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    if (request.url === '/upload') {
      const hash = createHash('sha256');
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      request.on('end', () => response.end(JSON.stringify({ size, sha256: hash.digest('hex') })));
      return;
    }
    const size = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('size'));
    response.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
    pattern(size).pipe(response);
  });
  port = await freePort();
  sluice = await startChildSluice(poolYaml([backend.port]).replace('127.0.0.1:0', `127.0.0.1:${port}`));
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

const mib = 1024 * 1024;
/** What one transfer may add to the idle process's memory. */
const allowedGrowth = 100 * mib;

function upload(size: number): Promise<{ size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path: '/upload', method: 'PUT', headers: { 'content-length': size } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on('end', () => resolve(JSON.parse(text)));
      },
    );
    request.on('error', reject);
    pattern(size).pipe(request);
  });
}

function download(size: number): Promise<{ size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: `/download?size=${size}` }, (response) => {
        const hash = createHash('sha256');
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          hash.update(chunk);
        });
        response.on('end', () => resolve({ size: received, sha256: hash.digest('hex') }));
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

test.serial('1 GB up and 1 GB down arrive intact; memory stays flat', async (t) => {
  const idle = sluice.rss();
  const small = 64 * mib;
  t.deepEqual(await upload(small), { size: small, sha256: await patternHash(small) });
  t.deepEqual(await download(small), { size: small, sha256: await patternHash(small) });
  const afterSmall = sluice.peakRss();

  const expected = await patternHash(gigabyte);
  t.deepEqual(await upload(gigabyte), { size: gigabyte, sha256: expected });
  t.deepEqual(await download(gigabyte), { size: gigabyte, sha256: expected });
  const afterLarge = sluice.peakRss();

  const show = (bytes: number) => `${Math.round(bytes / mib)} MB`;
  t.log(
    `idle ${show(idle)}, peak after 64 MB each way ${show(afterSmall)}, after 1 GB each way ${show(afterLarge)}`,
  );
  t.true(afterLarge - idle < allowedGrowth, `grew ${show(afterLarge - idle)} over idle`);
  // Sixteen times the bytes, no more memory than V8 may leave uncollected anyway (its 64 MB
  // external-memory soft limit): anything held per byte would need 16 times what 64 MB needed.
  t.true(afterLarge - afterSmall < 64 * mib, `1 GB needed ${show(afterLarge - afterSmall)} more than 64 MB`);
});
