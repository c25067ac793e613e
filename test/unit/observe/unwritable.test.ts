import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { unwritable } from '../../../src/observe/log-writer.ts';

test('unwritable: why a log file could not be opened for appending, without creating it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-log-'));
  const fresh = join(dir, 'access.log');
  t.is(unwritable(fresh), undefined);
  t.false(existsSync(fresh), 'check creates nothing');
  writeFileSync(fresh, '');
  t.is(unwritable(fresh), undefined);
  t.is(unwritable(dir), `${JSON.stringify(dir)} is a directory`);
  t.is(unwritable('/nonexistent/dir/a.log'), 'the directory of "/nonexistent/dir/a.log" does not exist');
});
