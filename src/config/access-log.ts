// The `accessLog` key: `true` (the defaults: stdout, 64 KiB buffer, 1 s flush), `false`, or a
// mapping `{ to, buffer, flush }` whose problems are each named by their sub-key.
import { DEFAULTS } from './defaults.ts';
import { isRecord, leaf, nonEmptyString, type Path } from './fields.ts';
import type { AccessLogConfig } from './types.ts';
import { describeValue, parseDuration, parseSize } from './values.ts';

const ACCESS_LOG_KEYS = ['to', 'buffer', 'flush'];
/** The most a buffer holds (nginx's buffers are 64k–1m): it is allocated whole at start. */
const MAX_BUFFER = 16 * 1024 * 1024;

/** `true` (the defaults), `false`, or `{ to, buffer, flush }`. */
export const accessLog = leaf(
  (value) => {
    const defaults: AccessLogConfig = { ...DEFAULTS.accessLog };
    if (value === true || value === null) return { ok: true, value: defaults };
    if (value === false) return { ok: true, value: false as const };
    if (!isRecord(value)) {
      return {
        ok: false,
        message: `expected true, false or a mapping with to, buffer, flush (got ${describeValue(value)})`,
      };
    }
    const problems: { path: Path; message: string }[] = [];
    const out = defaults;
    for (const [key, raw] of Object.entries(value)) {
      const r =
        key === 'to'
          ? nonEmptyString(raw)
          : key === 'buffer'
            ? parseSize(raw)
            : key === 'flush'
              ? parseDuration(raw)
              : ({ ok: false, message: `unknown key (known: ${ACCESS_LOG_KEYS.join(', ')})` } as const);
      if (!r.ok) problems.push({ path: [key], message: r.message });
      else if (key === 'buffer' && (r.value as number) > MAX_BUFFER)
        problems.push({
          path: [key],
          message: `at most 16MiB: a bigger buffer only holds lines back longer`,
        });
      else if (key === 'to') out.to = r.value as string;
      else if (key === 'buffer') out.buffer = r.value as number;
      else out.flush = r.value as number;
    }
    return problems.length ? { ok: false, problems } : { ok: true, value: out };
  },
  (): AccessLogConfig | false => ({ ...DEFAULTS.accessLog }),
);
