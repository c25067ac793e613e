// The floor of any proxy written for Node.js: it parses nothing. Each client connection gets a
// connection of its own to the next backend (round robin), and bytes are copied both ways as
// they come. No HTTP proxy on Node can move more requests per second than this on one core.
//
//   node bench/peers/node-pipe.ts --port 8082 --backends 127.0.0.1:9001,127.0.0.1:9002
//
// Prints "listening <port>" once ready; exits on SIGTERM/SIGINT.

import net from 'node:net';
import { peerArgs } from './args.ts';

const { host, port, backends: targets } = peerArgs('node-pipe.ts');

let next = 0;
const server = net.createServer({ noDelay: true }, (client) => {
  const target = targets[next] as { host: string; port: number };
  next = (next + 1) % targets.length;
  const backend = net.connect({ ...target, noDelay: true });
  client.on('data', (chunk: Buffer) => backend.write(chunk));
  backend.on('data', (chunk: Buffer) => client.write(chunk));
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
