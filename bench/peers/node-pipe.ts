// The floor of any proxy written for Node.js: it parses nothing. Each client connection gets a
// connection of its own to the next backend (round robin), and bytes are copied both ways as
// they come. No HTTP proxy on Node can move more requests per second than this on one core.
// Backend sockets read as Sluice's do (Node's `onread` into one shared buffer, each read copied
// out at its size), so the floor has the same tricks as what is measured against it.
//
//   node bench/peers/node-pipe.ts --port 8082 --backends 127.0.0.1:9001,127.0.0.1:9002
//
// Prints "listening <port>" once ready; exits on SIGTERM/SIGINT.

import net from 'node:net';
import { peerArgs } from './args.ts';

const { host, port, backends: targets } = peerArgs('node-pipe.ts');

const readBuffer = Buffer.allocUnsafe(64 * 1024);

let next = 0;
const server = net.createServer({ noDelay: true }, (client) => {
  const target = targets[next] as { host: string; port: number };
  next = (next + 1) % targets.length;
  const backend = net.connect({
    ...target,
    noDelay: true,
    onread: {
      buffer: readBuffer,
      callback: (size: number) => {
        client.write(Buffer.from(readBuffer.subarray(0, size)));
        return true;
      },
    },
  });
  client.on('data', (chunk: Buffer) => backend.write(chunk));
  for (const [one, other] of [
    [client, backend],
    [backend, client],
  ] as const) {
    one.on('error', () => other.destroy());
    one.on('close', () => other.destroy());
  }
});

server.listen(port, host, () => {
  console.log(`listening ${port}`);
});

const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
