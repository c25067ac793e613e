// Strict incremental parser for HTTP/1.1 message heads (RFC 9112 sections 2-5).
// The caller re-invokes it on a growing buffer, so the "not complete yet" path is a few
// native indexOf calls; a complete head is converted to a string once (latin1, so every
// byte maps to one char). The usual lines are read from the bytes (request-line.ts,
// field-lines.ts); any other line is checked with a regex, which also words the error.

import { scanFieldLines } from './field-lines.ts';
import {
  defaultHeadLimits,
  describeBadLine,
  type HeaderField,
  type HeadLimits,
  HttpError,
  type RequestHead,
  type ResponseHead,
} from './message.ts';
import { carefulRequestLine, plainRequestLine } from './request-line.ts';

const CR = 0x0d;
const LF = 0x0a;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** A request with more header fields than this gets 431. */
export const maxRequestFields = 100;
/** Default bound on a response head; larger is treated as a broken backend (502). */
export const defaultMaxResponseHead = 64 * 1024;

// tchar (RFC 9110 5.6.2).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values may hold VCHAR, SP, HTAB and obs-text; every other CTL (NUL, CR, LF, DEL...) is invalid.
// One anchored positive match per line is the fastest check V8 offers here.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const FIELD_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

// uri-host: IP-literal or reg-name (IPv4 is a subset of reg-name's characters), without the
// sub-delims RFC 3986 lets a reg-name have: no host name has them, and `,` or `;` would make
// Host one name to Sluice's router and a list to a backend reading X-Forwarded-Host.
const HOST = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%]+)`;
const HOST_FIELD = new RegExp(`^${HOST}(?::[0-9]{1,5})?$`);
const AUTHORITY_FORM = new RegExp(`^${HOST}:[0-9]{1,5}$`);
// No userinfo: RFC 9110 4.2.4 says to treat it as an error.
const ABSOLUTE_FORM = new RegExp(`^https?://${HOST}(?::[0-9]{1,5})?(?:[/?]|$)`, 'i');

export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

/** `s` from index `from` without leading and trailing OWS (SP / HTAB only, unlike String#trim). */
export function trimOws(s: string, from = 0): string {
  let a = from;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return s.slice(a, b);
}

/** Why `line` is not a valid field line (slow path, only after FIELD_LINE failed). */
function fieldLineError(line: string, status: number): HttpError {
  const first = line.charCodeAt(0);
  if (first === 0x20 || first === 0x09) return new HttpError(status, 'obsolete line folding');
  const colon = line.indexOf(':');
  if (colon === 0) return new HttpError(status, 'empty field name');
  if (colon < 0) return new HttpError(status, describeBadLine(line, 'field line without colon'));
  // Includes whitespace before the colon (RFC 9112 5.1), a classic smuggling vector.
  if (!TOKEN.test(line.slice(0, colon)))
    return new HttpError(status, describeBadLine(line, 'invalid field name'));
  return new HttpError(status, describeBadLine(line, 'invalid character in field value'));
}

/** Parses `name ":" OWS value OWS` (line without its line ending); violations throw `status`. */
export function parseFieldLine(line: string, status: number): HeaderField {
  if (!FIELD_LINE.test(line)) throw fieldLineError(line, status);
  // tchar excludes ':', so the first colon ends the name.
  const colon = line.indexOf(':');
  const name = line.slice(0, colon);
  return { name, lower: name.toLowerCase(), value: trimOws(line, colon + 1) };
}

function checkTarget(method: string, target: string): void {
  if (method === 'CONNECT') {
    if (!AUTHORITY_FORM.test(target)) throw new HttpError(400, 'CONNECT needs an authority-form target');
    return;
  }
  if (target.charCodeAt(0) === 0x2f) return; // origin-form
  if (target === '*') {
    if (method !== 'OPTIONS') throw new HttpError(400, 'asterisk-form is only for OPTIONS');
    return;
  }
  if (!ABSOLUTE_FORM.test(target)) throw new HttpError(400, 'invalid request-target');
}

/** 400 for a bare LF in `buf` from `from` on (strict line endings for requests). */
function rejectBareLf(buf: Buffer, from: number): void {
  for (let i = buf.indexOf(LF, from); i !== -1; i = buf.indexOf(LF, i + 1)) {
    if (i === 0 || buf[i - 1] !== CR) throw new HttpError(400, 'bare LF in message head');
  }
}

/**
 * The checks on a request head that has no end yet within `maxHead` (`end` is where CRLFCRLF
 * is, -1 if nowhere): throws 414, 431 or 400 as soon as the bytes so far show the head is bad.
 */
function incompleteRequestHead(buf: Buffer, start: number, end: number, limits: HeadLimits): void {
  const len = buf.length;
  const lineEnd = buf.indexOf(LF, start);
  if (lineEnd === -1) {
    // Request line still incomplete: it may already be too long (a trailing CR is not content).
    const sofar = len - start - (buf[len - 1] === CR ? 1 : 0);
    if (sofar > limits.maxRequestLine) throw new HttpError(414, 'request line too long');
    if (len >= limits.maxHead) throw new HttpError(431, 'request head too large');
    return;
  }
  if (lineEnd === start || buf[lineEnd - 1] !== CR) throw new HttpError(400, 'bare LF in message head');
  if (lineEnd - 1 - start > limits.maxRequestLine) throw new HttpError(414, 'request line too long');
  // With maxHead bytes and no terminator, the head can only end beyond maxHead.
  if (end !== -1 || len >= limits.maxHead) throw new HttpError(431, 'request head too large');
  rejectBareLf(buf, lineEnd + 1);
}

