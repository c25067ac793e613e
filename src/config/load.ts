// Loading the configuration: YAML text or file → validated `Config`, then the command-line and
// environment overrides on top. Every failure is a ConfigError listing all problems, one line
// each, `path: message`.

import { readFileSync } from 'node:fs';
import { type Document, LineCounter, parseDocument } from 'yaml';
import { formatPath } from './issues.ts';
import { keyPathAt, locate, type Position } from './locate.ts';
import { validateConfig } from './schema.ts';
import type { Config, LogFormat, LogLevel } from './types.ts';
import {
  addressesCollide,
  formatAddress,
  LOG_FORMATS,
  LOG_LEVELS,
  parseAddress,
  parseChoice,
  parseWorkers,
} from './values.ts';

export class ConfigError extends Error {
  /** One line per problem, `path: message`. */
  readonly issues: string[];
  /** The file (or other origin) the problems are in, when known. */
  readonly source: string | undefined;
  /** The problems as printed: `file:line:col: path: message` where the position is known. */
  readonly lines: string[];

  constructor(issues: string[], source?: string, lines: string[] = issues) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
    this.source = source;
    this.lines = lines;
  }
}

/** A bad value given by a flag: the command line is wrong, not the config. */
export class FlagValueError extends ConfigError {}

/** A parsed config and the means to point at any of its key paths in the text it came from. */
export interface LocatedConfig {
  config: Config;
  /** `file:line:col: ` where `path` is (the nearest enclosing key when it is absent), or ``. */
  where(path: readonly PropertyKey[]): string;
}

const MAX_SHOWN = 100;

/** YAML text → Config. Throws ConfigError with every problem found (syntax errors with line and column). */
export function parseConfig(text: string, source?: string): Config {
  return parseLocated(text, source).config;
}

/** parseConfig, keeping where each key path is in `text`. */
export function parseLocated(text: string, source?: string): LocatedConfig {
  const lineCounter = new LineCounter();
  // logLevel: warnings are reported below, not printed by the yaml package.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter, logLevel: 'error' });
  // A warning is an error too: an unknown tag (`!env`) would otherwise be dropped without a word.
  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    const problems = yamlProblems.map((e) => ({
      message:
        e.code === 'DUPLICATE_KEY'
          ? `${formatPath(keyPathAt(doc, e.pos[0]) ?? [])}: duplicate key`
          : (e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.message),
      at: e.linePos?.[0],
    }));
    throw new ConfigError(
      problems.map(({ message, at }) =>
        at ? `line ${at.line}, column ${at.col}: ${message}` : `yaml: ${message}`,
      ),
      source,
      problems.map(({ message, at }) =>
        at ? `${prefix(source, at)}${message}` : `${prefix(source)}yaml: ${message}`,
      ),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const issue = `yaml: ${(err as Error).message}`;
    throw new ConfigError([issue], source, [`${prefix(source)}${issue}`]);
  }
  const where = (path: readonly PropertyKey[]) => prefix(source, locate(doc as Document, lineCounter, path));
  const result = validateConfig(value);
  if (!result.ok) {
    // A problem between two keys is told at the one the file has.
    const issues = result.issues.map((issue) =>
      issue.other && !doc.hasIn(issue.path) && doc.hasIn(issue.other.path) ? issue.other : issue,
    );
    // The first hundred problems say what is wrong; thousands more would bury them.
    const shown = issues.slice(0, MAX_SHOWN);
    const more = issues.length > MAX_SHOWN ? [`and ${issues.length - MAX_SHOWN} more problems`] : [];
    throw new ConfigError([...shown.map((issue) => issue.text), ...more], source, [
      ...shown.map((issue) => `${where(issue.path)}${issue.text}`),
      ...more.map((m) => `${prefix(source)}${m}`),
    ]);
  }
  return { config: result.config, where };
}

/** `file:line:col: ` (or `file: `, or nothing without a file). */
function prefix(source: string | undefined, at?: Position): string {
  if (source === undefined) return '';
  return at ? `${source}:${at.line}:${at.col}: ` : `${source}: `;
}

/** Read and parse a configuration file; a missing or unreadable file is a ConfigError too. */
export function loadConfigFile(path: string): Config {
  return loadLocated(path).config;
}

