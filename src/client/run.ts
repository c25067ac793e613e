// `sluice client`: parses the options, sends the request on a hand-built connection, shows or
// saves the response, follows redirects (-L) or repeats the request (--repeat), and returns
// the exit code. All I/O goes through `io`, so tests run it in-process with fake streams.
import type { Socket } from 'node:net';
import { headerValue, type ResponseHead } from '../http/message.ts';
import { headerTokens } from '../http/serialize.ts';
import { loadBody, type RequestBody } from './body.ts';
import { openConnection } from './connection.ts';
import { ClientError, exitCodes, formatAddress, refuseTransferCodings, statusExitCode } from './errors.ts';
import { exchange } from './exchange.ts';
import type { ClientIO } from './io.ts';
import { type ClientOptions, type ParsedArgs, parseClientArgs, usage } from './options.ts';
import { noteLine, printable, traceLines } from './output.ts';
import { formatBytes } from './progress.ts';
import { asksForUpgrade, buildRequestHead } from './request.ts';
import type { ResponseHandler } from './response-reader.ts';
import { SocketChunks } from './response-reader.ts';
import { ResponseWriter } from './response-writer.ts';
import { flushed, writeAll } from './sink.ts';
import { renderWriteOut } from './write-out.ts';

export type { ClientIO } from './io.ts';

/** Runs `sluice client` with the arguments after `client`; resolves with the exit code. */
export async function runClient(argv: readonly string[], io: ClientIO): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseClientArgs(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`${noteLine(message)}Try 'sluice client --help' for the options.\n`);
    return error instanceof ClientError ? error.exitCode : exitCodes.usage;
  }
  if (parsed.help) {
    io.stdout.write(`${usage}\n`);
    await flushed(io.stdout);
    return exitCodes.ok;
  }
  return new ClientRun(parsed.options, io).run();
}

/** Whether the server will close the connection after this response. */
function closesConnection(head: ResponseHead): boolean {
  const tokens = headerTokens(head.headers, 'connection');
  return tokens.includes('close') || (head.versionMinor === 0 && !tokens.includes('keep-alive'));
}

/** The redirect target, resolved against the current URL; only http:// can be followed. */
export function redirectTarget(current: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch {
    throw new ClientError(exitCodes.malformed, `malformed response: invalid Location "${location}"`);
  }
  if (next.protocol !== 'http:') {
    throw new ClientError(
      exitCodes.failure,
      `redirected to ${next.href}, which sluice client cannot follow (plain http:// only)`,
    );
  }
  return next;
}

/** The method after a redirect, as curl does: 303 turns anything but HEAD into GET, 301/302 turn POST into GET. */
export function redirectMethod(status: number, method: string): string {
  if (status === 303 && method !== 'HEAD') return 'GET';
  if ((status === 301 || status === 302) && method === 'POST') return 'GET';
  return method;
}

/** Methods that may be sent again when a kept-alive connection turns out closed (RFC 9110 9.2.2). */
const idempotentMethods = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);

/** Fields sent with -H that go to the URL's own host only (as curl): a custom Host, credentials. */
const sameHostOnly = new Set(['host', 'authorization', 'proxy-authorization', 'cookie']);

/** What -w reports, kept up to date as the transfer goes so that a failure can report it too. */
interface Facts {
  url: URL;
  method: string;
  redirects: number;
  connectedAt: number;
  remoteIp: string;
  remotePort: number;
  head: ResponseHead | undefined;
  headAt: number;
  headBytes: number;
  bodyBytes: number;
  sentBodyBytes: number;
}

interface Connection {
  socket: Socket;
  chunks: SocketChunks;
  host: string;
  port: number;
}

class ClientRun {
  readonly #options: ClientOptions;
  readonly #io: ClientIO;
  readonly #cwd: string;
  readonly #abort = new AbortController();
  #socket: Socket | undefined;
  #writer: ResponseWriter | undefined;
  /** What is going on, for the --max-time message. */
  #phase: () => string = () => 'before connecting';
  readonly #started = performance.now();
  readonly #facts: Facts;

