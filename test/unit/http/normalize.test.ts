import test from 'ava';
import { backendReading, normalizeTarget } from '../../../src/http/normalize.ts';

const target = (raw: string) => {
  const normalized = normalizeTarget(raw);
  return normalized.ok ? normalized.target : `400 ${normalized.message}`;
};

test('one canonical spelling: unreserved escapes decoded, others upper case, slashes merged, dots removed', (t) => {
  t.is(target('/a/%7euser/%2e/b%2fc?x=%2e'), '/a/~user/b%2Fc?x=%2e');
  t.is(target('//a///b/'), '/a/b/');
  t.is(target('/a/b/../../../c'), '/c');
  t.is(target('/a/./b/.'), '/a/b/');
  t.is(target('/a/%zz'), '400 invalid percent-encoding in path');
  t.is(target('/a/%00'), '400 invalid percent-encoding in path');
  t.is(target('/a/..%2f/b'), '400 dot segment hidden in an encoded path');
  t.is(target('/a/..;x/b'), '400 dot segment hidden in an encoded path');
});

test('a backend reading of the path: ;params dropped, \\ %2F %5C as /, trailing dots and spaces dropped', (t) => {
  t.is(backendReading('/admin;x/users?q'), '/admin/users?q');
  t.is(backendReading('/%2Fadmin/users'), '/admin/users');
  t.is(backendReading('/a%5Cb'), '/a/b');
  t.is(backendReading('/a/b?x=;y'), undefined, 'the query is not the path');
  t.is(backendReading('/a/b'), undefined);
  t.is(backendReading('/admin%3Bx/users'), '/admin/users', '; written %3B');
  t.is(backendReading('/admin%3b'), '/admin');
  t.is(backendReading('/admin.'), '/admin', 'trailing dots dropped, as Windows does');
  t.is(backendReading('/admin%20/x?q'), '/admin/x?q', 'trailing spaces too');
  t.is(backendReading('/admin.%20../x'), '/admin/x');
  t.is(backendReading('/a.b/c%20d'), undefined, 'only at the end of a segment');
  t.is(backendReading('/admin::$DATA'), '/admin', 'an NTFS stream name, as IIS reads it');
  t.is(backendReading('/admin%3A%3A%24data/x'), '/admin/x');
  t.is(backendReading('/a::b'), undefined);
});

test('plain paths take one scan: a plain path is unchanged and no backend reads it otherwise', (t) => {
  // Every path of up to three characters after the slash, over the characters that matter.
  const alphabet = ['a', '/', '.', '%', '2', 'F', '5', 'C', '\\', ';', ':', '?'];
  let paths = [''];
  let plain = 0;
  for (let length = 1; length <= 3; length++) {
    paths = paths.flatMap((path) => alphabet.map((c) => path + c));
    for (const path of paths) {
      const raw = `/${path}`;
      const normalized = normalizeTarget(raw);
      if (!normalized.ok || !normalized.plain) continue;
      plain++;
      t.is(normalized.target, raw);
      t.is(backendReading(raw), undefined, raw);
    }
  }
  t.true(plain > 100, `${plain} plain paths`);
  t.like(normalizeTarget('/a;b'), { ok: true, target: '/a;b', plain: false });
  t.like(normalizeTarget('/a.'), { ok: true, target: '/a.', plain: false });
  t.like(normalizeTarget('/a./b'), { ok: true, target: '/a./b', plain: false });
});