/** loadConfigFile, keeping where each key path is in the file. */
export function loadLocated(path: string): LocatedConfig {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot read file (${(err as Error).message})`;
    throw new ConfigError([`${path}: ${why}`], path);
  }
  const text = bytes.toString('utf8');
  const bad = firstInvalidByte(bytes, text);
  if (bad !== undefined) {
    // Decoding would turn the bytes into U+FFFD silently (a server name nobody can type).
    const before = bytes.subarray(0, bad).toString('utf8');
    const line = before.split('\n').length;
    const col = before.length - before.lastIndexOf('\n');
    const issue = 'the file is not UTF-8 (an invalid byte)';
    throw new ConfigError([`line ${line}, column ${col}: ${issue}`], path, [
      `${path}:${line}:${col}: ${issue}`,
    ]);
  }
  return parseLocated(text, path);
}

/** The offset of the first byte that is not UTF-8, or undefined when `text` decodes all of them. */
function firstInvalidByte(bytes: Buffer, text: string): number | undefined {
  const again = Buffer.from(text, 'utf8');
  if (again.equals(bytes)) return undefined;
  let i = 0;
  while (i < bytes.length && bytes[i] === again[i]) i++;
  return i;
}

export interface Overrides {
  listen?: string;
  admin?: string;
  logLevel?: string;
  logFormat?: string;
  workers?: string;
}

/** How each override is named in messages, by where it came from. */
const NAMES = {
  flag: {
    listen: '--listen',
    admin: '--admin',
    logLevel: '--log-level',
    logFormat: '--log-format',
    workers: '--workers',
  },
  env: {
    listen: 'SLUICE_LISTEN',
    admin: 'SLUICE_ADMIN',
    logLevel: 'SLUICE_LOG_LEVEL',
    logFormat: 'SLUICE_LOG_FORMAT',
    workers: 'SLUICE_WORKERS',
  },
} as const;

const ADMIN_OFF = new Set(['off', 'false', 'none', 'no']);

/**
 * Apply overrides on top of a config, returning a new Config: `flags` win over `env` key by key,
 * before anything is validated, so a bad environment value that a flag replaces is no error.
 * What is left is validated; all problems are thrown together, each naming the flag (`--listen:
 * expected host:port`) or variable (`SLUICE_LISTEN: ...`) it came from, as a FlagValueError when
 * a flag is among them. `--admin off` (or false/none/no) disables the admin listener.
 */
export function applyOverrides(config: Config, flags: Overrides, env: Overrides = {}): Config {
  const overrides: Overrides = { ...env, ...definedOnly(flags) };
  const name = (key: keyof Overrides) => NAMES[flags[key] !== undefined ? 'flag' : 'env'][key];
  const issues: string[] = [];
  let byFlag = false;
  const problem = (key: keyof Overrides, message: string) => {
    byFlag ||= flags[key] !== undefined;
    issues.push(`${name(key)}: ${message}`);
  };
  const next: Config = { ...config };
  if (overrides.listen !== undefined) {
    const r = parseAddress(overrides.listen, { listening: true });
    if (r.ok) next.listen = { host: r.value.host, port: r.value.port };
    else problem('listen', r.message);
  }
  if (overrides.admin !== undefined) {
    const text = overrides.admin.trim();
    if (ADMIN_OFF.has(text.toLowerCase())) next.admin = null;
    else {
      const r = parseAddress(text, { listening: true });
      if (r.ok) next.admin = { host: r.value.host, port: r.value.port };
      else problem('admin', `${r.message} (or off to disable the admin listener)`);
    }
  }
  if (overrides.logLevel !== undefined) {
    const r = parseChoice<LogLevel>(overrides.logLevel.trim(), LOG_LEVELS);
    if (r.ok) next.logLevel = r.value;
    else problem('logLevel', r.message);
  }
  if (overrides.logFormat !== undefined) {
    const r = parseChoice<LogFormat>(overrides.logFormat.trim(), LOG_FORMATS);
    if (r.ok) next.logFormat = r.value;
    else problem('logFormat', r.message);
  }
  if (overrides.workers !== undefined) {
    const r = parseWorkers(overrides.workers);
    if (r.ok) next.workers = r.value;
    else problem('workers', r.message);
  }
  if (issues.length === 0 && next.admin && addressesCollide(next.listen, next.admin)) {
    const byAdmin = overrides.admin !== undefined;
    const [mine, theirs] = byAdmin ? [next.admin, next.listen] : [next.listen, next.admin];
    problem(
      byAdmin ? 'admin' : 'listen',
      `conflicts with ${byAdmin ? 'listen' : 'admin'} (${formatAddress(mine)} and ${formatAddress(theirs)})`,
    );
  }
  if (issues.length > 0) throw byFlag ? new FlagValueError(issues) : new ConfigError(issues);
  return next;
}

function definedOnly(overrides: Overrides): Overrides {
  return Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
}

/**
 * SLUICE_LISTEN, SLUICE_ADMIN, SLUICE_LOG_LEVEL, SLUICE_LOG_FORMAT, SLUICE_WORKERS; unset or empty
 * variables are left out.
 */
export function overridesFromEnv(env: NodeJS.ProcessEnv): Overrides {
  const out: Overrides = {};
  const pick = (name: string) => {
    const v = env[name];
    return v !== undefined && v.trim() !== '' ? v : undefined;
  };
  const listen = pick('SLUICE_LISTEN');
  const admin = pick('SLUICE_ADMIN');
  const logLevel = pick('SLUICE_LOG_LEVEL');
  const logFormat = pick('SLUICE_LOG_FORMAT');
  if (listen !== undefined) out.listen = listen;
  if (admin !== undefined) out.admin = admin;
  if (logLevel !== undefined) out.logLevel = logLevel;
  if (logFormat !== undefined) out.logFormat = logFormat;
  const workers = pick('SLUICE_WORKERS');
  if (workers !== undefined) out.workers = workers;
  return out;
}
