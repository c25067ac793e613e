// Where a response body goes, decided by pure functions: printed as text (charset honoured)
// or saved to a file (named by -o, Content-Disposition, the URL, or index.bin), the `> ` / `< `
// trace lines of -v, and what keeps a server's control characters off the terminal.

/**
 * C0 and C1 controls, DEL and the bidirectional overrides: a server's text that carries them
 * can clear the screen, set the title or the clipboard, or show a name backwards.
 */
const BIDI = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';
const CONTROLS = new RegExp(`[\\x00-\\x1f\\x7f-\\x9f${BIDI}]`, 'g');
const CONTROLS_BUT_TAB = new RegExp(`[\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f${BIDI}]`, 'g');
const CONTROLS_BUT_LAYOUT = new RegExp(`[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f${BIDI}]`, 'g');

/** `text` with each control character shown as an escape (`\x1b`, `\u202e`); TAB stays, and LF and CR with `lines`. */
export function printable(text: string, lines = false): string {
  return text.replace(lines ? CONTROLS_BUT_LAYOUT : CONTROLS_BUT_TAB, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

/** One line of a note or an error on stderr: `sluice client: ` and the message, made printable. */
export function noteLine(message: string): string {
  return `sluice client: ${printable(message)}\n`;
}

export interface MediaType {
  /** `type/subtype`, lower case; '' when there is no Content-Type. */
  type: string;
  charset: string | undefined;
}

/** Parses a Content-Type value: `text/html; charset="UTF-8"` -> text/html, utf-8. */
export function parseMediaType(value: string | undefined): MediaType {
  if (value === undefined) return { type: '', charset: undefined };
  const [essence = '', ...params] = value.split(';');
  let charset: string | undefined;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    charset = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return { type: essence.trim().toLowerCase(), charset: charset || undefined };
}

const textApplicationTypes = new Set([
  'application/json',
  'application/xml',
  'application/javascript',
  'application/ecmascript',
  'application/x-javascript',
  'application/x-www-form-urlencoded',
  'application/x-ndjson',
  'application/yaml',
  'application/x-yaml',
  'application/toml',
  'application/problem+json',
  'application/xhtml+xml',
  'application/sql',
  'application/graphql',
  'image/svg+xml',
]);

/** Whether a media type is text a terminal can show: text/*, JSON, XML, JavaScript and kin. */
export function isTextType(type: string): boolean {
  if (type.startsWith('text/')) return true;
  if (textApplicationTypes.has(type)) return true;
  return type.endsWith('+json') || type.endsWith('+xml');
}

/** Without a Content-Type: a NUL byte or many control characters in the first bytes mean binary. */
export function looksBinary(sample: Buffer): boolean {
  const n = Math.min(sample.length, 1024);
  let control = 0;
  for (let i = 0; i < n; i++) {
    const byte = sample[i] as number;
    if (byte === 0) return true;
    // Allow TAB, LF, FF, CR, ESC (colours); others are rare in text.
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d && byte !== 0x1b)
      control++;
  }
  return control > n / 10;
}

/**
 * The TextDecoder encoding for a charset: 'utf-8' when absent or unknown-but-harmless (ASCII),
 * undefined when TextDecoder does not know it (the bytes are then read as UTF-8).
 * Note that TextDecoder, as browsers do, reads latin1 / iso-8859-1 as windows-1252.
 */
export function textEncoding(charset: string | undefined): string | undefined {
  if (charset === undefined) return 'utf-8';
  const label = charset.trim().toLowerCase();
  if (label === 'us-ascii' || label === 'ascii') return 'utf-8';
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return undefined;
  }
}

export type OutputDecision =
  /** Print on stdout; `encoding` other than utf-8 is converted to UTF-8 on the way. */
  | { kind: 'text'; encoding: string | undefined }
  /** The bytes as they are on stdout (`-o -`). */
  | { kind: 'stdout' }
  /** Save to a file; `overwrite` only for `-o FILE`, else a free name is found (.1, .2, ...). */
  | { kind: 'file'; name: string; overwrite: boolean };

export interface OutputInputs {
  contentType: string | undefined;
  /** A body in a content coding (gzip, br...) is binary whatever its type. */
  contentEncoding?: string | undefined;
  contentDisposition: string | undefined;
  url: URL;
  /** -o */
  output: string | undefined;
  /** -O */
  remoteName: boolean;
  /** stdout is a terminal: text is shown and binary saved; else (a pipe, a file) the bytes go there. */
  stdoutIsTTY: boolean;
  /** The first body bytes, to sniff when there is no Content-Type. */
  sample: Buffer;
}

