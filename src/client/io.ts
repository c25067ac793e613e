// Where `sluice client` reads and writes: the process's streams, or fakes in tests.
import type { LookupFunction } from 'node:net';
import type { Readable, Writable } from 'node:stream';

export interface ClientIO {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  /** Whether stderr is a terminal: the progress bar is drawn only then. */
  isTTY: boolean;
  /** Whether stdout is a terminal: binary bodies are saved to files only then (else they go to stdout). */
  stdoutIsTTY: boolean;
  /** Directory that relative paths (-o, -d @FILE, saved files) start from (default: process.cwd()). */
  cwd?: string;
  /** Width of the terminal for the progress bar (default 80). */
  columns?: number;
  /** Replaces DNS lookups (tests). */
  lookup?: LookupFunction;
}
