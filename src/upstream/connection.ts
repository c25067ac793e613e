// A TCP connection to a backend, reused across requests. Socket events go to whichever
// exchange currently holds the connection; while idle in the pool, any event retires it.
import { connect, type Socket } from 'node:net';
import { contain } from '../observe/faults.ts';
import type { IdleLinks } from './idle-connections.ts';

/**
 * The one buffer every backend socket reads into (Node's `onread`); each read is copied out of it
 * at once, at its size. Node's own reads allocate 64 KiB and shrink it, a new ArrayBuffer per read
 * that the scavenger must sweep, and pass through the Readable machinery ('data', a nextTick).
 */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/** The exchange currently using a connection. */
export interface UpstreamUser {
  onUpstreamData(chunk: Buffer): void;
  /** The connection ended, failed or closed; it is unusable from now on. */
  onUpstreamClose(error: Error | undefined): void;
  onUpstreamDrain(): void;
  /** The backend half-closed: true keeps the connection half-open (a tunnel), else it closes. */
  onUpstreamEnd(): boolean;
}

export class UpstreamConnection implements IdleLinks<UpstreamConnection> {
  readonly socket: Socket;
  user: UpstreamUser | undefined;
  /** Requests this connection has carried, the current one included. */
  requests = 0;
  /** Clock time it went idle in the pool. */
  idleSince = 0;
  closed = false;
  /** It was closed for bytes that arrived while nobody held it. */
  unasked = false;
  idleNewer: UpstreamConnection | undefined;
  idleOlder: UpstreamConnection | undefined;
  idleListed = false;
  private readonly onRetire: (connection: UpstreamConnection) => void;

  /** Opens a connection to `host:port`; the socket reads through the shared `readBuffer`. */
  static open(
    endpoint: { readonly host: string; readonly port: number },
    onRetire: (connection: UpstreamConnection) => void,
  ): UpstreamConnection {
    let connection: UpstreamConnection | undefined;
    const socket = connect({
      host: endpoint.host,
      port: endpoint.port,
      // A tunnel's backend may half-close and still read (its user decides, on 'end').
      allowHalfOpen: true,
      onread: {
        buffer: readBuffer,
        callback: (size: number) => {
          const chunk = Buffer.allocUnsafe(size);
          chunk.set(readBuffer.subarray(0, size));
          connection?.received(chunk);
          // Reading goes on unless the exchange paused the socket (that still works).
          return true;
        },
      },
    });
    connection = new UpstreamConnection(socket, onRetire);
    return connection;
  }

  /** Bytes from the backend, for the exchange holding the connection. */
  readonly received: (chunk: Buffer) => void;

  constructor(socket: Socket, onRetire: (connection: UpstreamConnection) => void) {
    this.socket = socket;
    this.onRetire = onRetire;
    socket.setNoDelay(true);
    // A bug in the exchange using this connection closes it (the exchange hears of that).
    const fault = () => this.destroy();
    this.received = contain('backend_connection', fault, (chunk: Buffer) => {
      if (this.user) this.user.onUpstreamData(chunk);
      else {
        // Bytes from a backend nobody asked: the connection is out of step, drop it.
        this.unasked = true;
        this.destroy();
      }
    });
    socket.on(
      'drain',
      contain('backend_connection', fault, () => this.user?.onUpstreamDrain()),
    );
    const closed = (error?: Error) => this.closedBy(error);
    socket.on(
      'end',
      contain(
        'backend_connection',
        () => socket.destroy(),
        () => {
          if (!this.user?.onUpstreamEnd()) closed();
        },
      ),
    );
    socket.on(
      'error',
      contain('backend_connection', () => socket.destroy(), closed),
    );
    socket.on(
      'close',
      contain(
        'backend_connection',
        () => {},
        () => closed(),
      ),
    );
  }

  destroy(): void {
    this.socket.destroy();
    this.closedBy(undefined);
  }

  private closedBy(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    // A half-closed socket would linger: make sure the file descriptor goes.
    this.socket.destroy();
    const user = this.user;
    this.user = undefined;
    this.onRetire(this);
    user?.onUpstreamClose(error);
  }
}
