// The `sluice` command: serve (default), check, demo, client.
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { ConfigError } from '../config/load.ts';
import { installProcessPolicy } from '../observe/faults.ts';
import { UsageError } from './usage-error.ts';

// V8 moves an allocation site to the old generation once its objects are seen surviving
// scavenges. Under load that happens by chance in the first seconds, and from then on the
// objects of every request are born old: a mark-compact each second, 190 instead of 130 MB
// and 3x the p99 (npm run bench: half the runs, without this flag; none with it).
v8.setFlagsFromString('--no-allocation-site-pretenuring');

const usage = `usage:
  sluice [serve] [--config FILE] [--listen ADDR] [--admin ADDR|off] [--log-level LEVEL] [--log-format json|text]
         [--workers auto|N]
  sluice check [FILE | --config FILE] [--resolve]
  sluice demo [--listen ADDR] [--admin ADDR|off] [--log-level LEVEL] [--log-format json|text]
  sluice healthcheck [--admin ADDR] [--config FILE]
  sluice client [options] URL     (a hand-built HTTP client; sluice client --help)
  sluice --version

serve needs a config file (--config or SLUICE_CONFIG); demo runs three small built-in backends on
loopback behind the proxy. check validates a file (FILE, --config or SLUICE_CONFIG; the first given
wins) with the same overrides as serve (--resolve also
resolves every DNS name); it exits 1 for an invalid config. healthcheck asks the admin port's
/healthz and exits 0 or 1 (for container healthchecks). Environment: SLUICE_CONFIG, SLUICE_LISTEN,
SLUICE_ADMIN, SLUICE_LOG_LEVEL, SLUICE_LOG_FORMAT, SLUICE_WORKERS. Usage errors exit 2.`;

const overrideOptions = ['listen', 'admin', 'log-level', 'log-format'];
/** The options each command takes (besides --help and --version): any other is a usage error. */
const commandOptions: Record<string, readonly string[]> = {
  serve: ['config', ...overrideOptions, 'workers'],
  check: ['config', ...overrideOptions, 'workers', 'resolve'],
  demo: overrideOptions,
  healthcheck: ['admin', 'config'],
};

async function main(argv: string[]): Promise<number> {
  // The client has options of its own: it bypasses the parsing below. Each command loads only
  // its own modules (the client does not need the proxy, the logger or metrics).
  if (argv[0] === 'client') {
    const { processIO, runClient } = await import('../client/run.ts');
    exitNow(await runClient(argv.slice(1), processIO()));
  }
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.version) {
    const { versionLine } = await import('../observe/build-info.ts');
    console.log(versionLine());
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  const operands = positionals.slice(1);
  const options = commandOptions[command];
  if (options === undefined || operands.length > (command === 'check' ? 1 : 0)) {
    throw new UsageError(`sluice: unknown command "${positionals.join(' ')}"`);
  }
  // An option the command ignores would be a silent surprise (demo --config serves the demo).
  const stray = Object.keys(values).find((name) => !options.includes(name));
  if (stray !== undefined)
    throw new UsageError(`sluice ${command}: --${stray} is not an option of ${command}`);
  const flags = {
    listen: values.listen,
    admin: values.admin,
    logLevel: values['log-level'],
    logFormat: values['log-format'],
    workers: values.workers,
  };
  if (command === 'healthcheck') {
    exitNow(
      await (await import('./healthcheck.ts')).healthcheck(
        values.admin,
        values.config ?? process.env.SLUICE_CONFIG,
      ),
    );
  }
  if (command === 'check') {
    if (operands[0] !== undefined && values.config !== undefined && operands[0] !== values.config) {
      throw new UsageError(
        'sluice check: give the file once: sluice check FILE or sluice check --config FILE',
      );
    }
    const path = operands[0] ?? values.config ?? process.env.SLUICE_CONFIG;
    if (!path)
      throw new UsageError('sluice check: which file? sluice check FILE, --config FILE or SLUICE_CONFIG');
    return (await import('./serve.ts')).checkCommand(path, flags, values.resolve ?? false);
  }
  const configPath = values.config ?? process.env.SLUICE_CONFIG;
  // From here on the process serves: a bug that escapes is reported, not fatal (observe/faults.ts).
  installProcessPolicy();
  if (command === 'demo') return (await import('./demo.ts')).startDemo(flags);
  // A mistyped SLUICE_CONFIG must not quietly serve demo pages that pass health checks.
  if (!configPath) {
    throw new UsageError(
      'sluice serve: no config file: give --config FILE or SLUICE_CONFIG (sluice demo runs the demo)',
      false,
    );
  }
  return (await import('./serve.ts')).serveCommand(configPath, flags);
}

/**
 * Ends a one-shot command (client, healthcheck) with its code. Its output is flushed on success;
 * after a failure, nothing it leaves (a stdout nobody reads, a request body still arriving on
 * stdin) may keep the process past --max-time.
 */
function exitNow(code: number): never {
  process.exit(code);
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        listen: { type: 'string' },
        admin: { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        workers: { type: 'string' },
        resolve: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (error) {
    throw new UsageError(`sluice: ${(error as Error).message}`);
  }
}

// Exit codes: 0 ok, 1 an invalid config or a failure (as nginx -t, haproxy -c and promtool), 2 usage.
main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(error.showUsage ? `${error.message}\n${usage}` : error.message);
      process.exitCode = 2;
      return;
    }
    console.error(error instanceof ConfigError ? error.message : error);
    process.exitCode = 1;
  },
);
