// Opens the TCP connection (node:net) with a connect timeout; failures become ClientErrors
// with exit codes 6 (DNS), 7 (refused, unreachable) and 28 (timeout).
import type { LookupFunction, Socket } from 'node:net';
import { connect } from 'node:net';
import { ClientError, describeNetError, exitCodes, formatAddress } from './errors.ts';

export interface ConnectOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** Replaces DNS (tests). */
  lookup?: LookupFunction | undefined;
  /** Gives up (--max-time): the socket is destroyed and the promise rejects with the reason. */
  signal?: AbortSignal | undefined;
}

export function openConnection(options: ConnectOptions): Promise<Socket> {
  const { host, port } = options;
  // WHATWG URL keeps the brackets of an IPv6 literal; net.connect wants it bare.
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const socket = connect({
    host: bare,
    port,
    noDelay: true,
    ...(options.lookup ? { lookup: options.lookup } : {}),
  });
  return new Promise((resolve, reject) => {
    const signal = options.signal;
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      // Errors from now on surface where the socket is read or written; this keeps a late one
      // (between two requests of --repeat, after a destroy) from being an unhandled 'error' event.
      socket.on('error', () => {});
    };
    const fail = (error: unknown) => {
      settle();
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(signal?.reason);
    const onError = (error: Error) => fail(describeNetError(error, bare, port, 'connect'));
    const timer = setTimeout(() => {
      const address = formatAddress(bare, port);
      const seconds = options.timeoutMs / 1000;
      fail(
        new ClientError(
          exitCodes.timeout,
          `could not connect to ${address} within ${seconds} s (--connect-timeout)`,
        ),
      );
    }, options.timeoutMs);
    socket.once('error', onError);
    socket.once('connect', () => {
      settle();
      resolve(socket);
    });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
