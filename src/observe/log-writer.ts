// A buffered line writer, as nginx's `access_log … buffer=64k flush=1s`: lines collect in memory
// and go out in one write when the buffer is full or the oldest line is `flushMs` old, so a
// request costs a copy into the buffer and no system call. Writes are synchronous (as nginx's
// are): a flush is one write(2) of up to `bufferBytes` to a file, and nothing is queued behind
// the event loop. To stdout, see `output`.
//
// Loss on a crash: an exception that ends the process still runs the `exit` flush; a SIGKILL,
// an OOM kill or a native abort loses what is buffered: at most `flushMs` worth of lines.
import { accessSync, closeSync, constants, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Linux's PIPE_BUF: writes up to this size to a pipe are never split. */
const pipeBuf = 4096;

/** Where the lines go: the process's stdout, or a file (appended to, reopened on demand). */
export type LogDestination = { kind: 'stdout' } | { kind: 'file'; path: string };

export interface LogWriterOptions {
  destination: LogDestination;
  /** Flush once this many bytes are buffered. */
  bufferBytes: number;
  /** Flush at the latest this long after the first buffered line. */
  flushMs: number;
  /**
   * A write to the file failed (a full disk, EIO): the batch is lost, not the process, and
   * nothing waiting on the log waits for ever.
   */
  onError?: (error: NodeJS.ErrnoException, droppedBytes: number) => void;
}

/**
 * What stdout is, which decides how a flush reaches it: `file`, one write(2); `pipe` (a pipe or
 * a socket), write(2)s of at most PIPE_BUF cut at line ends; `stream`, process.stdout (a
 * terminal, or whatever fstat cannot tell).
 */
type StdoutKind = 'file' | 'pipe' | 'stream';

function stdoutKind(): StdoutKind {
  try {
    const stat = fstatSync(1);
    if (stat.isFile()) return 'file';
    return stat.isFIFO() || stat.isSocket() ? 'pipe' : 'stream';
  } catch {
    return 'stream';
  }
}

export class LogWriter {
  readonly destination: LogDestination;
  private readonly bufferBytes: number;
  private readonly flushMs: number;
  private readonly stdout: StdoutKind;
  /** Lines are written into this buffer as they come (see `reserve`), and kept until a flush. */
  readonly buffer: Buffer;
  private used = 0;
  private fd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly flushOnTime = () => {
    this.timer = undefined;
    this.flush();
  };
  private readonly flushOnExit = () => this.flush();
  private readonly onError: LogWriterOptions['onError'];

  constructor(options: LogWriterOptions) {
    this.destination = options.destination;
    this.bufferBytes = options.bufferBytes;
    this.flushMs = options.flushMs;
    this.onError = options.onError;
    this.buffer = Buffer.allocUnsafe(Math.max(4096, options.bufferBytes));
    this.stdout = options.destination.kind === 'stdout' ? stdoutKind() : 'stream';
    this.open();
    process.on('exit', this.flushOnExit);
  }

  /**
   * The longest write that reaches the destination whole, whoever else writes to it: PIPE_BUF to
   * stdout on a pipe or socket; a file's writes (O_APPEND) and a terminal's are not split.
   */
  get atomicBytes(): number {
    return this.stdout === 'pipe' ? pipeBuf : Number.POSITIVE_INFINITY;
  }

  /**
   * Room for a line of at most `maxBytes`, after a flush if the buffer cannot take it: the offset
   * in `buffer` to write it at, then `commit`. -1 when closed, or when the buffer could never take
   * that much (then `write` the line).
   */
  reserve(maxBytes: number): number {
    if (this.closed || maxBytes > this.buffer.length) return -1;
    if (this.used + maxBytes > this.buffer.length) this.flush();
    return this.used;
  }

  /** Ends the line written at `reserve`'s offset: `end` is just past its newline. */
  commit(end: number): void {
    this.used = end;
    if (this.used >= this.bufferBytes) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(this.flushOnTime, this.flushMs);
      this.timer.unref();
    }
  }

  /** Buffers whole lines (newlines included); what is longer than the buffer goes out at once. */
  write(lines: Buffer): void {
    const at = this.reserve(lines.length);
    if (at >= 0) {
      this.commit(at + lines.copy(this.buffer, at));
    } else if (!this.closed) {
      this.flush();
      this.output(lines);
    }
  }

  /** Writes out what is buffered, now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.used === 0) return;
    const bytes = this.buffer.subarray(0, this.used);
    this.used = 0;
    this.output(bytes);
  }

  /**
   * To a file: one write. To stdout, workers share it: on a pipe, whole lines in writes of at
   * most PIPE_BUF bytes, which the kernel never splits, so the lines of two workers never
   * interleave mid-line (see pipeChunks). Each a write(2) of its own on fd 1, not through
   * process.stdout's stream, whose machinery costs more than the write; when the pipe is full
   * (EAGAIN) the rest goes through process.stdout, which queues it, and so do later flushes until
   * that queue is empty, so the lines keep their order.
   */
  private output(bytes: Buffer): void {
    if (this.fd !== undefined) {
      try {
        writeAll(this.fd, bytes);
      } catch (error) {
        this.onError?.(error as NodeJS.ErrnoException, bytes.length);
      }
      return;
    }
    let written = 0;
    if (this.stdout !== 'stream' && process.stdout.writableLength === 0) {
      written = writeDirect(1, bytes, this.stdout === 'pipe' ? pipeBuf : bytes.length);
    }
    if (written === bytes.length) return;
    // The stream may keep what it is given: a copy, as the buffer is reused.
    for (const chunk of pipeChunks(Buffer.from(bytes.subarray(written)), pipeBuf))
      process.stdout.write(chunk);
  }

  /**
   * Flushes, then opens the file again by its name (after logrotate moved it away). If the file
   * cannot be opened, the old one is kept and the error thrown.
   */
  reopen(): void {
    this.flush();
    const old = this.fd;
    if (old === undefined || this.destination.kind !== 'file') return;
    this.fd = openSync(this.destination.path, 'a');
    closeSync(old);
  }

  /** Flushes and closes; later lines are dropped. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    process.off('exit', this.flushOnExit);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    if (this.destination.kind === 'file') this.fd = openSync(this.destination.path, 'a');
  }
}

/** All of `bytes` to a file, however many write(2)s it takes. */
function writeAll(fd: number, bytes: Buffer): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
}

