// Small node:http backends for behaviour nginx cannot easily produce (tests may use node:http).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface NodeBackend {
  server: Server;
  port: number;
  /** Sockets the backend has accepted (to count connections). */
  connections: number;
  close(): Promise<void>;
}

export async function startNodeBackend(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  port = 0,
): Promise<NodeBackend> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  const backend: NodeBackend = {
    server,
    port: 0,
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    backend.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A port that was free a moment ago, for a listener that needs to know its port in advance. */
export const freePort = closedPort;
