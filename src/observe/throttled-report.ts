// A failure that can repeat on every request (an access log on a full disk) is logged once per
// interval with how often it happened since, not once per request.
import type { Logger } from 'winston';

export class ThrottledReport {
  private readonly logger: Logger;
  private readonly message: string;
  private readonly intervalMs: number;
  private lastAt = Number.NEGATIVE_INFINITY;
  private times = 0;
  private bytes = 0;

  constructor(logger: Logger, message: string, intervalMs: number) {
    this.logger = logger;
    this.message = message;
    this.intervalMs = intervalMs;
  }

  report(error: NodeJS.ErrnoException, bytes: number): void {
    this.times++;
    this.bytes += bytes;
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    this.logger.error(this.message, {
      error: error.code ?? error.message,
      times: this.times,
      bytes: this.bytes,
    });
    this.times = 0;
    this.bytes = 0;
  }
}
