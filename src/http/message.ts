// The shapes the HTTP/1.1 codec produces and the rest of Sluice consumes.

/** One header field as received: `name` keeps its case, `lower` is for lookups, `value` is trimmed. */
export interface HeaderField {
  name: string;
  lower: string;
  value: string;
}

export interface RequestHead {
  method: string;
  /** The request-target exactly as sent (origin-form `/a?b`, absolute-form, authority-form or `*`). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: 0 | 1;
  headers: HeaderField[];
  /** The field lines as they came, set by the parser: the lines of `headers` if it is still `fields`. */
  received?: ReceivedFieldLines;
}

/** A head's field lines as received, to copy the ones that pass unchanged. */
export interface ReceivedFieldLines {
  fields: readonly HeaderField[];
  /** Holds the lines from `from` on, each with its CRLF but the last. */
  text: string;
  from: number;
}

export interface ResponseHead {
  versionMinor: 0 | 1;
  status: number;
  reason: string;
  headers: HeaderField[];
}

/** How a message body is delimited on the wire (RFC 9112 section 6). */
export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  /** `codings`: transfer codings applied before chunked (`gzip`), kept for the recipient. */
  | { kind: 'chunked'; codings?: string }
  /** Response only: the body runs until the server closes the connection. */
  | { kind: 'close'; codings?: string };

/** An empty buffer to share: the common "nothing left over" costs no allocation. */
export const noBytes: Buffer = Buffer.alloc(0);

/** A protocol violation that Sluice answers with `status` and then closes the connection. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

/** Why a head line is bad, when a bare CR or LF in it says more than `fallback`. */
export function describeBadLine(line: string, fallback: string): string {
  if (line.includes('\r')) return 'bare CR in message head';
  if (line.includes('\n')) return 'bare LF in message head';
  return fallback;
}

/** Limits applied while parsing a request head. */
export interface HeadLimits {
  /** Longest request line (method, target, version) in bytes; longer gets 414. */
  maxRequestLine: number;
  /** Largest whole head (request line, fields, final CRLF) in bytes; larger gets 431. */
  maxHead: number;
}

export const defaultHeadLimits: HeadLimits = { maxRequestLine: 8 * 1024, maxHead: 16 * 1024 };

/** The value of the first field named `lower` (already lower case), or undefined. */
export function headerValue(headers: readonly HeaderField[], lower: string): string | undefined {
  for (const field of headers) {
    if (field.lower === lower) return field.value;
  }
  return undefined;
}
