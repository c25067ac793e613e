// Where body bytes are written: stdout (as they are, or as text on a terminal) or a file (a free
// name is found unless -o asked for one). Every write waits for 'drain' when the stream is full,
// so a 1 GB download keeps memory flat.
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ClientError, exitCodes } from './errors.ts';
import { numberedName, printable } from './output.ts';

export interface BodySink {
  write(chunk: Buffer): Promise<void>;
  /** Flushes and, for a file, closes it. */
  close(): Promise<void>;
  /** Gives up (an error elsewhere): a file keeps what was written so far and is closed. */
  abort(): Promise<void>;
}

/** Writes and, if the stream's buffer is full, waits until it drains (or `signal` aborts). */
export async function writeAll(stream: Writable, data: Buffer | string, signal?: AbortSignal): Promise<void> {
  if (stream.write(data)) return;
  await once(stream, 'drain', signal ? { signal } : {});
}

/** Resolves once everything written to `stream` so far has been handed on (stdout is never ended). */
export function flushed(stream: Writable): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    stream.write('', (error) => (error ? reject(error) : resolve()));
  });
}

/** The bytes unchanged on `stream` (stdout); it is never ended. */
export function rawSink(stream: Writable, signal?: AbortSignal): BodySink {
  return {
    write: (chunk) => writeAll(stream, chunk, signal),
    close: async () => {},
    abort: async () => {},
  };
}

/**
 * Text on a terminal: decoded from its charset (UTF-8 if TextDecoder does not know it) and
 * written as UTF-8, control characters but TAB, LF and CR shown as escapes (`-o -` passes the
 * bytes as they are). A NUL byte means binary: refused, as curl does, not dumped on the terminal.
 */
export function terminalSink(stream: Writable, encoding: string | undefined, signal?: AbortSignal): BodySink {
  const decoder = new TextDecoder(encoding ?? 'utf-8');
  const show = async (text: string) => {
    if (text.includes('\0')) {
      throw new ClientError(
        exitCodes.write,
        'binary output (a NUL byte) is not shown on a terminal: save it with -o FILE or -O, or print it anyway with -o -',
      );
    }
    if (text !== '') await writeAll(stream, printable(text, true), signal);
  };
  return {
    write: (chunk) => show(decoder.decode(chunk, { stream: true })),
    close: () => show(decoder.decode()),
    abort: async () => {},
  };
}

export interface FileSink extends BodySink {
  /** The path as shown to the user (relative to the working directory if given so). */
  path: string;
  bytes: number;
}

function writeError(path: string, error: unknown): ClientError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'ENOSPC'
          ? 'no space left on the device'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (error as Error).message;
  return new ClientError(exitCodes.write, `cannot write "${path}": ${why}`);
}

/** How many numbered names (`name.1` ...) are tried before giving up. */
const maxNumbered = 1000;

/**
 * Opens the file for the body. With `overwrite` the name is used as it is; otherwise `name`,
 * `name.1`, `name.2`, ... are tried with O_EXCL, so an existing file is never replaced.
 */
export async function openFileSink(
  cwd: string,
  dir: string | undefined,
  name: string,
  overwrite: boolean,
  signal?: AbortSignal,
): Promise<FileSink> {
  let handle: FileHandle | undefined;
  let shown = '';
  for (let n = 0; handle === undefined; n++) {
    const candidate = numberedName(name, n);
    shown = dir === undefined ? candidate : join(dir, candidate);
    try {
      handle = await open(resolve(cwd, shown), overwrite ? 'w' : 'wx');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (overwrite || code !== 'EEXIST') throw writeError(shown, error);
      if (n >= maxNumbered)
        throw writeError(shown, new Error(`${name} and ${maxNumbered} numbered copies exist`));
    }
  }
  const stream = handle.createWriteStream();
  const path = shown;
  let failure: ClientError | undefined;
  stream.on('error', (error) => {
    failure ??= writeError(path, error);
  });
  const sink: FileSink = {
    path,
    bytes: 0,
    write: async (chunk) => {
      if (failure) throw failure;
      sink.bytes += chunk.length;
      try {
        await writeAll(stream, chunk, signal);
      } catch (error) {
        throw failure ?? error;
      }
    },
    close: async () => {
      if (failure) throw failure;
      stream.end();
      try {
        await once(stream, 'close');
      } catch (error) {
        throw failure ?? writeError(path, error);
      }
      if (failure) throw failure;
    },
    abort: async () => {
      // end(), not destroy(): the queued writes reach the file, so it holds the bytes counted.
      // A file does not stall, so waiting for them keeps the run within --max-time.
      stream.end();
      await once(stream, 'close').catch(() => {});
    },
  };
  return sink;
}
