// Message body length (RFC 9112 section 6). Requests are judged strictly because every
// ambiguity here (CL+TE, duplicate lengths, odd codings) is a request smuggling vector
// between Sluice and the backend; responses only need a length we can trust, else 502.

import type { BodyFraming, RequestHead, ResponseHead } from './message.ts';
import { HttpError } from './message.ts';
import { isToken, trimOws } from './parser.ts';

/** No body (one shared object: most messages have none). */
export const NONE: BodyFraming = Object.freeze({ kind: 'none' });
const CHUNKED: BodyFraming = Object.freeze({ kind: 'chunked' });
const CLOSE: BodyFraming = Object.freeze({ kind: 'close' });

// 15 digits stay far below Number.MAX_SAFE_INTEGER, so Number() is exact.
const LENGTH = /^[0-9]{1,15}$/;

/**
 * The single length that all Content-Length fields agree on. A field may be a list
 * (`5, 5`) and several fields may repeat it; every element must be the identical string.
 */
function contentLength(values: readonly string[], status: number): number {
  // The usual single plain number (field values come without surrounding whitespace).
  const only = values.length === 1 ? (values[0] as string) : '';
  if (LENGTH.test(only)) return Number(only);
  let first: string | undefined;
  for (const value of values) {
    for (const raw of value.split(',')) {
      const element = trimOws(raw);
      if (!LENGTH.test(element)) throw new HttpError(status, 'invalid Content-Length');
      if (first === undefined) first = element;
      else if (element !== first) throw new HttpError(status, 'conflicting Content-Length values');
    }
  }
  return Number(first);
}

/** Transfer-Encoding of a request: only a lone `chunked` is accepted. */
function requestTransferEncoding(value: string): BodyFraming {
  const codings = value.split(',');
  let chunkedAt = -1;
  for (let k = 0; k < codings.length; k++) {
    const coding = trimOws(codings[k] as string).toLowerCase();
    if (coding === '') throw new HttpError(400, 'empty transfer coding');
    const semi = coding.indexOf(';');
    const name = semi === -1 ? coding : trimOws(coding.slice(0, semi));
    if (!isToken(name)) throw new HttpError(400, 'invalid transfer coding');
    if (name === 'chunked') {
      if (semi !== -1) throw new HttpError(400, 'chunked takes no parameters');
      if (chunkedAt !== -1) throw new HttpError(400, 'chunked applied more than once');
      chunkedAt = k;
    }
  }
  if (chunkedAt !== -1 && chunkedAt !== codings.length - 1) {
    throw new HttpError(400, 'chunked is not the final transfer coding');
  }
  if (codings.length === 1 && chunkedAt === 0) return CHUNKED;
  throw new HttpError(501, 'unsupported transfer coding');
}

/** How the body of `head` is delimited; throws HttpError (400, or 501 for unknown codings). */
export function requestFraming(head: RequestHead): BodyFraming {
  let teCount = 0;
  let te = '';
  let lengths: string[] | undefined;
  for (const field of head.headers) {
    if (field.lower === 'transfer-encoding') {
      teCount++;
      te = field.value;
    } else if (field.lower === 'content-length') {
      if (lengths === undefined) lengths = [field.value];
      else lengths.push(field.value);
    }
  }
  if (teCount > 0) {
    // An HTTP/1.0 hop may not understand TE and would read the body differently.
    if (head.versionMinor === 0) throw new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (lengths !== undefined) throw new HttpError(400, 'both Transfer-Encoding and Content-Length');
    if (teCount > 1) throw new HttpError(400, 'several Transfer-Encoding fields');
    return requestTransferEncoding(te);
  }
  if (lengths === undefined) return NONE;
  const length = contentLength(lengths, 400);
  return length === 0 ? NONE : { kind: 'length', length };
}

/** How the body of a response to `requestMethod` is delimited; throws HttpError(502). */
export function responseFraming(head: ResponseHead, requestMethod: string): BodyFraming {
  const status = head.status;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) return NONE;
  let te: string | undefined;
  let lengths: string[] | undefined;
  for (const field of head.headers) {
    if (field.lower === 'transfer-encoding') {
      te = te === undefined ? field.value : `${te},${field.value}`;
    } else if (field.lower === 'content-length') {
      if (lengths === undefined) lengths = [field.value];
      else lengths.push(field.value);
    }
  }
  if (te !== undefined) {
    // HTTP/1.0 has no Transfer-Encoding: a message with it has faulty framing (RFC 9112 6.1), and
    // neither its chunks nor the close tell where the body the sender meant ends.
    if (head.versionMinor === 0) throw new HttpError(502, 'Transfer-Encoding in an HTTP/1.0 response');
    // TE overrides Content-Length.
    const codings = te
      .split(',')
      .map((coding) => trimOws(coding))
      .filter((coding) => coding !== '');
    const chunked = codings.length > 0 && codings[codings.length - 1]?.toLowerCase() === 'chunked';
    if (chunked) codings.pop();
    // Other codings (gzip, deflate …) stay on the body: whoever forwards it must say so.
    if (codings.length === 0) return chunked ? CHUNKED : CLOSE;
    return { kind: chunked ? 'chunked' : 'close', codings: codings.join(', ') };
  }
  if (lengths === undefined) return CLOSE;
  const length = contentLength(lengths, 502);
  return length === 0 ? NONE : { kind: 'length', length };
}

/**
 * A response whose framing two readers could take differently (RFC 9112 6.3): Content-Length
 * together with Transfer-Encoding, or an answer without a body by the rules (`bodiless`: HEAD,
 * 204, 304) that announces one. Its body is read by the rules, but the connection cannot be
 * trusted with another request afterwards: a backend that thought otherwise sends those bytes.
 */
export function ambiguousResponseFraming(head: ResponseHead, bodiless: boolean): boolean {
  let te = false;
  let length: string | undefined;
  for (const field of head.headers) {
    if (field.lower === 'transfer-encoding') te = true;
    else if (field.lower === 'content-length') length = field.value;
  }
  if (te && length !== undefined) return true;
  return bodiless && (te || (length !== undefined && trimOws(length) !== '0'));
}
