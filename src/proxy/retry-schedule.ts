// When a failed attempt is tried again on another backend. The first attempt runs outside
// p-retry, so the hot path makes no promises; p-retry takes over at the first failure (replayed
// to it as attempt 1) and paces the rest with jittered exponential backoff between `minMs` and
// `maxMs`. Each retry must pass the exchange's own check (the request may still be sent again,
// nothing reached the client) and take a token from the pool's retry budget.
import pRetry, { AbortError } from 'p-retry';

/** A failed attempt, as p-retry sees it. */
export class AttemptFailure extends Error {
  readonly kind: string;
  readonly status: number;
  constructor(kind: string, status: number, message: string) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export interface RetryHooks {
  /** The request may still be sent again. */
  mayRetry(): boolean;
  /** Takes one retry from the budget, or says none is left. */
  takeBudget(): boolean;
  /** Start the next attempt; it ends with succeeded() or failed(). */
  next(): void;
  /** No more attempts: answer with this failure. */
  giveUp(failure: AttemptFailure): void;
}

export interface BackoffOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  minMs: number;
  maxMs: number;
}

export class RetrySchedule {
  private readonly hooks: RetryHooks;
  private readonly options: BackoffOptions;
  private pending: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private abort: AbortController | undefined;

  constructor(hooks: RetryHooks, options: BackoffOptions) {
    this.hooks = hooks;
    this.options = options;
  }

  /** A retry (not the first attempt) is under way. */
  get retrying(): boolean {
    return this.pending !== undefined;
  }

  /** The current attempt got its answer. */
  succeeded(): void {
    this.settle();
  }

  /** The current attempt failed in a way that may be retried. */
  failed(failure: AttemptFailure): void {
    if (this.pending) this.settle(failure);
    else this.start(failure);
  }

  /** No backend is left to try: stop with this failure. */
  stop(failure: AttemptFailure): void {
    this.settle(new AbortError(failure));
  }

  /** The exchange ended: no more attempts. */
  cancel(): void {
    this.settle();
    this.abort?.abort();
  }

  private start(first: AttemptFailure): void {
    const retries = this.options.attempts - 1;
    if (retries <= 0 || !this.hooks.mayRetry()) {
      this.hooks.giveUp(first);
      return;
    }
    const abort = new AbortController();
    this.abort = abort;
    pRetry((attempt) => (attempt === 1 ? Promise.reject(first) : this.attempt()), {
      retries,
      minTimeout: this.options.minMs,
      maxTimeout: this.options.maxMs,
      factor: 2,
      randomize: true,
      signal: abort.signal,
      shouldRetry: ({ error }) =>
        error instanceof AttemptFailure && this.hooks.mayRetry() && this.hooks.takeBudget(),
    }).then(
      () => {},
      (error: unknown) => {
        if (abort.signal.aborted) return;
        this.hooks.giveUp(error instanceof AttemptFailure ? error : first);
      },
    );
  }

  private attempt(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.hooks.next();
    });
  }

  private settle(error?: Error): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    if (error) pending.reject(error);
    else pending.resolve();
  }
}
