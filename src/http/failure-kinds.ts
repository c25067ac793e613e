// The ways an exchange with a peer fails, named once: the socket errno table (shared by the
// proxy's attempts, the cache refresher and the health probe) and the FailureKind values that
// label sluice_backend_errors_total and sluice_retries_total. Which of them may be retried is
// decided where a failure is classified (src/upstream/failure.ts).
import { getSystemErrorMessage } from 'node:util';

/** What a socket error says about the peer. */
export type SocketFailure = 'refused' | 'reset' | 'connect_timeout' | 'unreachable';

/** Every way a backend attempt can fail. */
export type FailureKind =
  | SocketFailure
  | 'response_timeout'
  | 'bad_response'
  | 'closed_before_response'
  | 'closed_mid_response'
  /** This machine's failure (EMFILE …): never counted against a backend, so not in failureKinds. */
  | 'local_resource';

/** Every FailureKind, e.g. to create the `sluice_backend_errors_total{type}` series at 0. */
export const failureKinds: readonly FailureKind[] = [
  'connect_timeout',
  'refused',
  'reset',
  'unreachable',
  'response_timeout',
  'bad_response',
  'closed_before_response',
  'closed_mid_response',
];

/** The kinds that happen before any response byte, the only ones retried on another backend. */
export const retryReasons: readonly FailureKind[] = [
  'connect_timeout',
  'refused',
  'reset',
  'unreachable',
  'closed_before_response',
];

/** The errno table: what a socket error code means, or undefined for one that says nothing. */
export function socketFailure(error: Error | undefined): SocketFailure | undefined {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'connect_timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable';
    default:
      return undefined;
  }
}

// Errors of this machine, not of the peer: out of descriptors, memory, buffers or local ports.
// A backend is never marked down or ejected for them, and no other backend is tried (it would
// fail the same way); they are counted in sluice_local_errors_total{type}.
const localCodes = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL', 'EADDRINUSE']);

/** The code of a local resource error (`EMFILE` …), or undefined for any other error. */
export function localErrorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && localCodes.has(code) ? code : undefined;
}

/**
 * A system error in words and code, `address already in use (EADDRINUSE)`, for a line that
 * names its config key; anything else by its message.
 */
export function systemErrorText(error: Error): string {
  const { code, errno } = error as NodeJS.ErrnoException;
  return code && errno !== undefined ? `${getSystemErrorMessage(errno)} (${code})` : error.message;
}
