// The supervisor of a cluster's workers: starts them (the first binds the port, the others join
// it with SO_REUSEPORT), replaces one that dies (at once, then with a growing delay if its
// replacements keep dying young), rolls them one by one (a new worker listens before the old one
// drains), passes messages both ways, and stops them all within the shutdown timeout.
//
// A Node process takes 0.4 to 1.5 s to load Sluice's modules on a busy 2-core machine, so one
// spare process is kept booted (modules loaded, nothing bound): a dead worker's slot is taken
// by the spare, which only has to build its pools and listen (tens of ms), and a new spare
// boots behind it. A rolling restart does not use the spare: it must run the code on disk now.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'winston';
import type { Config } from '../config/types.ts';
import type {
  FromWorker,
  MetricsJson,
  Question,
  Resolved,
  RestartReason,
  StateUpdate,
  ToWorker,
} from './messages.ts';
import { restartDelay, stableAfterMs, workerConfig } from './plan.ts';
import type { Snapshot } from './snapshot.ts';
import { Worker } from './worker-process.ts';

export interface SupervisorOptions {
  config: Config;
  count: number;
  logger: Logger;
  /** Every backend's state now (what a new worker starts from). */
  states(): StateUpdate[];
  /** What each DNS name resolved to now. */
  resolved(): Resolved;
  /** A worker's report of a real exchange's outcome. */
  onPassive(report: Extract<FromWorker, { type: 'passive' }>): void;
  /** A worker's metrics, pushed every second (`pid`). */
  onMetrics?(pid: number, snapshot: Snapshot): void;
  /** A stopping worker's last metrics (`pid`); then `onGone` when its process ended. */
  onFinal?(pid: number, metrics: MetricsJson): void;
  onGone?(pid: number): void;
  /** A worker was started in place of another: `crashed`, `hung` or `rolling`. */
  onRestart?(reason: RestartReason): void;
  /** The worker module (default ./worker.ts). */
  entry?: string;
  /** A listening worker silent this long is killed and replaced (default `heartbeatTimeoutMs`). */
  heartbeatTimeoutMs?: number;
}

/** How long a new worker may take to listen. */
const readyTimeoutMs = 10_000;
/**
 * A listening worker pushes its metrics every second (messages.ts `pushIntervalMs`). One silent
 * for this long is stuck (a busy loop, SIGSTOP, a swap storm) while the kernel still hands it
 * its share of new connections: it is killed and replaced. Long enough for any GC pause.
 */
export const heartbeatTimeoutMs = 10_000;
/** How often the supervisor looks for silent workers. */
const watchIntervalMs = 1_000;
/** A worker asked to stop is killed this long after the shutdown timeout it was given. */
const killMarginMs = 1_000;
/** How long a question to the workers waits for an answer. */
const answerTimeoutMs = 2_000;

