// The problems zod finds in a config, as the lines Sluice prints: `path: message`, with the key
// path kept so that the loader can point at its line and column, and a suggestion for a mistyped
// key (`pools.web.helth: unknown key (did you mean "health"?)`).
import type { z } from 'zod';
import { UNKNOWN_KEYS } from './fields.ts';
import { closest, describeValue } from './values.ts';

/** `pools.web.servers[1].address`; keys that are not plain words are quoted: `pools["a b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out === '' ? '(root)' : out;
}

export const mapIssue: z.core.$ZodErrorMap = (iss) => {
  if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'custom')) return 'required';
  if (iss.code === 'invalid_type') {
    const expected =
      iss.expected === 'object' || iss.expected === 'record'
        ? 'a mapping'
        : iss.expected === 'array'
          ? 'a list'
          : iss.expected;
    return `expected ${expected} (got ${describeValue(iss.input)})`;
  }
  return undefined;
};

/** One problem: the key path it is at and its line, `path: message`. */
export interface ConfigIssue {
  path: readonly PropertyKey[];
  text: string;
  /** The same problem told at the other key of a pair (fields.ts pairIssue). */
  other?: ConfigIssue;
}

export function issueLines(issue: z.core.$ZodIssue): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    const known: string[] = issue.message.startsWith(UNKNOWN_KEYS)
      ? JSON.parse(issue.message.slice(UNKNOWN_KEYS.length))
      : [];
    return issue.keys.map((key) => {
      const path = [...issue.path, key];
      // YAML 1.1's merge key: the yaml package reads YAML 1.2, where `<<` is a plain key.
      if (key === '<<') return { path, text: `${formatPath(path)}: merge keys (<<) are not supported` };
      const suggestion = closest(key, known);
      const hint = suggestion
        ? ` (did you mean "${suggestion}"?)`
        : known.length
          ? ` (known keys: ${known.join(', ')})`
          : '';
      return { path, text: `${formatPath(path)}: unknown key${hint}` };
    });
  }
  const line: ConfigIssue = { path: issue.path, text: `${formatPath(issue.path)}: ${issue.message}` };
  const { other, otherMessage } = (issue.code === 'custom' && issue.params) || {};
  if (typeof other === 'string' && typeof otherMessage === 'string') {
    const path = [...issue.path.slice(0, -1), other];
    line.other = { path, text: `${formatPath(path)}: ${otherMessage}` };
  }
  return [line];
}
