// The request line (RFC 9112 3): read from its bytes when it is the usual one, else by a regular
// expression that also words the error. Both give the same parts for what the first accepts.
import { TOKEN_BYTE } from './field-lines.ts';
import { describeBadLine, type HeadLimits, HttpError } from './message.ts';

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const VERSION_PREFIX = Buffer.from(' HTTP/1.', 'latin1');
/** A request-target's bytes: VCHAR but '#' (a fragment is never part of a request-target). */
const TARGET_BYTE = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) if (c !== 0x23) TARGET_BYTE[c] = 1;

// The method a token, the target as TARGET_BYTE: no whitespace, CTLs, bytes >= 0x7F or '#'.
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!"\x24-\x7e]+) HTTP\/([0-9])\.([0-9])$/;

export interface RequestLine {
  method: string;
  target: string;
  versionMinor: 0 | 1;
  /** Where the field lines start in the buffer; -1 when the head is the request line alone. */
  fieldsAt: number;
}

/**
 * The usual request line read from its bytes: `token SP target SP HTTP/1.1` or `HTTP/1.0`, then
 * CRLF, within maxRequestLine. Undefined for anything else, which carefulRequestLine then judges
 * (and words the error): it accepts all this accepts, with the same parts.
 */
export function plainRequestLine(
  buf: Buffer,
  text: string,
  start: number,
  limits: HeadLimits,
): RequestLine | undefined {
  let i = start;
  while (TOKEN_BYTE[buf[i] as number] === 1) i++;
  const methodEnd = i;
  if (methodEnd === start || buf[i] !== SP) return undefined;
  const targetStart = ++i;
  while (TARGET_BYTE[buf[i] as number] === 1) i++;
  const targetEnd = i;
  if (targetEnd === targetStart || buf[i] !== SP || targetEnd + 9 - start > limits.maxRequestLine)
    return undefined;
  // ` HTTP/1.` then the minor version and CRLF.
  for (let k = 0; k < 8; k++) if (buf[targetEnd + k] !== VERSION_PREFIX[k]) return undefined;
  const minor = buf[targetEnd + 8];
  if ((minor !== 0x30 && minor !== 0x31) || buf[targetEnd + 9] !== CR || buf[targetEnd + 10] !== LF)
    return undefined;
  const fieldsAt = targetEnd + 11;
  return {
    method: text.slice(0, methodEnd - start),
    target: text.slice(targetStart - start, targetEnd - start),
    versionMinor: minor === 0x31 ? 1 : 0,
    // The line's CRLF is the first of the head's final CRLFCRLF when no field follows.
    fieldsAt: fieldsAt - start > text.length ? -1 : fieldsAt,
  };
}

/** The request line by the regular expression: its parts, or the error (400, 414 or 505). */
export function carefulRequestLine(text: string, start: number, limits: HeadLimits): RequestLine {
  const lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
  // A bare LF ends the request line early, and would make the line checks below misjudge it.
  if (requestLine.includes('\n')) throw new HttpError(400, 'bare LF in message head');
  if (requestLine.length > limits.maxRequestLine) throw new HttpError(414, 'request line too long');
  const m = REQUEST_LINE.exec(requestLine);
  if (m === null) throw new HttpError(400, describeBadLine(requestLine, 'malformed request line'));
  if (m[3] !== '1' || (m[4] !== '0' && m[4] !== '1')) {
    throw new HttpError(505, 'HTTP version not supported');
  }
  return {
    method: m[1] as string,
    target: m[2] as string,
    versionMinor: m[4] === '1' ? 1 : 0,
    fieldsAt: lineEnd === -1 ? -1 : start + lineEnd + 2,
  };
}