/**
 * `bytes` to `fd` in pieces of at most `max` cut at line ends, until one fails or is cut short
 * (a full non-blocking pipe): how many bytes went out.
 */
function writeDirect(fd: number, bytes: Buffer, max: number): number {
  let written = 0;
  for (const chunk of pipeChunks(bytes, max)) {
    let n: number;
    try {
      n = writeSync(fd, chunk);
    } catch {
      return written;
    }
    written += n;
    if (n < chunk.length) return written;
  }
  return written;
}

/**
 * `bytes` cut at line ends into pieces of at most `max` bytes (a longer line goes alone). A write
 * of at most PIPE_BUF bytes to a pipe is atomic, so the lines of workers sharing one stdout never
 * interleave mid-line.
 */
export function pipeChunks(bytes: Buffer, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + max, bytes.length);
    if (end < bytes.length) {
      const newline = bytes.lastIndexOf(0x0a, end - 1);
      if (newline >= start) end = newline + 1;
      else {
        const next = bytes.indexOf(0x0a, end);
        end = next === -1 ? bytes.length : next + 1;
      }
    }
    chunks.push(bytes.subarray(start, end));
    start = end;
  }
  return chunks;
}

/**
 * Why a log file at `path` could not be opened for appending, without opening (or creating) it:
 * for `sluice check`. Undefined when it could.
 */
export function unwritable(path: string): string | undefined {
  let what = JSON.stringify(path);
  try {
    const existing = statSync(path, { throwIfNoEntry: false });
    if (existing?.isDirectory()) return `${what} is a directory`;
    if (!existing) what = `the directory of ${what}`;
    accessSync(existing ? path : dirname(path), constants.W_OK);
    return undefined;
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    return code === 'ENOENT' ? `${what} does not exist` : `${what} is not writable (${code})`;
  }
}
