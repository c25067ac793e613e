// One active health check: a raw `HEAD` request on a socket of its own (never the proxy's
// keep-alive pool, so a check sees what a new connection sees), the status line read with the
// proxy's own response parser, then the socket closed. A single timer bounds connect + answer.
// The promise never rejects and settles only once the socket is closed and the timer cleared,
// so nothing outlives a probe.
import net from 'node:net';
import { localErrorCode, socketFailure } from '../http/failure-kinds.ts';
import { HttpError } from '../http/message.ts';
import { parseResponseHead } from '../http/parser.ts';

export type ProbeResultKind = 'success' | 'timeout' | 'refused' | 'reset' | 'bad_status' | 'local_error';

/**
 * The result kinds about the backend, e.g. to create the `sluice_health_checks_total{result}`
 * series at 0. Not `local_error`: a probe this machine could not make (EMFILE …) says nothing
 * about the backend and leaves its state as it was.
 */
export const probeResultKinds: readonly ProbeResultKind[] = [
  'success',
  'timeout',
  'refused',
  'reset',
  'bad_status',
];

export interface ProbeTarget {
  host: string;
  port: number;
}

export interface ProbeOptions {
  /** Origin-form request target, e.g. `/` or `/healthz`. */
  path: string;
  /** Value of the Host header. */
  hostHeader: string;
  /** Bound on connect + answer together. */
  timeoutMs: number;
  /** Inclusive range of status codes that pass. */
  expectStatus: readonly [number, number];
  /** Aborting ends the probe at once (result `timeout`, reason `probe aborted`). */
  signal?: AbortSignal;
}

export interface ProbeResult {
  result: ProbeResultKind;
  /** The final status code, when a status line was read. */
  status?: number;
  /** From the start of the connect to the verdict. */
  durationMs: number;
  /** Human text for logs and /status: `HEAD / answered 503`, `connect refused`, ... */
  reason: string;
}

export type ProbeFunction = (target: ProbeTarget, options: ProbeOptions) => Promise<ProbeResult>;

/** Bound on a probe answer's head; a health endpoint has no business sending more. */
const maxProbeHead = 16 * 1024;
/** Visible characters only: no space, CR, LF or other control character can reach the wire. */
const VISIBLE = /^[!-~\x80-\xff]+$/;

export function probe(target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const { path, hostHeader, timeoutMs, expectStatus, signal } = options;
  if (!VISIBLE.test(path) || !VISIBLE.test(hostHeader)) {
    return Promise.resolve({
      result: 'bad_status',
      durationMs: 0,
      reason: 'invalid probe request (path or Host holds control characters)',
    });
  }
  if (signal?.aborted) {
    return Promise.resolve({ result: 'timeout', durationMs: 0, reason: 'probe aborted' });
  }

  return new Promise((resolve) => {
    let verdict: ProbeResult | undefined;
    let connected = false;
    let received: Buffer = Buffer.alloc(0);

    const socket = net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);

    const finish = (result: ProbeResultKind, reason: string, status?: number): void => {
      if (verdict !== undefined) return;
      verdict = { result, durationMs: performance.now() - started, reason };
      if (status !== undefined) verdict.status = status;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
    };

    const timer = setTimeout(() => {
      finish(
        'timeout',
        connected ? `no answer within ${timeoutMs} ms` : `no connection within ${timeoutMs} ms`,
      );
    }, timeoutMs);

    const onAbort = (): void => finish('timeout', 'probe aborted');
    signal?.addEventListener('abort', onAbort, { once: true });

    socket.on('connect', () => {
      connected = true;
      socket.write(
        `HEAD ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: sluice-health/0.1\r\nConnection: close\r\n\r\n`,
        'latin1',
      );
    });

    socket.on('data', (chunk: Buffer) => {
      if (verdict !== undefined) return;
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      try {
        for (;;) {
          const parsed = parseResponseHead(received, maxProbeHead);
          if (parsed === null) return;
          const { status } = parsed.head;
          // Interim answers (100 Continue, 103 Early Hints) precede the real one.
          if (status >= 100 && status < 200 && status !== 101) {
            received = received.subarray(parsed.size);
            continue;
          }
          const pass = status >= expectStatus[0] && status <= expectStatus[1];
          finish(pass ? 'success' : 'bad_status', `HEAD ${path} answered ${status}`, status);
          return;
        }
      } catch (error) {
        const message = error instanceof HttpError ? error.message : String(error);
        finish('bad_status', `malformed answer: ${message}`);
      }
    });

    socket.on('end', () => {
      if (received.length > 0) finish('bad_status', 'connection closed mid-answer');
      else finish('reset', 'connection closed without an answer');
    });

    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      const failure = socketFailure(error);
      if (localErrorCode(error)) finish('local_error', `local resource error: ${code}`);
      else if (failure === 'refused') finish('refused', 'connect refused');
      else if (failure === 'reset') finish('reset', 'connection reset');
      else if (!connected) finish('refused', `connect failed: ${code}`);
      else finish('reset', `socket error: ${code}`);
    });

    // The single place the promise settles: after the socket (and with it every listener) is gone.
    socket.on('close', () => {
      finish('reset', 'connection closed without an answer');
      resolve(verdict as ProbeResult);
    });
  });
}
