// Where a key path of the configuration is in its YAML text: `pools.web.servers[1].address` →
// line 12, column 9, so that every problem can be reported as `file:line:col: path: message`
// (the yaml package keeps each node's offset range; a LineCounter turns offsets into lines).
import { type Document, isMap, isPair, isScalar, isSeq, type LineCounter, visit } from 'yaml';

export interface Position {
  line: number;
  col: number;
}

/** The position of `path` in `doc`: a mapping key where the path names one, a list item, or the
 * nearest enclosing node when the key is absent (a `required` key points at its parent). */
export function locate(
  doc: Document,
  lines: LineCounter,
  path: readonly PropertyKey[],
): Position | undefined {
  let node: unknown = doc.contents;
  let at = rangeStart(node);
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      at = rangeStart(pair.key) ?? at;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
      node = node.items[segment];
      at = rangeStart(node) ?? at;
    } else break;
  }
  return at === undefined ? undefined : lines.linePos(at);
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}

/** The key path of the mapping key that starts at `offset` (a duplicate key the parser found). */
export function keyPathAt(doc: Document, offset: number): PropertyKey[] | undefined {
  let found: PropertyKey[] | undefined;
  visit(doc, {
    Pair(_, pair, ancestors) {
      if (!isScalar(pair.key) || rangeStart(pair.key) !== offset) return undefined;
      const path: PropertyKey[] = [];
      ancestors.forEach((node, i) => {
        if (isPair(node) && isScalar(node.key)) path.push(String(node.key.value));
        const child = ancestors[i + 1];
        if (isSeq(node) && child !== undefined) path.push(node.items.indexOf(child as never));
      });
      found = [...path, String(pair.key.value)];
      return visit.BREAK;
    },
  });
  return found;
}
