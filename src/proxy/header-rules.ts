// A route's header rules applied to a request head: `remove` drops every field of each name,
// `set` replaces every field of each name with one field `name: value`, spelled as configured.
// Names compare case-insensitively. Untouched fields keep their order; set fields go at the end.
// A name both removed and set ends up set. Pure: the input array is never modified.
// `_` and `-` compare equal (where underscores are let through): a CGI or WSGI backend reads
// `X_Debug` as X-Debug, so `remove: [X-Debug]` removes both.

import type { HeaderRules } from '../config/types.ts';
import type { HeaderField } from '../http/message.ts';
import { canonicalName } from './forwarding.ts';

interface CompiledRules {
  /** Lower-case names whose existing fields are dropped (removed and set names). */
  drop: ReadonlySet<string>;
  /** The fields `set` appends. */
  append: readonly HeaderField[];
}

/** Rules objects come from the configuration and live as long as it; compile each once. */
const compiled = new WeakMap<HeaderRules, CompiledRules | null>();

function compile(rules: HeaderRules): CompiledRules | null {
  let result = compiled.get(rules);
  if (result !== undefined) return result;
  const drop = new Set<string>();
  const append: HeaderField[] = [];
  for (const name of rules.remove) drop.add(canonicalName(name.toLowerCase()));
  for (const [name, value] of Object.entries(rules.set)) {
    const lower = name.toLowerCase();
    drop.add(canonicalName(lower));
    append.push({ name, lower, value });
  }
  result = drop.size === 0 ? null : { drop, append };
  compiled.set(rules, result);
  return result;
}

/** Whether the rules remove or set any field (false for empty rules). */
export function changesHeaders(rules: HeaderRules): boolean {
  return compile(rules) !== null;
}

/**
 * The header fields after the rules. With empty rules, or when the rules change nothing, the
 * same array comes back (no copy); otherwise a new one. The appended fields are fresh objects.
 */
export function applyHeaderRules(headers: HeaderField[], rules: HeaderRules): HeaderField[] {
  const c = compile(rules);
  if (c === null) return headers;
  const { drop, append } = c;
  let result: HeaderField[] | undefined;
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i] as HeaderField;
    if (drop.has(canonicalName(field.lower))) {
      result ??= headers.slice(0, i);
    } else if (result !== undefined) {
      result.push(field);
    }
  }
  if (append.length === 0) return result ?? headers;
  result ??= headers.slice();
  for (const field of append) result.push({ name: field.name, lower: field.lower, value: field.value });
  return result;
}
