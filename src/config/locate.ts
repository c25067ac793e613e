// Where a key path of the configuration is in its YAML text: `pools.web.servers[1].address` →
// line 12, column 9, so that every problem can be reported as `file:line:col: path: message`
// (the yaml package keeps each node's offset range; a LineCounter turns offsets into lines).
import { type Document, isMap, isScalar, isSeq, type LineCounter } from 'yaml';

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
