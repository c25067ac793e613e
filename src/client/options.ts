// Command-line options of `sluice client`: parsed with node:util parseArgs into a typed
// ClientOptions, checked, and every mistake reported as a ClientError with exit code 2.

import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { MAX_DURATION_MS } from '../config/values.ts';
import { isToken } from '../http/parser.ts';
import { ClientError, exitCodes, exitCodeTable } from './errors.ts';
import { parseWriteOut } from './write-out.ts';

/** Where the request body comes from. */
export type BodySource =
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'file'; path: string }
  | { kind: 'stdin' };

/** A `-H` option: set a header (replacing a default of that name) or, with value undefined, remove it. */
export interface HeaderOption {
  name: string;
  value: string | undefined;
}

export interface ClientOptions {
  url: URL;
  method: string;
  headers: HeaderOption[];
  body: BodySource | undefined;
  /** `-o FILE`; `-` is stdout. */
  output: string | undefined;
  /** `-O`: save to a file named after Content-Disposition or the URL. */
  remoteName: boolean;
  outputDir: string | undefined;
  include: boolean;
  verbose: boolean;
  silent: boolean;
  maxTimeMs: number | undefined;
  connectTimeoutMs: number;
  /** `--connect HOST:PORT`: where to send the request while the URL names the host. */
  connectTo: { host: string; port: number } | undefined;
  followRedirects: boolean;
  maxRedirects: number;
  /** `--repeat N`: the same request N times over one keep-alive connection. */
  repeat: number | undefined;
  /** `-f`: a status of 400 or more is a failure (exit 22) and its body is not written. */
  fail: boolean;
  /** `-S`: show errors even with -s. */
  showError: boolean;
  /** `-w FORMAT`, parsed. */
  writeOut: ReturnType<typeof parseWriteOut> | undefined;
  /** `--resolve HOST:PORT:ADDRESS`: connect to ADDRESS for HOST:PORT instead of asking DNS. */
  resolve: ResolveEntry[];
}

export interface ResolveEntry {
  host: string;
  port: number;
  address: string;
}

export type ParsedArgs = { help: true } | { help: false; options: ClientOptions };

export const defaultConnectTimeoutMs = 10_000;
export const defaultMaxRedirects = 10;

export const usage = `usage: sluice client [options] URL

A small HTTP/1.1 client on raw sockets. Text answers are printed, binary ones (images, PDFs,
anything not text/*, JSON, XML or JavaScript) are saved to a file and never dumped on the terminal.

  -X, --request METHOD      method (default GET, or POST with a body)
  -I, --head                send HEAD and print the status line and headers
  -H, --header 'Name: v'    add a header or replace a default one; 'Name:' removes it
  -d, --data DATA           request body: a string, @FILE or @- (stdin); implies POST
      --data-binary DATA    the same (bytes are always sent exactly as they are)
  -o, --output FILE         write the body to FILE (overwritten); '-' is stdout, even if binary
  -O, --remote-name         save the body to a file named by Content-Disposition or the URL
      --output-dir DIR      directory for saved files (default: the current one)
  -i, --include             print the status line and headers before the body
  -v, --verbose             show the bytes sent ('> ') and the heads received ('< ') on stderr
  -s, --silent              no progress bar, no notes and no error messages on stderr
  -S, --show-error          with -s, still show error messages
  -f, --fail                a status of 400 or more: stop at the head, exit 22
  -w, --write-out FORMAT    print FORMAT after the transfer or a failure: %{http_code},
                            %{time_total}, %{size_download}, %{remote_ip}, %header{name}, ...
  -m, --max-time SECONDS    give up after this long in all
      --connect-timeout SECONDS   give up connecting after this long (default ${defaultConnectTimeoutMs / 1000})
      --connect HOST:PORT   connect there, while Host and the target come from URL
                            (e.g. try a virtual host of the balancer)
      --resolve HOST:PORT:ADDR  connect to ADDR (an IP) for HOST:PORT instead of asking DNS
  -L, --location            follow redirects (303, and 301/302 after POST, continue as GET)
      --max-redirs N        at most N redirects with -L (default ${defaultMaxRedirects})
      --repeat N            send the request N times over one keep-alive connection and print a
                            line per response: status, X-Backend, bytes, time
  -h, --help                this text

A URL without a scheme is taken as http://; https:// is not supported.
The body goes to stdout when stdout is a pipe or a file. On a terminal, text is printed (with
control characters shown as escapes such as \\x1b) and binary bodies are saved to a file (as
with -O); text with a NUL byte in it is refused (exit 23) unless -o - is given. A saved file
never replaces an existing one: .1, .2, ... is added (except with -o FILE). Any HTTP status
exits 0 unless -f is given.

Exit codes:
${exitCodeTable.map(([code, text]) => `  ${String(code).padStart(2)}  ${text}`).join('\n')}`;

