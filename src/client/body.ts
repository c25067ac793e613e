// Request bodies: a string, a file (streamed, its length from stat) or stdin (read fully, so
// Content-Length is known and the body can be sent again for --repeat or a 307/308 redirect).
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { ClientError, exitCodes } from './errors.ts';
import type { BodySource } from './options.ts';

export interface RequestBody {
  length: number;
  /** The bytes, from the start, each time it is called. */
  chunks(): AsyncIterable<Buffer>;
}

function fromBytes(bytes: Buffer): RequestBody {
  return {
    length: bytes.length,
    async *chunks() {
      if (bytes.length > 0) yield bytes;
    },
  };
}

function readError(path: string, error: unknown): ClientError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : (error as Error).message;
  return new ClientError(exitCodes.read, `cannot read the request body from "${path}": ${why}`);
}

export async function loadBody(source: BodySource, stdin: Readable, cwd: string): Promise<RequestBody> {
  if (source.kind === 'bytes') return fromBytes(source.bytes);
  if (source.kind === 'stdin') {
    const parts: Buffer[] = [];
    for await (const chunk of stdin) parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return fromBytes(Buffer.concat(parts));
  }
  const path = resolve(cwd, source.path);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw readError(source.path, error);
  }
  if (info.isDirectory()) throw readError(source.path, Object.assign(new Error(), { code: 'EISDIR' }));
  if (!info.isFile()) {
    // A pipe or a device has no length to announce: read it fully.
    try {
      return fromBytes(await readFile(path));
    } catch (error) {
      throw readError(source.path, error);
    }
  }
  const length = info.size;
  return {
    length,
    async *chunks() {
      if (length === 0) return;
      // At most `length` bytes, so Content-Length holds even if the file grows meanwhile.
      const stream = createReadStream(path, { start: 0, end: length - 1 });
      let sent = 0;
      try {
        for await (const chunk of stream) {
          sent += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      } catch (error) {
        throw readError(source.path, error);
      }
      if (sent < length) {
        throw new ClientError(
          exitCodes.read,
          `"${source.path}" shrank while it was being sent (${sent} of ${length} bytes)`,
        );
      }
    },
  };
}
