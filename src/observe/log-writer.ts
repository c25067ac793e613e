// A buffered line writer, as nginx's `access_log … buffer=64k flush=1s`: lines collect in memory
// and go out in one write when the buffer is full or the oldest line is `flushMs` old, so a
// request costs a string append and no system call. Writes are synchronous (as nginx's are):
// a flush is one write(2) of up to `bufferBytes` to a file (to stdout: writes of at most 4 KiB cut
// at line ends, see pipeChunks), and nothing is queued behind the event loop.
//
// Loss on a crash: an exception that ends the process still runs the `exit` flush; a SIGKILL,
// an OOM kill or a native abort loses what is buffered: at most `flushMs` worth of lines.
import { closeSync, openSync, writeSync } from 'node:fs';

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
}

export class LogWriter {
  readonly destination: LogDestination;
  private readonly bufferBytes: number;
  private readonly flushMs: number;
  /** Lines are copied into this buffer as UTF-8 as they come: no string ropes, no allocation. */
  private readonly buffer: Buffer;
  private used = 0;
  private fd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly flushOnTime = () => {
    this.timer = undefined;
    this.flush();
  };
  private readonly flushOnExit = () => this.flush();

  constructor(options: LogWriterOptions) {
    this.destination = options.destination;
    this.bufferBytes = options.bufferBytes;
    this.flushMs = options.flushMs;
    this.buffer = Buffer.allocUnsafe(Math.max(4096, options.bufferBytes));
    this.open();
    process.on('exit', this.flushOnExit);
  }

  /** Buffers one line (with its newline). */
  write(line: string): void {
    if (this.closed) return;
    // A line that may not fit (UTF-8 takes up to 3 bytes per UTF-16 unit) goes after a flush.
    if (this.used + line.length * 3 > this.buffer.length) {
      this.flush();
      if (line.length * 3 > this.buffer.length) {
        this.output(Buffer.from(line));
        return;
      }
    }
    this.used += this.buffer.write(line, this.used);
    if (this.used >= this.bufferBytes) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(this.flushOnTime, this.flushMs);
      this.timer.unref();
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
    // stdout may be asynchronous (a pipe on some platforms): it gets a copy it may keep.
    this.output(this.fd === undefined ? Buffer.from(bytes) : bytes);
  }

  private output(bytes: Buffer): void {
    if (this.fd !== undefined) {
      writeSync(this.fd, bytes);
      return;
    }
    // Workers share the process's stdout: see pipeChunks.
    for (const chunk of pipeChunks(bytes, pipeBuf)) process.stdout.write(chunk);
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
