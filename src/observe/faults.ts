// The process-wide policy for bugs that escape: one connection pays, never the process.
//
// - Socket event handlers of the proxy, the backend connections and the admin port run inside
//   `contain()`: an exception there is reported and closes that one connection.
// - Whatever escapes even that (a throw in a timer, a rejected promise nobody awaited) reaches
//   `installProcessPolicy`'s handlers, which report it and keep serving. Only a storm (more than
//   `stormLimit` in `stormWindowMs`) ends the process, with exit code 70, so a supervisor starts
//   a clean one instead of a proxy whose state is broken on every request.
// - A report is one `error` log line with the stack and +1 on sluice_internal_errors_total{where}.
import type { Logger } from 'winston';
import type { Metrics } from './metrics.ts';

export type FaultReporter = (where: string, error: unknown) => void;

const reporters = new Set<FaultReporter>();

/** Registers a running Sluice's logger and metrics; returns the function that unregisters it. */
export function addFaultReporter(logger: Logger, metrics: Metrics | undefined): () => void {
  const reporter: FaultReporter = (where, error) => {
    metrics?.internalError(where);
    logger.error('internal error', {
      where,
      error: error instanceof Error ? error.message : String(error),
      stack: error instanceof Error ? error.stack : undefined,
    });
  };
  reporters.add(reporter);
  return () => reporters.delete(reporter);
}

/** Reports a contained fault to every running instance (or to stderr when none is running). */
export function reportFault(where: string, error: unknown): void {
  if (reporters.size === 0) console.error(`sluice: internal error in ${where}:`, error);
  for (const reporter of reporters) {
    try {
      reporter(where, error);
    } catch {}
  }
}

/**
 * `handler` as a socket event handler whose exceptions are reported and then handed to
 * `onFault` (which closes the connection) instead of reaching the event loop.
 */
export function contain<A extends unknown[]>(
  where: string,
  onFault: () => void,
  handler: (...args: A) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      handler(...args);
    } catch (error) {
      reportFault(where, error);
      try {
        onFault();
      } catch (again) {
        reportFault(where, again);
      }
    }
  };
}

const stormLimit = 100;
const stormWindowMs = 10_000;

/** For the `sluice` command: uncaught exceptions and unhandled rejections are reported, not fatal. */
export function installProcessPolicy(exit: (code: number) => void = (code) => process.exit(code)): void {
  const recent: number[] = [];
  const escaped = (where: string) => (error: unknown) => {
    reportFault(where, error);
    const now = Date.now();
    recent.push(now);
    while ((recent[0] ?? now) < now - stormWindowMs) recent.shift();
    if (recent.length > stormLimit) {
      console.error(`sluice: ${recent.length} internal errors within ${stormWindowMs} ms; exiting`);
      exit(70);
    }
  };
  process.on('uncaughtException', escaped('uncaught_exception'));
  process.on('unhandledRejection', escaped('unhandled_rejection'));
}