const argSpec = {
  request: { type: 'string', short: 'X' },
  head: { type: 'boolean', short: 'I' },
  header: { type: 'string', short: 'H', multiple: true },
  data: { type: 'string', short: 'd', multiple: true },
  'data-binary': { type: 'string', multiple: true },
  output: { type: 'string', short: 'o' },
  'remote-name': { type: 'boolean', short: 'O' },
  'output-dir': { type: 'string' },
  include: { type: 'boolean', short: 'i' },
  verbose: { type: 'boolean', short: 'v' },
  silent: { type: 'boolean', short: 's' },
  'show-error': { type: 'boolean', short: 'S' },
  fail: { type: 'boolean', short: 'f' },
  'write-out': { type: 'string', short: 'w' },
  resolve: { type: 'string', multiple: true },
  'max-time': { type: 'string', short: 'm' },
  'connect-timeout': { type: 'string' },
  connect: { type: 'string' },
  location: { type: 'boolean', short: 'L' },
  'max-redirs': { type: 'string' },
  repeat: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usageError(message: string): ClientError {
  return new ClientError(exitCodes.usage, message);
}

/** Parses the arguments after `client`; throws ClientError (exit 2) for any mistake. */
export function parseClientArgs(argv: readonly string[]): ParsedArgs {
  const { values, positionals } = parseArgv(argv);
  if (values.help) return { help: true };

  if (positionals.length === 0) throw usageError('no URL given');
  if (positionals.length > 1)
    throw usageError(`one URL only, got ${positionals.length}: ${positionals.join(' ')}`);
  const url = parseUrl(positionals[0] as string);

  const bodies = [...(values.data ?? []), ...(values['data-binary'] ?? [])];
  if (bodies.length > 1) throw usageError('give the body once (-d or --data-binary)');
  const body = bodies.length === 1 ? parseBody(bodies[0] as string) : undefined;

  let method: string;
  if (values.request !== undefined) {
    method = values.request;
    if (!isToken(method)) throw usageError(`invalid method "${method}"`);
    if (values.head && method !== 'HEAD') throw usageError(`-I (HEAD) and -X ${method} disagree`);
  } else if (values.head) method = 'HEAD';
  else method = body ? 'POST' : 'GET';
  if (method === 'HEAD' && body) throw usageError('a HEAD request cannot carry a body');

  if (values.output !== undefined && values['remote-name']) throw usageError('use -o FILE or -O, not both');
  if (values.output === '') throw usageError('-o needs a file name (or - for stdout)');

  const repeat = values.repeat === undefined ? undefined : positiveInteger('--repeat', values.repeat);
  if (repeat !== undefined) {
    const clash = [
      values.output !== undefined && '-o',
      values['remote-name'] && '-O',
      values.location && '-L',
      values.include && '-i',
      values['write-out'] !== undefined && '-w',
    ].filter(Boolean);
    if (clash.length > 0)
      throw usageError(`--repeat prints one line per response; it cannot go with ${clash.join(', ')}`);
  }

  return {
    help: false,
    options: {
      url,
      method,
      headers: (values.header ?? []).map(parseHeader),
      body,
      output: values.output,
      remoteName: values['remote-name'] ?? false,
      outputDir: values['output-dir'],
      include: values.include ?? false,
      verbose: values.verbose ?? false,
      silent: values.silent ?? false,
      maxTimeMs: values['max-time'] === undefined ? undefined : seconds('--max-time', values['max-time']),
      connectTimeoutMs:
        values['connect-timeout'] === undefined
          ? defaultConnectTimeoutMs
          : seconds('--connect-timeout', values['connect-timeout']),
      connectTo: values.connect === undefined ? undefined : parseHostPort(values.connect),
      followRedirects: values.location ?? false,
      maxRedirects:
        values['max-redirs'] === undefined
          ? defaultMaxRedirects
          : nonNegativeInteger('--max-redirs', values['max-redirs']),
      repeat,
      fail: values.fail ?? false,
      showError: values['show-error'] ?? false,
      writeOut: values['write-out'] === undefined ? undefined : parseWriteOut(values['write-out']),
      resolve: (values.resolve ?? []).map(parseResolve),
    },
  };
}

/** `HOST:PORT:ADDRESS`, the address an IP (IPv6 in brackets or bare), as curl's --resolve. */
export function parseResolve(raw: string): ResolveEntry {
  const m = /^([^:[\]\s]+):([0-9]{1,5}):(?:\[([0-9A-Fa-f:.]+)\]|(.+))$/.exec(raw);
  const port = Number(m?.[2]);
  const address = m?.[3] ?? m?.[4] ?? '';
  if (m === null || port < 1 || port > 65535 || isIP(address) === 0) {
    throw usageError(
      `--resolve expects HOST:PORT:ADDRESS with an IP address (e.g. example.test:80:127.0.0.1), got "${raw}"`,
    );
  }
  return { host: (m[1] as string).toLowerCase(), port, address };
}

function parseArgv(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: argSpec, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/** Whether `text` holds a C0 control character or DEL (TAB aside with `tabOk`). */
function hasControl(text: string, tabOk = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && !(tabOk && code === 0x09)) || code === 0x7f) return true;
  }
  return false;
}

