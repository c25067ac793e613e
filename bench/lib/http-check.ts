// Readiness: a target is up when GET /1k.txt answers 200 with the 1024-byte body.

import http from 'node:http';
import type { Server } from './proc.ts';

function getOnce(port: number, path: string, timeoutMs: number): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until the server answers GET `path` with 200 and `size` bytes.
 * Resolves with undefined when ready, or with the reason it is not.
 */
export async function waitReady(
  server: Server,
  port: number,
  path: string,
  size: number,
  timeoutMs: number,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!server.isRunning()) {
      const how = await server.exited;
      const out = server.output();
      return `${how}${out ? `:\n${indent(out)}` : ''}`;
    }
    try {
      const r = await getOnce(port, path, 1000);
      if (r.status === 200 && r.bytes === size) return undefined;
      last = `GET ${path} answered ${r.status} with ${r.bytes} bytes (want 200 with ${size})`;
    } catch (e) {
      last = `GET ${path}: ${(e as Error).message}`;
    }
    await sleep(100);
  }
  const out = server.output();
  return `not ready within ${timeoutMs / 1000} s (${last})${out ? `:\n${indent(out)}` : ''}`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .slice(-15)
    .map((l) => `    ${l}`)
    .join('\n');
}
