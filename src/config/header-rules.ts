// The `headers.set` and `headers.remove` of a route. Fields that frame the message or route it
// (Host, Content-Length, Transfer-Encoding, Connection and the other hop-by-hop fields) are
// Sluice's to write: setting one would desynchronise Sluice and the backend (smuggling), removing
// Host would send a request no backend can route. Both are refused, naming the key.
import { describeValue, isToken, type Parsed, parseHeaderValue } from './values.ts';

type Problems = { ok: false; problems: { path: PropertyKey[]; message: string }[] };

/** Lower-case names a route may neither set nor remove. */
export const MANAGED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

function nameProblem(name: string): string | undefined {
  if (!isToken(name)) return 'invalid header name';
  if (MANAGED_HEADERS.has(name.toLowerCase()))
    return `${name} is written by Sluice itself (framing and routing fields cannot be set or removed)`;
  return undefined;
}

export function parseHeaderSet(value: unknown): Parsed<Record<string, string>> | Problems {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return {
      ok: false,
      message: `expected a mapping of header names to values (got ${describeValue(value)})`,
    };
  const out: Record<string, string> = {};
  const lower = new Map<string, string>();
  const problems: { path: PropertyKey[]; message: string }[] = [];
  for (const [name, raw] of Object.entries(value)) {
    const problem = nameProblem(name);
    if (problem !== undefined) {
      problems.push({ path: [name], message: problem });
      continue;
    }
    const previous = lower.get(name.toLowerCase());
    if (previous !== undefined) {
      problems.push({ path: [name], message: `duplicate header name (same as "${previous}")` });
      continue;
    }
    lower.set(name.toLowerCase(), name);
    const r = parseHeaderValue(raw);
    if (r.ok) out[name] = r.value;
    else problems.push({ path: [name], message: r.message });
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: out };
}

export function parseHeaderRemove(value: unknown): Parsed<string[]> | Problems {
  if (!Array.isArray(value))
    return { ok: false, message: `expected a list of header names (got ${describeValue(value)})` };
  const problems: { path: PropertyKey[]; message: string }[] = [];
  value.forEach((name, i) => {
    if (typeof name !== 'string') {
      problems.push({ path: [i], message: `expected a header name (got ${describeValue(name)})` });
      return;
    }
    const problem = nameProblem(name);
    if (problem !== undefined)
      problems.push({
        path: [i],
        message: problem === 'invalid header name' ? `invalid header name ${describeValue(name)}` : problem,
      });
  });
  return problems.length ? { ok: false, problems } : { ok: true, value: value as string[] };
}
