// Classifies a failed backend attempt once, where it happens: its kind (the metric label), the
// status Sluice answers with, and whether the request may go to another backend. As Pingora's
// `Error::retry` and Caddy's typed dial errors: a failure before the request left is always
// safe to retry; one after it left only for a request that may be sent twice; one after the
// response's body began never (bytes of it may have reached the client).
import { type FailureKind, localErrorCode, socketFailure } from '../http/failure-kinds.ts';

/**
 * Where the attempt was: opening the connection, request sent and nothing back, some of the
 * answer's head back, a complete head held back from the client, or the body under way.
 */
export type FailureStage = 'connect' | 'sent' | 'receiving' | 'held' | 'body';

/** `safe`: retry any request; `idempotent`: only one that may be sent twice; `never`. */
export type Retry = 'safe' | 'idempotent' | 'never';

export interface Failure {
  readonly kind: FailureKind;
  /** What the client gets if nothing else answers. */
  readonly status: 502 | 503 | 504;
  readonly message: string;
  readonly retry: Retry;
  /** The code of a local resource error (EMFILE …): the machine's failure, not the backend's. */
  readonly local?: string;
}

const fallbackKind: Record<FailureStage, FailureKind> = {
  connect: 'refused',
  sent: 'closed_before_response',
  receiving: 'closed_before_response',
  held: 'closed_mid_response',
  body: 'closed_mid_response',
};

// Part of a head reached Sluice but nothing of it the client (an interim answer that did stops
// the retry: src/proxy/exchange.ts mayRetry), as nginx retries errors reading a response header.
const retryOf: Record<FailureStage, Retry> = {
  connect: 'safe',
  sent: 'idempotent',
  receiving: 'idempotent',
  held: 'idempotent',
  body: 'never',
};

/** A connection that ended or failed (`error` undefined: closed by the backend). */
export function classify(error: Error | undefined, stage: FailureStage): Failure {
  const local = localErrorCode(error);
  if (local !== undefined) return localFailure(local);
  return {
    kind: socketFailure(error) ?? fallbackKind[stage],
    status: 502,
    message: 'backend failed',
    retry: retryOf[stage],
  };
}

/**
 * This machine ran out of something (descriptors, memory, local ports): another backend would
 * fail the same way, so 503 and no retry, and no mark against the backend.
 */
export function localFailure(code: string): Failure {
  return {
    kind: 'local_resource',
    status: 503,
    message: 'proxy out of local resources',
    retry: 'never',
    local: code,
  };
}

/** No connection within the connect timeout: the request never left, so retry it. */
export const connectTimeout: Failure = {
  kind: 'connect_timeout',
  status: 504,
  message: 'backend timed out',
  retry: 'safe',
};

/** No (complete) answer within the response timeout: the backend may be working on it. */
export const responseTimeout: Failure = {
  kind: 'response_timeout',
  status: 504,
  message: 'backend timed out',
  retry: 'never',
};

/** A backend that keeps sending 1xx answers and no final one (it would hold the client forever). */
export const tooManyInterimAnswers: Failure = {
  kind: 'bad_response',
  status: 502,
  message: 'backend sent too many interim responses',
  retry: 'never',
};

/** The backend's answer is not HTTP Sluice can pass on. */
export const badResponse: Failure = {
  kind: 'bad_response',
  status: 502,
  message: 'backend sent a malformed response',
  retry: 'never',
};
