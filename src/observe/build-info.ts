// What this Sluice is: its version (package.json), the git revision it was built from and the
// Node version running it, for `sluice --version` and the sluice_build_info metric.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  version: string;
  revision: string;
  node: string;
}

const root = fileURLToPath(new URL('../..', import.meta.url));
let cached: BuildInfo | undefined;

/**
 * The revision comes from the checkout's .git when there is one (a clone or a worktree), else
 * from SLUICE_REVISION (the image sets it from a build argument), else it is `unknown`.
 */
export function buildInfo(): BuildInfo {
  cached ??= {
    version: packageVersion(),
    revision: gitRevision(root) ?? (process.env.SLUICE_REVISION?.trim() || 'unknown'),
    node: process.version,
  };
  return cached;
}

function packageVersion(): string {
  try {
    return (
      (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ??
      'unknown'
    );
  } catch {
    return 'unknown';
  }
}

/** HEAD's commit, abbreviated to 12 hex digits, read from the files (no git binary needed). */
export function gitRevision(dir: string): string | undefined {
  try {
    let gitDir = join(dir, '.git');
    const pointer = readText(gitDir);
    // A worktree or submodule: .git is a file `gitdir: PATH`; refs live in its common dir.
    if (pointer !== undefined) gitDir = resolve(dir, pointer.replace(/^gitdir:\s*/, ''));
    const commonFile = readText(join(gitDir, 'commondir'));
    const commonDir = commonFile === undefined ? gitDir : resolve(gitDir, commonFile);
    const head = readText(join(gitDir, 'HEAD'));
    if (head === undefined) return undefined;
    const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
    const commit =
      ref === undefined
        ? head
        : (readText(join(gitDir, ref)) ?? readText(join(commonDir, ref)) ?? packedRef(commonDir, ref));
    return commit !== undefined && /^[0-9a-f]{40,64}$/.test(commit) ? commit.slice(0, 12) : undefined;
  } catch {
    return undefined;
  }
}

function packedRef(commonDir: string, ref: string): string | undefined {
  const packed = readText(join(commonDir, 'packed-refs')) ?? '';
  for (const line of packed.split('\n')) {
    const [commit, name] = line.split(' ');
    if (name === ref) return commit;
  }
  return undefined;
}

/** A file's trimmed text; undefined when it is missing or a directory. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `sluice version 0.1.0 (revision 8b7c9c7d1e2f, node v24.21.0)`, as `nginx -v` and `haproxy -v` print theirs. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `sluice version ${info.version} (revision ${info.revision}, node ${info.node})`;
}
