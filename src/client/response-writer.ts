// Shows or saves one response of `sluice client`: the head on stdout with -i (or for HEAD), the
// heads on stderr with -v, the body on stdout (a pipe or a file, as curl), printed as text or
// saved to a file on a terminal; a redirect's body is dropped with -L; -f stops at the head.
import { type BodyFraming, headerValue, type ResponseHead } from '../http/message.ts';
import { ClientError, exitCodes, refuseTransferCodings } from './errors.ts';
import type { ClientIO } from './io.ts';
import type { ClientOptions } from './options.ts';
import { decideOutput, noteLine, traceLines } from './output.ts';
import { formatBytes, ProgressMeter } from './progress.ts';
import type { ResponseHandler } from './response-reader.ts';
import { type BodySink, type FileSink, openFileSink, rawSink, terminalSink, writeAll } from './sink.ts';

const redirectStatuses = new Set([301, 302, 303, 307, 308]);

export class ResponseWriter implements ResponseHandler {
  readonly #io: ClientIO;
  readonly #options: ClientOptions;
  readonly #cwd: string;
  readonly #url: URL;
  readonly #method: string;
  readonly #signal: AbortSignal;
  #head: ResponseHead | undefined;
  #sink: BodySink | undefined;
  #file: FileSink | undefined;
  #progress: ProgressMeter | undefined;
  #total: number | undefined;
  /** The response is a redirect that -L follows: its body is dropped. */
  redirecting = false;

  constructor(
    io: ClientIO,
    options: ClientOptions,
    cwd: string,
    url: URL,
    method: string,
    signal: AbortSignal,
  ) {
    this.#io = io;
    this.#options = options;
    this.#cwd = cwd;
    this.#url = url;
    this.#method = method;
    this.#signal = signal;
  }

  interim(_head: ResponseHead, raw: Buffer): void {
    if (this.#options.verbose) this.#io.stderr.write(traceLines(raw, '< '));
  }

  async head(head: ResponseHead, framing: BodyFraming, raw: Buffer): Promise<void> {
    this.#head = head;
    this.#total = framing.kind === 'length' ? framing.length : undefined;
    if (this.#options.verbose) this.#io.stderr.write(traceLines(raw, '< '));
    refuseTransferCodings(framing);
    this.redirecting =
      this.#options.followRedirects &&
      redirectStatuses.has(head.status) &&
      headerValue(head.headers, 'location') !== undefined;
    if (this.#options.fail && head.status >= 400) {
      // As curl --fail: stop at the head, whatever the body (endless, cut short) would do.
      const reason = head.reason ? ` ${head.reason}` : '';
      throw new ClientError(exitCodes.httpError, `the server answered ${head.status}${reason}`);
    }
    if (this.#options.include || this.#method === 'HEAD') await writeAll(this.#io.stdout, raw, this.#signal);
  }

  async data(chunk: Buffer): Promise<void> {
    if (this.redirecting) return;
    const sink = this.#sink ?? (await this.#open(chunk));
    await sink.write(chunk);
    this.#progress?.update(chunk.length);
  }

  /** After the whole body: flushes, closes a file and says where it went. */
  async finish(): Promise<void> {
    // -o FILE / -O make a file even for an empty body (as curl does); a HEAD has no body to save.
    const wanted = this.#options.output !== undefined || this.#options.remoteName;
    if (this.#sink === undefined && wanted && this.#method !== 'HEAD') await this.#open(Buffer.alloc(0));
    await this.#sink?.close();
    this.#progress?.finish();
    const file = this.#file;
    if (file !== undefined && !this.#options.silent) {
      const type = headerValue(this.#head?.headers ?? [], 'content-type');
      this.#io.stderr.write(
        noteLine(`saved ${formatBytes(file.bytes)}${type ? ` (${type})` : ''} to ${file.path}`),
      );
    }
  }

  /** Stops after a failure; returns the partly written file, if any. */
  async abandon(): Promise<FileSink | undefined> {
    await this.#sink?.abort();
    if (this.#progress?.shown) this.#io.stderr.write('\n');
    return this.#file !== undefined && this.#file.bytes > 0 ? this.#file : undefined;
  }

  async #open(sample: Buffer): Promise<BodySink> {
    const head = this.#head as ResponseHead;
    const decision = decideOutput({
      contentType: headerValue(head.headers, 'content-type'),
      contentEncoding: headerValue(head.headers, 'content-encoding'),
      contentDisposition: headerValue(head.headers, 'content-disposition'),
      url: this.#url,
      output: this.#options.output,
      remoteName: this.#options.remoteName,
      stdoutIsTTY: this.#io.stdoutIsTTY,
      sample,
    });
    let sink: BodySink;
    if (decision.kind === 'stdout') sink = rawSink(this.#io.stdout, this.#signal);
    else if (decision.kind === 'text') sink = terminalSink(this.#io.stdout, decision.encoding, this.#signal);
    else {
      const file = await openFileSink(
        this.#cwd,
        this.#options.outputDir,
        decision.name,
        decision.overwrite,
        this.#signal,
      );
      this.#file = file;
      sink = file;
      if (this.#io.isTTY && !this.#options.silent) {
        const stderr = this.#io.stderr;
        this.#progress = new ProgressMeter({
          total: this.#total,
          write: (text) => stderr.write(text),
          width: this.#io.columns,
        });
      }
    }
    this.#sink = sink;
    return sink;
  }
}