/**
 * Parses a request head from the start of `buf`. Returns null while incomplete (and within
 * limits), else the head and `size`, the bytes consumed through the final CRLFCRLF.
 */
export function parseRequestHead(
  buf: Buffer,
  limits: HeadLimits = defaultHeadLimits,
): { head: RequestHead; size: number } | null {
  const len = buf.length;
  // RFC 9112 2.2: skip empty lines before the request line; they still count toward maxHead.
  let start = 0;
  while (start + 1 < len && buf[start] === CR && buf[start + 1] === LF) start += 2;

  const end = buf.indexOf(CRLFCRLF, start);
  if (end === -1 || end + 4 > limits.maxHead) {
    incompleteRequestHead(buf, start, end, limits);
    return null;
  }
  const size = end + 4;

  const text = buf.toString('latin1', start, end);
  const line = plainRequestLine(buf, text, start, limits) ?? carefulRequestLine(text, start, limits);
  const { method, target, versionMinor, fieldsAt } = line;
  checkTarget(method, target);

  const headers =
    fieldsAt === -1
      ? []
      : (scanFieldLines(buf, text, start, fieldsAt, end, maxRequestFields) ??
        requestFieldLines(text.slice(fieldsAt - start).split('\r\n')));
  let host: string | undefined;
  for (const field of headers) {
    if (field.lower !== 'host') continue;
    if (host !== undefined) throw new HttpError(400, 'duplicate Host field');
    host = field.value;
  }
  if (host === undefined) {
    if (versionMinor === 1) throw new HttpError(400, 'HTTP/1.1 request without Host');
  } else if (!HOST_FIELD.test(host)) {
    throw new HttpError(400, 'invalid Host');
  }

  const received = fieldsAt === -1 ? undefined : { fields: headers, text, from: fieldsAt - start };
  return { head: { method, target, versionMinor, headers, received }, size };
}

/** The careful path for request field lines the byte scan did not take: 431 or 400 says why. */
function requestFieldLines(lines: readonly string[]): HeaderField[] {
  if (lines.length > maxRequestFields) throw new HttpError(431, 'too many header fields');
  return lines.map((line) => parseFieldLine(line, 400));
}

/**
 * Parses a response head from the start of `buf`: null while incomplete, else the head and
 * `size`. Lenient where real servers deviate (bare LF line endings, obs-fold, missing reason);
 * anything else is a broken backend and throws HttpError(502).
 */
export function parseResponseHead(
  buf: Buffer,
  maxHead: number = defaultMaxResponseHead,
): { head: ResponseHead; size: number } | null {
  // The usual head has CRLF line endings only: one search finds its end. A bare LF or CR in it
  // fails the line checks, and then the careful scan decides where the head ends (or throws).
  const end = buf.indexOf(CRLFCRLF);
  if (end !== -1 && end + 4 <= maxHead) {
    try {
      const text = buf.toString('latin1', 0, end);
      const lineEnd = text.indexOf('\r\n');
      const headers =
        lineEnd === -1 ? [] : scanFieldLines(buf, text, 0, lineEnd + 2, end, Number.POSITIVE_INFINITY);
      const head =
        headers === undefined
          ? parseResponseLines(text.split('\r\n'))
          : statusHead(lineEnd === -1 ? text : text.slice(0, lineEnd), headers);
      return { head, size: end + 4 };
    } catch {}
  }
  return scanResponseHead(buf, maxHead);
}

/** The lenient search for the end of a response head: LF or CRLF both end a line. */
function scanResponseHead(buf: Buffer, maxHead: number): { head: ResponseHead; size: number } | null {
  let bareLf = false;
  let size = -1;
  let i = buf.indexOf(LF);
  while (i !== -1) {
    if (i === 0 || buf[i - 1] !== CR) bareLf = true;
    const next = buf[i + 1];
    if (next === LF) {
      size = i + 2;
      break;
    }
    if (next === CR && buf[i + 2] === LF) {
      size = i + 3;
      break;
    }
    i = buf.indexOf(LF, i + 1);
  }
  if (size === -1) {
    if (buf.length >= maxHead) throw new HttpError(502, 'response head too large');
    return null;
  }
  if (size > maxHead) throw new HttpError(502, 'response head too large');

  const text = buf.toString('latin1', 0, i > 0 && buf[i - 1] === CR ? i - 1 : i);
  return { head: parseResponseLines(bareLf ? text.split(/\r?\n/) : text.split('\r\n')), size };
}

/** A response head from its status line and its fields; throws HttpError(502). */
function statusHead(statusLine: string, headers: HeaderField[]): ResponseHead {
  const m = STATUS_LINE.exec(statusLine);
  if (m === null) throw new HttpError(502, describeBadLine(statusLine, 'malformed status line'));
  return { versionMinor: m[1] === '1' ? 1 : 0, status: Number(m[2]), reason: m[3] ?? '', headers };
}

/** The status line and fields of a response head split into lines; throws HttpError(502). */
function parseResponseLines(lines: readonly string[]): ResponseHead {
  const headers: HeaderField[] = [];
  for (let k = 1; k < lines.length; k++) {
    const line = lines[k] as string;
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      // obs-fold: RFC 9112 5.2 lets a proxy replace it with SP.
      const prev = headers[headers.length - 1];
      if (prev === undefined) throw new HttpError(502, 'obsolete line folding before any field');
      if (!FIELD_VALUE.test(line))
        throw new HttpError(502, describeBadLine(line, 'invalid character in field value'));
      const part = trimOws(line);
      if (part !== '') prev.value = prev.value === '' ? part : `${prev.value} ${part}`;
      continue;
    }
    headers.push(parseFieldLine(line, 502));
  }
  return statusHead(lines[0] as string, headers);
}
