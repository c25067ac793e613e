import test from 'ava';
import type { HeaderRules } from '../../../src/config/types.ts';
import type { HeaderField } from '../../../src/http/message.ts';
import { applyHeaderRules } from '../../../src/proxy/header-rules.ts';

function f(name: string, value: string): HeaderField {
  return { name, lower: name.toLowerCase(), value };
}

const request = (): HeaderField[] => [
  f('Host', 'api.example.test'),
  f('X-Debug', '1'),
  f('Accept', 'text/html'),
  f('x-env', 'prod'),
  f('X-DEBUG', '2'),
  f('X-Env', 'staging'),
  f('Cookie', 'a=1'),
];

test('empty rules return the same array', (t) => {
  const headers = request();
  t.is(applyHeaderRules(headers, { set: {}, remove: [] }), headers);
});

test('the DESIGN.md rules: set X-Env, remove X-Debug', (t) => {
  const headers = request();
  const before = structuredClone(headers);
  const out = applyHeaderRules(headers, { set: { 'X-Env': 'demo' }, remove: ['X-Debug'] });
  t.deepEqual(out, [
    f('Host', 'api.example.test'),
    f('Accept', 'text/html'),
    f('Cookie', 'a=1'),
    { name: 'X-Env', lower: 'x-env', value: 'demo' },
  ]);
  t.not(out, headers);
  t.deepEqual(headers, before, 'input untouched');
});

test('remove is case-insensitive and removes every field of the name', (t) => {
  const out = applyHeaderRules(request(), { set: {}, remove: ['x-debug', 'COOKIE'] });
  t.deepEqual(out, [
    f('Host', 'api.example.test'),
    f('Accept', 'text/html'),
    f('x-env', 'prod'),
    f('X-Env', 'staging'),
  ]);
});

test('set appends when absent, uses the configured case, in configured order', (t) => {
  const out = applyHeaderRules([f('Host', 'h'), f('Accept', '*/*')], {
    set: { 'x-new': 'a', 'X-Other': 'b' },
    remove: [],
  });
  t.deepEqual(out, [f('Host', 'h'), f('Accept', '*/*'), f('x-new', 'a'), f('X-Other', 'b')]);
});

test('set replaces every existing field of the name with one at the end', (t) => {
  const out = applyHeaderRules(request(), {
    set: { 'X-ENV': 'demo', accept: 'application/json' },
    remove: [],
  });
  t.deepEqual(out, [
    f('Host', 'api.example.test'),
    f('X-Debug', '1'),
    f('X-DEBUG', '2'),
    f('Cookie', 'a=1'),
    { name: 'X-ENV', lower: 'x-env', value: 'demo' },
    { name: 'accept', lower: 'accept', value: 'application/json' },
  ]);
});

test('a name both removed and set ends up set', (t) => {
  const out = applyHeaderRules([f('A', '1'), f('X-Env', 'old')], {
    set: { 'X-Env': 'new' },
    remove: ['x-env'],
  });
  t.deepEqual(out, [f('A', '1'), f('X-Env', 'new')]);
});

test('remove of names not present returns the same array', (t) => {
  const headers = [f('Host', 'h')];
  t.is(applyHeaderRules(headers, { set: {}, remove: ['X-Debug'] }), headers);
});

test('removing from an empty list, and setting into one', (t) => {
  t.deepEqual(applyHeaderRules([], { set: {}, remove: ['a'] }), []);
  t.deepEqual(applyHeaderRules([], { set: { B: '2' }, remove: ['a'] }), [f('B', '2')]);
});

test('the same rules object applied twice gives equal, independent results', (t) => {
  const rules: HeaderRules = { set: { 'X-Env': 'demo' }, remove: ['X-Debug'] };
  const a = applyHeaderRules(request(), rules);
  const b = applyHeaderRules(request(), rules);
  t.deepEqual(a, b);
  t.not(a[a.length - 1], b[b.length - 1]);
  (a[a.length - 1] as HeaderField).value = 'mutated';
  t.is(applyHeaderRules([], rules)[0]?.value, 'demo');
});
