// The building blocks of the configuration schema (./schema.ts): a leaf parsed by one of the
// pure parsers of ./values.ts, with its default; strict objects whose unknown keys are errors
// that carry the known keys (for a suggestion); sections that may be absent.
import { z } from 'zod';
import type { ListenAddress } from './types.ts';
import {
  describeValue,
  type Parsed,
  parseAddress,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseInteger,
  parseSize,
} from './values.ts';

export type Path = PropertyKey[];

export const REQUIRED = Symbol('required');

/**
 * A leaf value parsed by `parse`; when the key is absent, `fallback()` (or the issue `required`).
 * A parse may report several problems at sub-paths (header maps do).
 */
export function leaf<T>(
  parse: (value: unknown) => Parsed<T> | { ok: false; problems: { path: Path; message: string }[] },
  fallback: (() => T) | typeof REQUIRED,
) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): T => {
      if (value === undefined) {
        if (fallback !== REQUIRED) return fallback();
        ctx.issues.push({ code: 'custom', message: 'required', input: value });
        return z.NEVER;
      }
      const result = parse(value);
      if (result.ok) return result.value;
      const problems = 'problems' in result ? result.problems : [{ path: [], message: result.message }];
      for (const p of problems) {
        ctx.issues.push({
          code: 'custom',
          message: p.message,
          input: value,
          path: p.path as (string | number)[],
        });
      }
      return z.NEVER;
    });
}

export const UNKNOWN_KEYS = 'unknown-keys:';

/** An object whose unknown keys are errors; the message carries the known keys for suggestions. */
export function strict<S extends z.ZodRawShape>(shape: S) {
  const known = JSON.stringify(Object.keys(shape));
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? UNKNOWN_KEYS + known : undefined),
  });
}

/** A nested mapping whose keys all have defaults: absent or null means `{}`. */
export function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => value ?? {}, schema);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** No issue so far at or below any of these paths (relative to the schema being refined). */
export function clean(issues: readonly { path?: PropertyKey[] }[], ...paths: Path[]): boolean {
  return !issues.some((iss) => paths.some((p) => p.every((seg, i) => iss.path?.[i] === seg)));
}

export const duration = (fallback: number) => leaf(parseDuration, () => fallback);
export const size = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  leaf(
    (v) => {
      const r = parseSize(v);
      if (r.ok && r.value < min) return { ok: false, message: `must be at least ${min} bytes` };
      if (r.ok && r.value > max) return { ok: false, message: `must be at most ${max} bytes` };
      return r;
    },
    () => fallback,
  );
export const integer = (fallback: number, min: number, max: number) =>
  leaf(
    (v) => parseInteger(v, min, max),
    () => fallback,
  );
export const boolean = (fallback: boolean) => leaf(parseBoolean, () => fallback);
export const choice = <T extends string>(choices: readonly T[], fallback: T) =>
  leaf(
    (v) => parseChoice(v, choices),
    () => fallback,
  );
export const listenAddress = (fallback: ListenAddress) =>
  leaf(
    (v): Parsed<ListenAddress> => {
      const r = parseAddress(v, { listening: true });
      return r.ok ? { ok: true, value: { host: r.value.host, port: r.value.port } } : r;
    },
    () => ({ ...fallback }),
  );

export function nonEmptyString(value: unknown): Parsed<string> {
  if (typeof value !== 'string' || value.trim() === '') {
    return { ok: false, message: `expected a non-empty string (got ${describeValue(value)})` };
  }
  return { ok: true, value: value.trim() };
}

/** A share from 0 to 1, e.g. a retry budget's retries per request. */
export const ratio = (fallback: number) =>
  leaf(
    (v): Parsed<number> =>
      typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1
        ? { ok: true, value: v }
        : { ok: false, message: `expected a number from 0 to 1 (got ${describeValue(v)})` },
    () => fallback,
  );

/** A duration that may be zero (`0`, `0s`, `0m0s`): the feature is off. */
export const durationOrZero = (fallback: number) =>
  leaf(
    (v) => parseDuration(v, true),
    () => fallback,
  );

/**
 * A problem between two keys of one object, reported at `key`, or at `other` with `otherMessage`
 * when only `other` is written in the file (load.ts): the key the user wrote, not a default.
 */
export function pairIssue(
  ctx: z.RefinementCtx,
  key: string,
  message: string,
  other: string,
  otherMessage: string,
): void {
  ctx.addIssue({ code: 'custom', path: [key], message, params: { other, otherMessage } });
}

/** A cross-field check: `small` must not be larger than `large` (both keys of one object). */
export function notAbove<K extends string>(small: K, large: K, format: (value: number) => string) {
  return [
    (v: Record<K, number>, ctx: z.RefinementCtx) => {
      const [a, b] = [format(v[small]), format(v[large])];
      if (v[small] > v[large]) {
        pairIssue(
          ctx,
          small,
          `must not be larger than ${large} (${a} > ${b})`,
          large,
          `must not be smaller than ${small} (${b} < ${a})`,
        );
      }
    },
    {
      when: (p: { value: unknown; issues: readonly { path?: PropertyKey[] }[] }) =>
        isRecord(p.value) && clean(p.issues, [small], [large]),
    },
  ] as const;
}
