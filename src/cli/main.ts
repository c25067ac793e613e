// The `sluice` command: serve (default), check, demo, client.
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { ConfigError } from '../config/load.ts';

// V8 moves an allocation site to the old generation once its objects are seen surviving
// scavenges. Under load that happens by chance in the first seconds, and from then on the
// objects of every request are born old: a mark-compact each second, 190 instead of 130 MB
// and 3x the p99 (npm run bench: half the runs, without this flag; none with it).
v8.setFlagsFromString('--no-allocation-site-pretenuring');

const usage = `usage:
  sluice [serve] [--config FILE] [--listen ADDR] [--admin ADDR|off] [--log-level LEVEL]
  sluice check --config FILE
  sluice demo [--listen ADDR] [--admin ADDR|off] [--log-level LEVEL]
  sluice client [options] URL     (a hand-built HTTP client; sluice client --help)

serve needs a config file (--config or SLUICE_CONFIG); demo runs three small built-in backends on
loopback behind the proxy. Environment: SLUICE_CONFIG, SLUICE_LISTEN, SLUICE_ADMIN, SLUICE_LOG_LEVEL.`;

const commands = new Set(['serve', 'check', 'demo']);

async function main(argv: string[]): Promise<number> {
  // The client has options of its own: it bypasses the parsing below. Each command loads only
  // its own modules (the client does not need the proxy, the logger or metrics).
  if (argv[0] === 'client') {
    const { processIO, runClient } = await import('../client/run.ts');
    return runClient(argv.slice(1), processIO());
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string' },
      admin: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  if (!commands.has(command) || positionals.length > 1) {
    console.error(`sluice: unknown command "${positionals.join(' ')}"\n${usage}`);
    return 2;
  }
  const flags = { listen: values.listen, admin: values.admin, logLevel: values['log-level'] };
  const configPath = values.config ?? process.env.SLUICE_CONFIG;
  if (command === 'check') {
    if (!configPath) {
      console.error('sluice check: --config FILE is required');
      return 2;
    }
    return (await import('./serve.ts')).checkCommand(configPath);
  }
  if (command === 'demo') return (await import('./demo.ts')).startDemo(flags);
  // A mistyped SLUICE_CONFIG must not quietly serve demo pages that pass health checks.
  if (!configPath) {
    console.error(
      'sluice serve: no config file: give --config FILE or SLUICE_CONFIG (sluice demo runs the demo)',
    );
    return 2;
  }
  return (await import('./serve.ts')).serveCommand(configPath, flags);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) console.error(error.message);
    else if (
      error instanceof TypeError &&
      (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`sluice: ${error.message}\n${usage}`);
    } else console.error(error);
    process.exitCode = error instanceof ConfigError || error instanceof TypeError ? 2 : 1;
  },
);
