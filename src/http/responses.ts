// The answers Sluice makes itself, each with a short text body.
import { reasonPhrase } from './status.ts';

/** A complete response with a text body; `close` adds `Connection: close`. */
export function plainResponse(
  status: number,
  body: string,
  options: { close: boolean; head?: boolean; extra?: string; contentType?: string },
): string {
  const text = `${body}\n`;
  const type = options.contentType ?? 'text/plain; charset=utf-8';
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(text)}\r\n`;
  if (options.extra) head += options.extra;
  if (options.close) head += 'connection: close\r\n';
  return `${head}\r\n${options.head ? '' : text}`;
}