  constructor(options: ClientOptions, io: ClientIO) {
    this.#options = options;
    this.#io = io;
    this.#cwd = io.cwd ?? process.cwd();
    this.#facts = {
      url: options.url,
      method: options.method,
      redirects: 0,
      connectedAt: 0,
      remoteIp: '',
      remotePort: 0,
      head: undefined,
      headAt: 0,
      headBytes: 0,
      bodyBytes: 0,
      sentBodyBytes: 0,
    };
  }

  async run(): Promise<number> {
    const { maxTimeMs } = this.#options;
    let timer: NodeJS.Timeout | undefined;
    const failures: Promise<never>[] = [];
    if (maxTimeMs !== undefined) {
      failures.push(
        new Promise((_, reject) => {
          timer = setTimeout(() => {
            const s = maxTimeMs / 1000;
            this.#stop(
              reject,
              new ClientError(exitCodes.timeout, `timed out after ${s} s (--max-time ${s}) ${this.#phase()}`),
            );
          }, maxTimeMs);
        }),
      );
    }
    let onStdoutError: ((error: Error) => void) | undefined;
    failures.push(
      new Promise((_, reject) => {
        onStdoutError = (error: Error) => {
          const why =
            (error as NodeJS.ErrnoException).code === 'EPIPE' ? 'the reader went away' : error.message;
          this.#stop(reject, new ClientError(exitCodes.write, `cannot write to stdout: ${why}`));
        };
        this.#io.stdout.on('error', onStdoutError);
      }),
    );
    const work = this.#options.repeat === undefined ? this.#single() : this.#repeat(this.#options.repeat);
    work.catch(() => {});
    try {
      return await Promise.race([work, ...failures]);
    } catch (error) {
      return await this.#fail(error);
    } finally {
      clearTimeout(timer);
      if (onStdoutError) this.#io.stdout.off('error', onStdoutError);
      this.#socket?.destroy();
    }
  }

  #stop(reject: (error: ClientError) => void, error: ClientError): void {
    this.#abort.abort(error);
    this.#socket?.destroy(error);
    reject(error);
  }

  async #fail(error: unknown): Promise<number> {
    const failure =
      error instanceof ClientError
        ? error
        : new ClientError(exitCodes.failure, error instanceof Error ? error.message : String(error));
    const partial = await this.#writer?.abandon();
    let message = noteLine(failure.message);
    if (partial)
      message += noteLine(`the partial body (${formatBytes(partial.bytes)}) is in ${partial.path}`);
    if (!this.#options.silent || this.#options.showError) this.#io.stderr.write(message);
    // -w on a failure too, as curl (%{http_code} 000 if no answer came); not awaited, as stdout
    // may be what failed.
    if (this.#options.writeOut && !this.#io.stdout.destroyed)
      this.#io.stdout.write(this.#writeOut(this.#options.writeOut, failure.exitCode));
    return failure.exitCode;
  }

  #writeOut(format: NonNullable<ClientOptions['writeOut']>, exitCode: number): string {
    const facts = this.#facts;
    const seconds = (at: number) => (at === 0 ? 0 : (at - this.#started) / 1000);
    const headers = facts.head?.headers ?? [];
    return renderWriteOut(format, {
      httpCode: facts.head?.status ?? 0,
      sizeDownload: facts.bodyBytes,
      sizeUpload: facts.sentBodyBytes,
      sizeHeader: facts.headBytes,
      timeConnect: seconds(facts.connectedAt),
      timeStartTransfer: seconds(facts.headAt),
      timeTotal: seconds(performance.now()),
      remoteIp: facts.remoteIp,
      remotePort: facts.remotePort,
      contentType: headerValue(headers, 'content-type') ?? '',
      urlEffective: facts.url.href,
      numRedirects: facts.redirects,
      method: facts.method,
      exitCode,
      header: (name) => headerValue(headers, name.toLowerCase()) ?? '',
    });
  }

  #trace(text: string): void {
    if (this.#options.verbose) this.#io.stderr.write(text);
  }

  /**
   * Where to connect for `url`: --connect applies to the URL's own host and port only;
   * --resolve gives the address of a host and port instead of DNS.
   */
  #endpoint(url: URL): { host: string; port: number } {
    const to = this.#options.connectTo;
    if (to !== undefined && url.host === this.#options.url.host) return to;
    const port = url.port === '' ? 80 : Number(url.port);
    const host = url.hostname.toLowerCase();
    const pinned = this.#options.resolve.find((entry) => entry.host === host && entry.port === port);
    return { host: pinned?.address ?? url.hostname, port };
  }

  async #connect(url: URL): Promise<Connection> {
    const { host, port } = this.#endpoint(url);
    const address = formatAddress(host.replace(/^\[(.*)\]$/, '$1'), port);
    this.#phase = () => `while connecting to ${address}`;
    this.#trace(`* connecting to ${address}${this.#options.connectTo ? ` for ${url.host}` : ''}\n`);
    const socket = await openConnection({
      host,
      port,
      timeoutMs: this.#options.connectTimeoutMs,
      lookup: this.#io.lookup,
      signal: this.#abort.signal,
    });
    this.#socket = socket;
    this.#facts.connectedAt = performance.now();
    this.#facts.remoteIp = socket.remoteAddress ?? host;
    this.#facts.remotePort = socket.remotePort ?? port;
    this.#trace(`* connected to ${formatAddress(socket.remoteAddress ?? host, socket.remotePort ?? port)}\n`);
    this.#phase = () => `waiting for the response from ${address}`;
    return { socket, chunks: new SocketChunks(socket), host, port };
  }

  /** The handler, with the --max-time message and -w's facts following the response as it arrives. */
  #watch(handler: ResponseHandler, connection: Connection): ResponseHandler {
    const address = formatAddress(connection.host.replace(/^\[(.*)\]$/, '$1'), connection.port);
    const facts = this.#facts;
    return {
      interim: (head, raw) => handler.interim?.(head, raw),
      head: (head, framing, raw) => {
        Object.assign(facts, { head, headAt: performance.now(), headBytes: raw.length, bodyBytes: 0 });
        this.#phase = () =>
          `while receiving the body from ${address} (${formatBytes(facts.bodyBytes)} so far)`;
        return handler.head(head, framing, raw);
      },
      data: (chunk) => {
        facts.bodyBytes += chunk.length;
        return handler.data(chunk);
      },
    };
  }

  async #loadBody(): Promise<RequestBody | undefined> {
    const source = this.#options.body;
    if (source === undefined) return undefined;
    this.#phase = () => 'while reading the request body';
    return loadBody(source, this.#io.stdin, this.#cwd, this.#abort.signal);
  }

  async #single(): Promise<number> {
    const options = this.#options;
    const facts = this.#facts;
    let body = await this.#loadBody();
    for (;;) {
      const { url, method } = facts;
      const connection = await this.#connect(url);
      const headers =
        url.host === options.url.host
          ? options.headers
          : options.headers.filter((h) => !sameHostOnly.has(h.name.toLowerCase()));
      const head = buildRequestHead({ method, url, headers, bodyLength: body?.length, keepAlive: false });
      this.#trace(traceLines(head, '> ', 'utf8'));
      const writer = new ResponseWriter(this.#io, options, this.#cwd, url, method, this.#abort.signal);
      this.#writer = writer;
      const result = await exchange({
        ...connection,
        head,
        body,
        method,
        upgradeAsked: asksForUpgrade(headers),
        handler: this.#watch(writer, connection),
      });
      facts.sentBodyBytes = result.sentBodyBytes;
      if (result.sentBodyBytes > 0) this.#trace(`* sent ${result.sentBodyBytes} body bytes\n`);
      connection.socket.destroy();
      const { status } = result.head;
      const location = headerValue(result.head.headers, 'location');
      if (writer.redirecting) {
        if (facts.redirects >= options.maxRedirects) {
          throw new ClientError(
            exitCodes.redirects,
            `too many redirects: stopped after ${facts.redirects} (--max-redirs ${options.maxRedirects}); the next was to ${location}`,
          );
        }
        const next = redirectTarget(url, location as string);
        const nextMethod = redirectMethod(status, method);
        if (nextMethod !== method) body = undefined;
        this.#trace(
          `* following ${status} to ${next.href}${nextMethod !== method ? ` as ${nextMethod}` : ''}\n`,
        );
        Object.assign(facts, { url: next, method: nextMethod, redirects: facts.redirects + 1 });
        continue;
      }
      await writer.finish();
      this.#writer = undefined;
      if (options.writeOut) {
        await writeAll(this.#io.stdout, this.#writeOut(options.writeOut, exitCodes.ok), this.#abort.signal);
      }
      await flushed(this.#io.stdout);
      return exitCodes.ok;
    }
  }

  async #repeat(count: number): Promise<number> {
    const options = this.#options;
    const body = await this.#loadBody();
    const backends = new Map<string, number>();
    let connection: Connection | undefined;
    let exitCode: number = exitCodes.ok;
    const width = String(count).length;
    for (let i = 1; i <= count; i++) {
      let fresh = false;
      const started = performance.now();
      const keepAlive = i < count;
      const head = buildRequestHead({
        method: options.method,
        url: options.url,
        headers: options.headers,
        bodyLength: body?.length,
        keepAlive,
      });
      const attempt = async () => {
        if (connection === undefined) {
          connection = await this.#connect(options.url);
          fresh = true;
        }
        this.#trace(traceLines(head, '> ', 'utf8'));
        let headSeen = false;
        const handler: ResponseHandler = {
          interim: (_head, raw) => this.#trace(traceLines(raw, '< ')),
          head: (_head, framing, raw) => {
            headSeen = true;
            this.#trace(traceLines(raw, '< '));
            refuseTransferCodings(framing);
          },
          data: () => {},
        };
        try {
          return await exchange({
            ...connection,
            head,
            body,
            method: options.method,
            upgradeAsked: asksForUpgrade(options.headers),
            handler: this.#watch(handler, connection),
          });
        } catch (error) {
          connection.socket.destroy();
          connection = undefined;
          // A reused connection the server closed meanwhile: try once more on a new one.
          const stale =
            !fresh &&
            !headSeen &&
            error instanceof ClientError &&
            (error.exitCode === exitCodes.emptyReply || error.exitCode === exitCodes.receive);
          if (!stale) throw error;
          if (!idempotentMethods.has(options.method)) {
            throw new ClientError(
              error.exitCode,
              `${error.message} (the kept-alive connection was closed; ${options.method} is not sent again, as it may not be idempotent)`,
            );
          }
          this.#trace('* the kept-alive connection was closed by the server; reconnecting\n');
          return undefined;
        }
      };
      const result = (await attempt()) ?? (await attempt());
      if (result === undefined) throw new ClientError(exitCodes.receive, 'the connection failed twice');
      const ms = performance.now() - started;
      const backend = headerValue(result.head.headers, 'x-backend');
      if (backend !== undefined) backends.set(backend, (backends.get(backend) ?? 0) + 1);
      const line = [
        `[${String(i).padStart(width)}/${count}]`,
        `${result.head.status} ${result.head.reason}`.trimEnd(),
        `X-Backend: ${backend ?? '-'}`,
        `${result.bodyBytes} bytes`,
        `${ms.toFixed(1)} ms${fresh && i > 1 ? '  (new connection)' : ''}`,
      ].join('  ');
      await writeAll(this.#io.stdout, `${printable(line)}\n`, this.#abort.signal);
      // Bytes past the response, now or arriving meanwhile, would be read as the next response.
      const excess = result.excess + (connection?.socket.readableLength ?? 0);
      if (excess > 0) this.#trace(`* ${excess} bytes after the response; closing the connection\n`);
      if (result.closed || excess > 0 || closesConnection(result.head)) {
        connection?.socket.destroy();
        connection = undefined;
      }
      if (exitCode === exitCodes.ok) exitCode = statusExitCode(result.head.status, options.fail);
    }
    connection?.socket.destroy();
    if (backends.size > 0) {
      const counts = [...backends].map(([name, n]) => `${name}=${n}`).join(' ');
      await writeAll(this.#io.stdout, `by backend: ${counts}\n`, this.#abort.signal);
    }
    await flushed(this.#io.stdout);
    return exitCode;
  }
}

/** For main.ts: the process's own streams. */
export function processIO(): ClientIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    // A getter: process.stdin is only opened when a body is read from it (-d @-).
    get stdin() {
      return process.stdin;
    },
    isTTY: process.stderr.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    columns: process.stderr.columns,
  };
}