/** An http:// URL; a URL without a scheme is taken as http://. */
export function parseUrl(raw: string): URL {
  const scheme = SCHEME.exec(raw)?.[1]?.toLowerCase();
  if (scheme === 'https') {
    throw usageError(`https:// is not supported: sluice client speaks plain HTTP/1.1 only (${raw})`);
  }
  if (scheme !== undefined && scheme !== 'http')
    throw usageError(`unsupported scheme "${scheme}://" (${raw})`);
  // WHATWG URL drops TAB, CR and LF without a word, changing the request: refuse them (as curl).
  if (hasControl(raw)) throw usageError(`control character in URL ${JSON.stringify(raw)}`);
  let url: URL;
  try {
    url = new URL(scheme === undefined ? `http://${raw}` : raw);
  } catch {
    throw usageError(`invalid URL "${raw}"`);
  }
  if (url.hostname === '') throw usageError(`no host in URL "${raw}"`);
  try {
    for (const part of [url.username, url.password]) decodeURIComponent(part);
  } catch {
    throw usageError(`invalid percent-encoding in the user name or password of "${raw}"`);
  }
  return url;
}

function parseBody(value: string): BodySource {
  if (value === '@-') return { kind: 'stdin' };
  if (value.startsWith('@')) {
    if (value.length === 1) throw usageError('-d @ needs a file name (or @- for stdin)');
    return { kind: 'file', path: value.slice(1) };
  }
  return { kind: 'bytes', bytes: Buffer.from(value, 'utf8') };
}

const FRAMING = new Set(['content-length', 'transfer-encoding']);

/** `Name: value` sets, `Name:` removes, `Name;` sends an empty value (as curl does). */
export function parseHeader(raw: string): HeaderOption {
  const colon = raw.indexOf(':');
  const semicolon = raw.indexOf(';');
  const empty = colon === -1 && semicolon > 0 && semicolon === raw.length - 1;
  if (colon === -1 && !empty) throw usageError(`header "${raw}" has no colon; write -H 'Name: value'`);
  const name = empty ? raw.slice(0, -1).trim() : raw.slice(0, colon);
  if (!isToken(name)) throw usageError(`invalid header name "${name}" in "${raw}"`);
  // The body's framing is the client's: a -H one would contradict it (both fields, a length
  // that is not the body's, a chunked body never sent) and leave the server waiting or misreading.
  if (FRAMING.has(name.toLowerCase()))
    throw usageError(`-H ${name}: the client frames the body itself (Content-Length of the -d body)`);
  if (empty) return { name, value: '' };
  const value = raw.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
  // Field values: no control character but TAB (RFC 9110 5.5); CR, LF or NUL would end the line
  // or smuggle a header.
  if (hasControl(value, true)) throw usageError(`header "${name}" contains a control character`);
  return { name, value: value === '' ? undefined : value };
}

/** `HOST:PORT` or `[IPv6]:PORT`. */
export function parseHostPort(raw: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]/\s]+)):([0-9]{1,5})$/.exec(raw);
  const port = Number(m?.[3]);
  if (m === null || port < 1 || port > 65535) {
    throw usageError(`--connect expects HOST:PORT (e.g. 127.0.0.1:8080), got "${raw}"`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Seconds above 0, as ms; at most the longest Node timer (a longer one would fire at once). */
function seconds(option: string, raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0 || value * 1000 > MAX_DURATION_MS) {
    throw usageError(
      `${option} expects a number of seconds above 0 and at most ${MAX_DURATION_MS / 1000} (about 24.8 days), got "${raw}"`,
    );
  }
  return Math.round(value * 1000);
}

function positiveInteger(option: string, raw: string): number {
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || value < 1)
    throw usageError(`${option} expects a whole number from 1, got "${raw}"`);
  return value;
}

function nonNegativeInteger(option: string, raw: string): number {
  if (!/^[0-9]+$/.test(raw)) throw usageError(`${option} expects a whole number, got "${raw}"`);
  return Number(raw);
}
