// The supervisor's handle on one worker process: its slot, where it is in its life (booted,
// started, listening, retiring), when it was last heard from, and its channel.
import type { ChildProcess } from 'node:child_process';
import type { ToWorker } from './messages.ts';

/** One worker process: its slot (`index`, 1..count; 0 for the spare), and where it is in its life. */
export class Worker {
  index: number;
  readonly child: ChildProcess;
  startedAt = Date.now();
  /** It said hello: its modules are loaded. */
  booted = false;
  /** The `start` message was sent (a reload before that is carried by `start` itself). */
  started = false;
  listening = false;
  /** Asked to stop: its end is not a crash. */
  retiring = false;
  /** A rolling restart's new worker: if it dies before it listens, the roll stops instead. */
  trial: boolean;
  /** When it last sent anything (its metrics come every second once it listens). */
  lastHeard = Date.now();
  /** Killed for its silence: its end is logged and counted as `hung`. */
  hung = false;
  /** SIGKILL if it has not exited when its time to stop is up. */
  killTimer: NodeJS.Timeout | undefined;
  readonly ready: Promise<number>;
  readonly exited: Promise<void>;
  settleReady!: (port: number | Error) => void;
  settleExit!: () => void;

  constructor(index: number, child: ChildProcess, trial: boolean) {
    this.index = index;
    this.child = child;
    this.trial = trial;
    this.ready = new Promise<number>((resolve, reject) => {
      this.settleReady = (port) => (port instanceof Error ? reject(port) : resolve(port));
    });
    this.ready.catch(() => {});
    this.exited = new Promise<void>((resolve) => {
      this.settleExit = resolve;
    });
  }

  /** Listening and not asked to stop: it pushes its metrics every second. */
  get owesHeartbeat(): boolean {
    return this.listening && !this.retiring && !this.hung;
  }

  send(message: ToWorker): void {
    if (this.child.connected) this.child.send(message, (error) => error && undefined);
  }
}
