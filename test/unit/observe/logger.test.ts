import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { gitRevision, versionLine } from '../../../src/observe/build-info.ts';
import { textLine } from '../../../src/observe/logger.ts';

test('text log lines: time, level, message, then key=value (JSON where a value needs quoting)', (t) => {
  const line = textLine({
    timestamp: '2026-11-28T08:31:25.123Z',
    level: 'info',
    message: 'backend state changed',
    pool: 'web',
    backend: 'web-1',
    reason: 'connection refused',
    attempts: 2,
    ok: false,
    pools: [{ name: 'web' }],
  });
  t.is(
    line,
    '2026-11-28T08:31:25.123Z info  backend state changed pool=web backend=web-1 reason="connection refused" attempts=2 ok=false pools=[{"name":"web"}]',
  );
});

test('the git revision is read from .git: a branch ref, packed refs, a worktree pointer, a detached HEAD', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-git-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const a = 'a'.repeat(40);
  const b = 'b'.repeat(40);
  const repo = join(root, 'repo');
  mkdirSync(join(repo, '.git/refs/heads'), { recursive: true });
  writeFileSync(join(repo, '.git/HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(repo, '.git/refs/heads/main'), `${a}\n`);
  t.is(gitRevision(repo), 'aaaaaaaaaaaa');
  writeFileSync(join(repo, '.git/HEAD'), 'ref: refs/heads/packed\n');
  writeFileSync(join(repo, '.git/packed-refs'), `# pack-refs with: peeled\n${b} refs/heads/packed\n`);
  t.is(gitRevision(repo), 'bbbbbbbbbbbb');
  // A worktree: .git is a file naming its git dir, whose commondir holds the refs.
  const tree = join(root, 'tree');
  mkdirSync(join(repo, '.git/worktrees/tree'), { recursive: true });
  mkdirSync(tree);
  writeFileSync(join(tree, '.git'), `gitdir: ${join(repo, '.git/worktrees/tree')}\n`);
  writeFileSync(join(repo, '.git/worktrees/tree/HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(repo, '.git/worktrees/tree/commondir'), '../..\n');
  t.is(gitRevision(tree), 'aaaaaaaaaaaa');
  writeFileSync(join(repo, '.git/HEAD'), `${b}\n`);
  t.is(gitRevision(repo), 'bbbbbbbbbbbb');
  t.is(gitRevision(join(root, 'nothing')), undefined);
});

test('the version line', (t) => {
  t.is(
    versionLine({ version: '1.2.3', revision: 'abc', node: 'v24.0.0' }),
    'sluice version 1.2.3 (revision abc, node v24.0.0)',
  );
});
