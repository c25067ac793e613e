// The command line both Node peers take: --port PORT --backends HOST:PORT[,HOST:PORT...].
import { parseArgs } from 'node:util';

export interface PeerArgs {
  host: string;
  port: number;
  backends: { host: string; port: number }[];
  /** node-plain only: answer from memory after the first answer for a URL. */
  cache: boolean;
}

/** Parses the peer's arguments, or prints the usage line of `script` and exits with 2. */
export function peerArgs(script: string): PeerArgs {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      backends: { type: 'string' },
      cache: { type: 'boolean', default: false },
    },
  });
  if (!values.port || !values.backends) {
    console.error(`usage: ${script} --port PORT --backends HOST:PORT[,HOST:PORT...] [--cache]`);
    process.exit(2);
  }
  const backends = values.backends.split(',').map((addr) => {
    const i = addr.lastIndexOf(':');
    return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
  });
  return { host: values.host, port: Number(values.port), backends, cache: values.cache };
}
