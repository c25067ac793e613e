// Request bodies: a string, a file (streamed, its length from stat) or stdin (read fully, so
// Content-Length is known and the body can be sent again for --repeat or a 307/308 redirect).
import { constants, createReadStream, openSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
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

/** All of a stream; when `signal` aborts (--max-time) the stream is destroyed, so it keeps nothing alive. */
async function readAll(stream: Readable, signal: AbortSignal): Promise<RequestBody> {
  const parts: (Buffer | string)[] = await stream.toArray({ signal }).finally(() => stream.destroy());
  return fromBytes(Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part))));
}

export async function loadBody(
  source: BodySource,
  stdin: Readable,
  cwd: string,
  signal: AbortSignal,
): Promise<RequestBody> {
  if (source.kind === 'bytes') return fromBytes(source.bytes);
  if (source.kind === 'stdin') return readAll(stdin, signal);
  const path = resolve(cwd, source.path);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw readError(source.path, error);
  }
  if (info.isDirectory()) throw readError(source.path, Object.assign(new Error(), { code: 'EISDIR' }));
  if (info.isFIFO()) {
    // Read as a socket, not with readFile: a thread-pool read of a pipe blocks until its writer
    // writes or closes, and even process.exit waits for it. O_NONBLOCK: open does not wait either.
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      throw readError(source.path, error);
    }
    return readAll(new Socket({ fd, readable: true, writable: false }), signal);
  }
  if (!info.isFile()) {
    // A device has no length to announce: read it fully.
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
