// The shape of src/: no file over 500 lines; in the import graph, no cycles, and no import that runs up a layer. Layers, top down:
// cli → cluster → sluice.ts → proxy/demo/client → cache/admin → upstream → observe → balance/health →
// config/http. A folder may import its own layer and any below it.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';

const root = resolve(import.meta.dirname, '../../src');

const rank: Record<string, number> = {
  cli: 8,
  cluster: 7.5,
  'sluice.ts': 7,
  proxy: 6,
  demo: 6,
  cache: 5,
  admin: 5,
  client: 6,
  upstream: 4,
  observe: 3,
  balance: 2,
  health: 2,
  config: 1,
  http: 1,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map(
    (match) => match[1] ?? '',
  );
  return specifiers.map((specifier) => resolve(dirname(file), specifier));
}

function layer(file: string): string {
  return relative(root, file).split('/')[0] ?? '';
}

const graph = new Map(sources(root).map((file) => [file, importsOf(file)]));

test('every layer of src/ has a rank', (t) => {
  const unranked = [...new Set([...graph.keys()].map(layer))].filter((name) => rank[name] === undefined);
  t.deepEqual(unranked, []);
});

test('no import runs up a layer', (t) => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    for (const target of imports) {
      if ((rank[layer(target)] ?? 0) > (rank[layer(file)] ?? 0))
        upward.push(`${relative(root, file)} → ${relative(root, target)}`);
    }
  }
  t.deepEqual(upward, []);
});

test('the imports between files form no cycle', (t) => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'closed'>();
  const path: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === 'open') {
        const cycle = path.slice(path.indexOf(target)).concat(target);
        cycles.push(cycle.map((step) => relative(root, step)).join(' → '));
      } else if (!state.has(target)) visit(target);
    }
    path.pop();
    state.set(file, 'closed');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  t.deepEqual(cycles, []);
});

test('no file in src/ is over 500 lines', (t) => {
  const long = [...graph.keys()]
    .map((file) => ({ file: relative(root, file), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
    .filter(({ lines }) => lines > 500);
  t.deepEqual(long, []);
});
