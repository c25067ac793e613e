// Exit codes of `sluice client` and the errors that carry them. The numbers follow curl where
// curl has one (6, 7, 8, 18, 23, 26, 28, 47, 52, 56, 61), so scripts written for curl read alike.
import type { BodyFraming } from '../http/message.ts';

export const exitCodes = {
  ok: 0,
  failure: 1,
  usage: 2,
  resolve: 6,
  connect: 7,
  malformed: 8,
  partial: 18,
  httpError: 22,
  write: 23,
  read: 26,
  timeout: 28,
  redirects: 47,
  emptyReply: 52,
  receive: 56,
  transferCoding: 61,
} as const;

/** The table shown by `--help` (and meant for the README). */
export const exitCodeTable: readonly (readonly [number, string])[] = [
  [exitCodes.ok, 'an answer came, whatever its status (with -f: 1xx, 2xx or 3xx)'],
  [exitCodes.failure, 'any other failure (e.g. a redirect to an unsupported scheme)'],
  [exitCodes.usage, 'usage error: bad option, missing or unsupported URL (https://)'],
  [exitCodes.resolve, 'could not resolve the host name'],
  [exitCodes.connect, 'could not connect: refused, unreachable'],
  [exitCodes.malformed, 'malformed response (not HTTP/1.x, bad framing, bad chunks)'],
  [exitCodes.partial, 'the connection closed before the whole body arrived'],
  [exitCodes.httpError, 'with -f: the server answered 400 or more'],
  [exitCodes.write, 'could not write the output (file, stdout), or binary refused on a terminal'],
  [exitCodes.read, 'could not read the request body (-d @FILE)'],
  [exitCodes.timeout, 'timed out (--max-time or --connect-timeout)'],
  [exitCodes.redirects, 'too many redirects (-L, --max-redirs)'],
  [exitCodes.emptyReply, 'the server closed the connection without answering'],
  [exitCodes.receive, 'the connection was reset while sending or receiving'],
  [exitCodes.transferCoding, 'a transfer coding the client does not decode (Transfer-Encoding: gzip)'],
];

/** A failure with the exit code it maps to; `message` is shown after `sluice client: `. */
export class ClientError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'ClientError';
    this.exitCode = exitCode;
  }
}

/** `host:port`, with brackets around an IPv6 literal. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined) return code;
  // Happy eyeballs (autoSelectFamily) reports every failed attempt in an AggregateError.
  if (error instanceof AggregateError) return errorCode(error.errors[0]);
  return undefined;
}

/**
 * A socket or DNS error as a message a person understands. `phase` tells whether the
 * connection was being set up or already carried the exchange.
 */
export function describeNetError(
  error: unknown,
  host: string,
  port: number,
  phase: 'connect' | 'exchange',
): ClientError {
  if (error instanceof ClientError) return error;
  const address = formatAddress(host, port);
  const code = errorCode(error);
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
    case 'EAI_FAIL':
      return new ClientError(exitCodes.resolve, `could not resolve host "${host}"`);
    case 'EAI_AGAIN':
      return new ClientError(
        exitCodes.resolve,
        `could not resolve host "${host}" (temporary DNS failure, try again)`,
      );
    case 'ECONNREFUSED':
      return new ClientError(
        exitCodes.connect,
        `connection refused by ${address} — is the balancer running?`,
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ClientError(exitCodes.connect, `cannot reach ${address}: no route to host`);
    case 'ETIMEDOUT':
      return new ClientError(exitCodes.timeout, `connecting to ${address} timed out`);
    case 'ECONNRESET':
    case 'EPIPE':
      return phase === 'connect'
        ? new ClientError(exitCodes.connect, `connection to ${address} was reset while connecting`)
        : new ClientError(
            exitCodes.receive,
            `connection reset by ${address} before the response was complete`,
          );
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return phase === 'connect'
        ? new ClientError(exitCodes.connect, `cannot connect to ${address}: ${message}`)
        : new ClientError(exitCodes.receive, `connection to ${address} failed: ${message}`);
    }
  }
}

/** 0 for any status, as curl; with -f (`fail`) 22 for 400 and above. */
export function statusExitCode(status: number, fail: boolean): number {
  return fail && status >= 400 ? exitCodes.httpError : exitCodes.ok;
}

/**
 * Refuses a body sent in a transfer coding besides chunked (`Transfer-Encoding: gzip, chunked`):
 * the client decodes none and asked for none (it sends no TE), and written out as it is the body
 * would pass for the resource itself. curl without --tr-encoding refuses it the same way (61).
 */
export function refuseTransferCodings(framing: BodyFraming): void {
  if (framing.kind !== 'chunked' && framing.kind !== 'close') return;
  const codings = framing.codings?.split(', ').filter((coding) => coding.toLowerCase() !== 'identity');
  if (codings === undefined || codings.length === 0) return;
  throw new ClientError(
    exitCodes.transferCoding,
    `the server sent the body in a transfer coding the client does not decode: ${codings.join(', ')}`,
  );
}