export function decideOutput(inputs: OutputInputs): OutputDecision {
  if (inputs.output === '-') return { kind: 'stdout' };
  if (inputs.output !== undefined) return { kind: 'file', name: inputs.output, overwrite: true };
  const name = () => pickFilename(inputs.contentDisposition, inputs.url);
  if (inputs.remoteName) return { kind: 'file', name: name(), overwrite: false };
  if (!inputs.stdoutIsTTY) return { kind: 'stdout' };
  const media = parseMediaType(inputs.contentType);
  const coding = inputs.contentEncoding?.trim().toLowerCase();
  const encoded = coding !== undefined && coding !== '' && coding !== 'identity';
  const text = !encoded && (media.type === '' ? !looksBinary(inputs.sample) : isTextType(media.type));
  if (text) return { kind: 'text', encoding: textEncoding(media.charset) };
  return { kind: 'file', name: name(), overwrite: false };
}

/**
 * A safe local file name from a server-chosen one: the last path segment only, no control
 * characters, not `.` or `..`, no leading dots (no hidden files); undefined if nothing is left.
 */
export function sanitizeFilename(name: string): string | undefined {
  const base = (name.split(/[/\\]/).pop() ?? '').replace(CONTROLS, '');
  const clean = base.replace(/^[.\s]+/, '').trim();
  if (clean === '' || clean.length > 255) return undefined;
  return clean;
}

function decodeRfc5987(value: string): string | undefined {
  // charset'language'percent-encoded (RFC 8187)
  const m = /^([A-Za-z0-9!#$&+\-^_`{}~]+)'[A-Za-z0-9-]*'(.*)$/.exec(value.trim());
  if (m === null) return undefined;
  const charset = (m[1] as string).toLowerCase();
  const bytes: number[] = [];
  const encoded = m[2] as string;
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded[i] as string;
    if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c.charCodeAt(0) & 0xff);
    }
  }
  try {
    return new TextDecoder(charset, { fatal: true }).decode(Buffer.from(bytes));
  } catch {
    return undefined;
  }
}

/** Splits parameters on `;` outside quoted strings. */
function splitParams(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (quoted && c === '\\' && i + 1 < value.length) {
      current += c + value[i + 1];
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ';' && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/**
 * The file name of a Content-Disposition value (RFC 6266): `filename*=UTF-8''...` wins over
 * `filename=` (token or quoted string). Returned unsanitized; undefined if there is none.
 */
export function contentDispositionFilename(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let plain: string | undefined;
  let extended: string | undefined;
  for (const param of splitParams(value).slice(1)) {
    const eq = param.indexOf('=');
    if (eq === -1) continue;
    const key = param.slice(0, eq).trim().toLowerCase();
    let raw = param.slice(eq + 1).trim();
    if (key === 'filename*') {
      extended = decodeRfc5987(raw) ?? extended;
    } else if (key === 'filename') {
      if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) {
        raw = raw.slice(1, -1).replace(/\\(.)/g, '$1');
      }
      plain = raw;
    }
  }
  return extended ?? plain;
}

/** The last path segment of the URL, percent-decoded; undefined for a path ending in `/`. */
export function urlFilename(url: URL): string | undefined {
  const segment = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  if (segment === '') return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export const fallbackFilename = 'index.bin';

/** Content-Disposition filename, else the URL's last segment, else index.bin; always sanitized. */
export function pickFilename(contentDisposition: string | undefined, url: URL): string {
  const fromHeader = contentDispositionFilename(contentDisposition);
  const fromUrl = urlFilename(url);
  return (
    (fromHeader === undefined ? undefined : sanitizeFilename(fromHeader)) ??
    (fromUrl === undefined ? undefined : sanitizeFilename(fromUrl)) ??
    fallbackFilename
  );
}

/** The n-th candidate for a free file name: `name`, `name.1`, `name.2`, ... */
export function numberedName(name: string, n: number): string {
  return n === 0 ? name : `${name}.${n}`;
}

/**
 * A head as trace lines: `> GET / HTTP/1.1`, `> Host: a`, ..., and `> ` for the empty line
 * that ends it (as curl -v shows them). Request heads are UTF-8, response heads latin1.
 */
export function traceLines(raw: Buffer, prefix: '> ' | '< ', encoding: 'utf8' | 'latin1' = 'latin1'): string {
  const lines = raw.toString(encoding).split(/\r?\n/);
  // The head ends with an empty line, so the split leaves one more empty string: drop it.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => `${prefix}${printable(line)}\n`).join('');
}
