// Whether a client that did not read is to blame for a backend's failure mid-response (audit L).
//
// A client that stops reading fills its socket, and Sluice pauses the backend (backpressure):
// from then on the backend's writes block. Many backends give up on a write blocked for a while
// (nginx send_timeout, Apache Timeout, gunicorn's worker timeout) and close or reset. That close
// is the client's doing, not a failure of the backend: it must not reach the passive check,
// outlier ejection or sluice_backend_errors_total, as the client's own deadline (clientIdle,
// `client_send_timeout`) never does.
//
// Sluice cannot see that close when it happens: a paused socket is not read, so its FIN or reset
// waits in the kernel behind the bytes the backend had queued, and shows only once the client
// reads again and Sluice has taken that backlog (in the audit's repro, 0.5-12 ms after the
// release; the client never looks paused then). So "paused at the moment the close is seen"
// misses nearly every such close, and "paused at some point" would excuse any backend that dies
// in a long download. The rule, precisely:
//
//   A failure is the client's doing when Sluice had held the backend for the client for at least
//   `longHoldMs` in one stretch (the hold still running, or an earlier one), and since that
//   stretch ended the backend has flowed freely (not held) for less than `backlogMs` in all and
//   sent less than `backlogBytes`.
//
// - `longHoldMs` (1 s): a client that reads holds the backend for milliseconds at a time, which
//   no backend's send timeout takes for a stall. So a backend that dies while its client keeps
//   reading, with or without backpressure, is still counted against it (audit F).
// - `backlogMs` (1 s) of free flow: what a backend queued while held reaches Sluice at memory
//   speed once released (a few MB of socket buffers: milliseconds, well under a second even on a
//   loaded machine); short holds after a long one (a client that reads slowly) do not use it up,
//   since the backlog does not move then. A close seen later came after the backend was given
//   its turn again: a backend that closes 10 s after the client resumed reading is charged.
// - `backlogBytes` (16 MiB): nor can the backlog be more than the kernel held for the connection
//   (the backend's send buffer and Sluice's receive buffer: at most 4 + 6 MiB with Linux's
//   defaults, tcp_wmem and tcp_rmem). A backend that sends 40 MiB in the second after the client
//   read again, then dies, failed on its own (audit M).
// - A backend's silence is not judged here: after a release the response deadline runs on the
//   backend's clock anew (exchange.ts onClientDrain), so a response timeout is all its own.

const longHoldMs = 1000;
const backlogMs = 1000;
const backlogBytes = 16 * 1024 * 1024;

/** The holds of one exchange's backend for its client; made at the first one. */
export class ClientHold {
  /** When the running hold began, or -1 while the backend flows. */
  private heldSince = -1;
  /** When the last hold ended. */
  private releasedAt = 0;
  /** Some hold lasted at least longHoldMs. */
  private longOne = false;
  /** Free-flowing time since the last long hold ended, up to the running hold's start. */
  private freeMs = 0;
  /** Bytes the backend sent the client since the last long hold ended. */
  private sentBytes = 0;

  /** Sluice paused the backend because the client's socket is full. */
  held(now: number): void {
    if (this.heldSince !== -1) return;
    this.heldSince = now;
    if (this.longOne) this.freeMs += now - this.releasedAt;
  }

  /** The client drained its socket: the backend flows again. */
  released(now: number): void {
    if (this.heldSince === -1) return;
    if (now - this.heldSince >= longHoldMs) {
      this.longOne = true;
      this.freeMs = 0;
      this.sentBytes = 0;
    }
    this.heldSince = -1;
    this.releasedAt = now;
  }

  /** The backend's bytes went on to the client. */
  sent(bytes: number): void {
    this.sentBytes += bytes;
  }

  /** Whether a backend failure seen now is the client's doing (the rule above). */
  blamesClient(now: number): boolean {
    const holding = this.heldSince !== -1;
    if (holding && now - this.heldSince >= longHoldMs) return true;
    if (!this.longOne || this.sentBytes >= backlogBytes) return false;
    return this.freeMs + (holding ? 0 : now - this.releasedAt) < backlogMs;
  }
}