export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly logger: Logger;
  private readonly workers = new Set<Worker>();
  private readonly youngDeaths = new Map<number, number>();
  private readonly pending = new Map<
    number,
    { worker: Worker; settle: (answer: Extract<FromWorker, { type: 'answer' }> | undefined) => void }
  >();
  private config: Config;
  private port: number;
  private nextId = 1;
  private running = false;
  private stopping = false;
  private rolling: Promise<void> | undefined;
  private spare: Worker | undefined;
  private readonly heartbeatTimeoutMs: number;
  private watchdog: NodeJS.Timeout | undefined;
  private lastWatch = Date.now();

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.logger = options.logger;
    this.config = options.config;
    this.port = options.config.listen.port;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? heartbeatTimeoutMs;
  }

  get count(): number {
    return this.options.count;
  }

  /** Starts every worker; resolves with the port they share once all listen. */
  async start(): Promise<number> {
    this.port = await this.spawn(1).ready;
    const others = Array.from({ length: this.count - 1 }, (_, i) => this.spawn(i + 2).ready);
    await Promise.all(others);
    this.running = true;
    this.prepareSpare();
    this.lastWatch = Date.now();
    this.watchdog = setInterval(() => this.watch(), watchIntervalMs).unref();
    return this.port;
  }

  /**
   * Every worker opens its access log file again. Told over IPC, not with SIGUSR1: a process
   * still loading its modules has no handler yet, and Node opens its inspector on SIGUSR1 then
   * (workers run with --disable-sigusr1).
   */
  reopenLogs(): void {
    for (const worker of this.workers) if (worker.started) worker.send({ type: 'reopen' });
  }

  /** The live workers, by slot. */
  list(): { index: number; pid: number | undefined; listening: boolean; startedAt: number }[] {
    return [...this.workers]
      .filter((worker) => !worker.retiring && worker.index > 0)
      .sort((a, b) => a.index - b.index)
      .map((worker) => ({
        index: worker.index,
        pid: worker.child.pid,
        listening: worker.listening,
        startedAt: worker.startedAt,
      }));
  }

  /**
   * Ready for traffic (/readyz): every slot's first worker has listened (start is over), and at
   * least one worker listens now and is not retiring. A crash or a rolling restart leaves the
   * others listening, so readiness does not flap; it falls only if none is left, or at stop.
   */
  serving(): boolean {
    if (!this.running || this.stopping) return false;
    for (const worker of this.workers)
      if (worker.index > 0 && worker.listening && !worker.retiring) return true;
    return false;
  }

  /** The spare process: `booted` once its modules are loaded and it can take a slot at once. */
  spareStatus(): { pid: number | undefined; booted: boolean } | undefined {
    const spare = this.spare;
    return spare && { pid: spare.child.pid, booted: spare.booted };
  }

  /** Tells every worker that shutdown is coming: its answers close their connections. */
  drain(): void {
    for (const worker of this.workers) if (worker.started) worker.send({ type: 'drain' });
  }

  /** Sends backends' states to every worker (in order with everything else sent to it). */
  broadcastStates(states: StateUpdate[]): void {
    for (const worker of this.workers) if (worker.started) worker.send({ type: 'health', states });
  }

  /**
   * Applies a config the supervisor has validated and applied itself in every worker; resolves
   * with the problems of those that could not (none, in practice: nothing left can fail).
   */
  async reload(config: Config): Promise<string[]> {
    this.config = config;
    const resolved = this.options.resolved();
    const states = this.options.states();
    const answers = await Promise.all(
      [...this.workers]
        .filter((worker) => worker.started && !worker.retiring)
        .map(async (worker) => {
          const answer = await this.request(worker, (id) => ({
            type: 'reload',
            id,
            config: this.configFor(),
            resolved,
            states,
          }));
          if (!answer) return `worker ${worker.index}: no answer`;
          return answer.error === undefined ? undefined : `worker ${worker.index}: ${answer.error}`;
        }),
    );
    return answers.filter((problem) => problem !== undefined);
  }

  /** Asks every listening worker; a worker that does not answer in time is left out. */
  async ask<T>(question: Question): Promise<{ index: number; pid: number | undefined; value: T }[]> {
    const listening = [...this.workers].filter((worker) => worker.listening && !worker.retiring);
    const answers = await Promise.all(
      listening.map(async (worker) => {
        const answer = await this.request(worker, (id) => ({ type: 'ask', id, question }));
        if (!answer || answer.error !== undefined) return undefined;
        return { index: worker.index, pid: worker.child.pid, value: answer.value as T };
      }),
    );
    return answers.filter((answer) => answer !== undefined);
  }

  /** Starts a rolling restart unless one runs; says what it did. */
  restart(): { started: boolean; message: string } {
    if (this.stopping || !this.running) return { started: false, message: 'not running' };
    if (this.rolling) return { started: false, message: 'a rolling restart is already under way' };
    this.rolling = this.roll().finally(() => {
      this.rolling = undefined;
      this.prepareSpare();
    });
    return {
      started: true,
      message: `replacing ${this.count} worker${this.count === 1 ? '' : 's'} one at a time`,
    };
  }

  /** Resolves when the rolling restart under way (if any) is over. */
  async settled(): Promise<void> {
    await this.rolling;
  }

  /** Every worker finishes its in-flight requests and exits; those still there after `graceMs` are killed. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    const workers = [...this.workers];
    for (const worker of workers) this.retire(worker, graceMs);
    await Promise.all(workers.map((worker) => worker.exited));
  }

  /** SIGKILL to every worker (the supervisor is exiting at once). */
  kill(): void {
    for (const worker of this.workers) worker.child.kill('SIGKILL');
  }

  private configFor(): Config {
    return workerConfig(this.config, this.count, this.port);
  }

  /** A worker for this slot: the spare if there is one (unless it must be new code), else a new process. */
  private spawn(index: number, trial = false): Worker {
    const spare = this.spare;
    if (spare && !trial) {
      this.spare = undefined;
      spare.index = index;
      spare.startedAt = Date.now();
      if (spare.booted) this.begin(spare);
      this.prepareSpare();
      return spare;
    }
    return this.fork(index, trial);
  }

  private prepareSpare(): void {
    if (this.stopping || this.spare) return;
    this.spare = this.fork(0, false);
  }

  private fork(index: number, trial: boolean): Worker {
    const entry = this.options.entry ?? fileURLToPath(new URL('./worker.ts', import.meta.url));
    const child = fork(entry, [], {
      // No debugger for whoever may signal it (see reopenLogs).
      execArgv: [...process.execArgv, '--disable-sigusr1'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const worker = new Worker(index, child, trial);
    this.workers.add(worker);
    child.on('message', (message: FromWorker) => this.received(worker, message));
    child.on('error', (error) =>
      this.logger.warn('worker channel error', { worker: index, error: error.message }),
    );
    child.once('exit', (code, signal) => this.ended(worker, code, signal));
    return worker;
  }

  private received(worker: Worker, message: FromWorker): void {
    worker.lastHeard = Date.now();
    switch (message.type) {
      case 'hello':
        worker.booted = true;
        if (worker.index > 0) this.begin(worker);
        return;
      case 'ready':
        worker.listening = true;
        this.logger.info('worker listening', {
          worker: worker.index,
          pid: worker.child.pid,
          port: message.port,
        });
        worker.settleReady(message.port);
        return;
      case 'passive':
        this.options.onPassive(message);
        return;
      case 'invalidated':
        for (const other of this.workers)
          if (other !== worker && other.started) other.send({ type: 'invalidate', keys: message.keys });
        return;
      case 'metrics':
        if (worker.child.pid !== undefined) this.options.onMetrics?.(worker.child.pid, message);
        return;
      case 'final':
        if (worker.child.pid !== undefined) this.options.onFinal?.(worker.child.pid, message.metrics);
        return;
      case 'answer': {
        const waiting = this.pending.get(message.id);
        this.pending.delete(message.id);
        waiting?.settle(message);
      }
    }
  }

  private begin(worker: Worker): void {
    worker.started = true;
    worker.send({
      type: 'start',
      index: worker.index,
      config: this.configFor(),
      resolved: this.options.resolved(),
      states: this.options.states(),
    });
  }

  private request(
    worker: Worker,
    message: (id: number) => ToWorker,
  ): Promise<Extract<FromWorker, { type: 'answer' }> | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, answerTimeoutMs);
      this.pending.set(id, {
        worker,
        settle: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
      });
      worker.send(message(id));
    });
  }

  /**
   * Asks `worker` to stop within `graceMs` (its in-flight requests finish); one still there a
   * second later is killed, so a stuck worker never keeps its share of the port.
   */
  private retire(worker: Worker, graceMs: number): void {
    worker.retiring = true;
    worker.send({ type: 'stop' });
    worker.killTimer ??= setTimeout(() => {
      this.logger.error('worker did not stop in time: killed', {
        worker: worker.index,
        pid: worker.child.pid,
        graceMs,
      });
      worker.child.kill('SIGKILL');
    }, graceMs + killMarginMs).unref();
  }

  /** What a retired worker is given: the shutdown timeout, as SIGTERM gives. */
  private get retireGraceMs(): number {
    return this.config.timeouts.shutdown;
  }

  /**
   * Kills every listening worker silent for the heartbeat timeout; `ended` replaces it. Judged
   * after this turn's poll phase has read the mail waiting, and not at all on a tick that comes
   * late: the supervisor itself was stalled, and its workers' pushes are still unread.
   */
  private watch(): void {
    const now = Date.now();
    const stalled = now - this.lastWatch > 1.5 * watchIntervalMs;
    this.lastWatch = now;
    if (stalled) {
      for (const worker of this.workers) worker.lastHeard = now;
      return;
    }
    setImmediate(() => {
      const judged = Date.now();
      for (const worker of this.workers)
        if (worker.owesHeartbeat && judged - worker.lastHeard > this.heartbeatTimeoutMs)
          this.killHung(worker, judged - worker.lastHeard);
    });
  }

  private killHung(worker: Worker, silentMs: number): void {
    worker.hung = true;
    this.logger.error('worker not responding: killed', {
      worker: worker.index,
      pid: worker.child.pid,
      silentMs,
    });
    worker.child.kill('SIGKILL');
  }

  private ended(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(worker);
    clearTimeout(worker.killTimer);
    worker.settleExit();
    if (worker.child.pid !== undefined) this.options.onGone?.(worker.child.pid);
    for (const [id, waiting] of this.pending)
      if (waiting.worker === worker) {
        this.pending.delete(id);
        waiting.settle(undefined);
      }
    const lived = Date.now() - worker.startedAt;
    const exit = signal
      ? `killed by ${signal}`
      : code === 1
        ? 'exited with code 1 (an uncaught error, on its stderr)'
        : `exited with code ${code}`;
    const fields = { worker: worker.index, pid: worker.child.pid, exit, livedMs: lived };
    worker.settleReady(new Error(`worker ${worker.index} ${exit} before it listened`));
    if (worker.retiring || this.stopping) {
      this.logger.info('worker ended', { ...fields, reason: 'asked to stop' });
      return;
    }
    if (worker === this.spare) {
      this.spare = undefined;
      const delayMs = restartDelay((this.youngDeaths.get(0) ?? 0) + 1);
      this.youngDeaths.set(0, (this.youngDeaths.get(0) ?? 0) + 1);
      this.logger.error('worker ended', { ...fields, reason: 'spare crashed', replacingInMs: delayMs });
      setTimeout(() => this.prepareSpare(), delayMs).unref();
      return;
    }
    if (!this.running || (worker.trial && !worker.listening)) {
      this.logger.error('worker ended', { ...fields, reason: 'failed to start' });
      return;
    }
    const deaths = lived < stableAfterMs ? (this.youngDeaths.get(worker.index) ?? 0) + 1 : 1;
    this.youngDeaths.set(worker.index, deaths);
    const delayMs = restartDelay(deaths);
    const reason = worker.hung ? 'hung' : 'crashed';
    this.logger.error('worker ended', { ...fields, reason, replacingInMs: delayMs });
    const replace = () => {
      if (this.stopping) return;
      this.options.onRestart?.(reason);
      this.spawn(worker.index);
    };
    if (delayMs === 0) replace();
    else setTimeout(replace, delayMs).unref();
  }

  /** One slot at a time: a new worker listens beside the old one, then the old one drains and exits. */
  private async roll(): Promise<void> {
    // The spare runs the code that was on disk when it booted: a deploy must not get it.
    if (this.spare) this.retire(this.spare, this.retireGraceMs);
    this.spare = undefined;
    const old = [...this.workers]
      .filter((worker) => !worker.retiring && worker.index > 0)
      .sort((a, b) => a.index - b.index);
    this.logger.info('rolling restart started', { workers: old.map((worker) => worker.child.pid) });
    for (const previous of old) {
      if (this.stopping) return;
      if (!this.workers.has(previous)) continue;
      const fresh = this.spawn(previous.index, true);
      const timeout = setTimeout(
        () => fresh.settleReady(new Error('not listening after 10 s')),
        readyTimeoutMs,
      );
      try {
        await fresh.ready;
      } catch (error) {
        this.logger.error('rolling restart stopped: a new worker did not start; the others keep serving', {
          worker: previous.index,
          error: (error as Error).message,
        });
        this.retire(fresh, this.retireGraceMs);
        return;
      } finally {
        clearTimeout(timeout);
      }
      fresh.trial = false;
      this.options.onRestart?.('rolling');
      this.retire(previous, this.retireGraceMs);
    }
    this.logger.info('rolling restart done', { workers: this.list().map((worker) => worker.pid) });
  }
}
