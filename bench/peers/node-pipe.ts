// The floor of any proxy written for Node.js: it parses nothing. Each client connection gets a
// connection of its own to the next backend (round robin), and bytes are copied both ways as
// they come. No HTTP proxy on Node can move more requests per second than this on one core.
//
//   node bench/peers/node-pipe.ts --port 8082 --backends 127.0.0.1:9001,127.0.0.1:9002
//
// Prints "listening <port>" once ready; exits on SIGTERM/SIGINT.

import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    backends: { type: 'string' },
  },
});
if (!values.port || !values.backends) {
  console.error('usage: node-pipe.ts --port PORT --backends HOST:PORT[,HOST:PORT...]');
  process.exit(2);
}

const targets = values.backends.split(',').map((addr) => {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
});

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

server.listen(Number(values.port), values.host, () => {
  console.log(`listening ${values.port}`);
});

const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
