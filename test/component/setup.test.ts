// CI's lock check (scripts/setup.sh check_lock): a lock that npm would rewrite fails the run with
// the fix named, and is left as it was; the committed lock passes.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { runCommand } from '../support/run.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A copy of the project's setup script, package.json (edited by `edit`) and lock. */
function project(edit: (pkg: Record<string, Record<string, string>>) => void): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-lock-'));
  mkdirSync(path.join(dir, 'scripts'));
  copyFileSync(path.join(ROOT, 'scripts/setup.sh'), path.join(dir, 'scripts/setup.sh'));
  copyFileSync(path.join(ROOT, 'package-lock.json'), path.join(dir, 'package-lock.json'));
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  edit(pkg);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  return dir;
}

function checkLock(dir: string) {
  return runCommand('bash', ['-c', 'source scripts/setup.sh && check_lock'], { cwd: dir, timeout: 60_000 });
}

test('the committed lock is in sync', async (t) => {
  const { code, stdout } = await checkLock(project(() => {}));
  t.is(code, 0);
  t.regex(stdout, /package-lock.json matches package.json and the registry/);
});

test('a dependency missing from the lock fails the check, names the fix and leaves the lock alone', async (t) => {
  const dir = project((pkg) => {
    pkg.dependencies = { ...pkg.dependencies, 'is-number': '7.0.0' };
  });
  const before = readFileSync(path.join(dir, 'package-lock.json'), 'utf8');
  const { code, stdout, stderr } = await checkLock(dir);
  t.is(code, 1);
  t.regex(stdout, /\+\s+"is-number": "7\.0\.0"/);
  t.regex(
    stderr,
    /package-lock.json is out of date[\s\S]*Fix: run 'npm install' and commit package-lock.json/,
  );
  t.is(readFileSync(path.join(dir, 'package-lock.json'), 'utf8'), before);
});
