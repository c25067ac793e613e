// What an exchange needs of the client side, and all it may touch of it: ClientConnection
// implements it over a socket; the exchange's unit tests implement it over arrays. Keeping the
// exchange to this interface is what lets either change without the other.
import type { RequestHead } from '../http/message.ts';

/**
 * The deadlines an exchange arms: connect to a backend, a backend's answer, the client's next
 * piece of request body (timeouts.clientBody), an idle client or tunnel.
 */
export type DeadlineName = 'connect' | 'response' | 'body' | 'idle';

export interface Downstream {
  readonly address: string;
  /** The client's port (for the access log). */
  readonly port: number | undefined;
  /** The peer is a trusted proxy: its X-Forwarded-For is kept. */
  readonly trusted: boolean;
  /** What the client connected to (`127.0.0.1:8080`): the authority of a request without Host. */
  readonly localAuthority: string;
  /** The port the client connected to (X-Forwarded-Port). */
  readonly localPort: number;
  /** The client has gone: writes are dropped. */
  readonly gone: boolean;
  /** The socket holds more than its buffer wants: wait for the exchange's onClientDrain. */
  readonly needsDrain: boolean;
  /** Bytes written and not yet taken by the client. */
  readonly queued: number;
  /** Whether the client wants the connection kept after this request. */
  wantsKeepAlive(request: RequestHead): boolean;
  /** Writes bytes (strings are heads, latin1); false when the socket is full. */
  write(data: Buffer | string): boolean;
  /** Writes a head and many body buffers as one batch. */
  writeAll(head: string, body: readonly Buffer[]): void;
  /** Stops reading from the client (a body waits in its socket: bounded memory). */
  pause(): void;
  resume(): void;
  /** Arms the named deadline from now; undefined disarms (the exchange expires on it). */
  arm(deadline: DeadlineName | undefined): void;
  /** A 101 went out: bytes the client sent after the request are the tunnel's now. */
  startTunnel(): void;
  /** Half-closes the connection (a tunnel's backend ended). */
  end(): void;
  /** Closes the connection at once (an answer cut short). */
  destroy(): void;
  /**
   * Closes it with a reset: the only sign of a cut that an answer delimited by the close has (a
   * FIN would end it as a whole one ends), and of a tunnel's backend failing.
   */
  reset(): void;
  /** The exchange is over; the connection reads the next request only when `keepAlive`. */
  done(keepAlive: boolean): void;
}
