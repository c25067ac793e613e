// The exact bytes of a request head, written by hand (pure): `METHOD target HTTP/1.1`, the
// default fields, then the user's; a user field replaces a default of the same name in place.
import type { HeaderOption } from './options.ts';

export const userAgent = 'sluice-client/0.1';

/** The content type curl gives to -d / --data-binary bodies; -H 'Content-Type: ...' replaces it. */
export const defaultBodyType = 'application/x-www-form-urlencoded';

export interface RequestSpec {
  method: string;
  url: URL;
  /** The -H options, in order. */
  headers: readonly HeaderOption[];
  /** Length of the body, or undefined when there is none. */
  bodyLength: number | undefined;
  /** `Connection: keep-alive` (for --repeat) instead of `Connection: close`. */
  keepAlive: boolean;
}

/** Methods whose request carries `Content-Length: 0` when there is no body (RFC 9110 8.6). */
const bodyMethods = new Set(['POST', 'PUT', 'PATCH']);

/** The origin-form target: path and query of the URL, never the fragment. */
export function requestTarget(url: URL): string {
  return `${url.pathname || '/'}${url.search}`;
}

/** The Host field: host name with the port unless it is 80 (URL leaves the default port out). */
export function hostField(url: URL): string {
  return url.host;
}

/** Basic credentials from `http://user:pass@host/`, if the URL has any. */
export function basicAuthorization(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
}

/** The header fields in the order they are sent. */
export function requestFields(spec: RequestSpec): [string, string][] {
  const fields: [string, string][] = [['Host', hostField(spec.url)]];
  const authorization = basicAuthorization(spec.url);
  if (authorization !== undefined) fields.push(['Authorization', authorization]);
  fields.push(['User-Agent', userAgent], ['Accept', '*/*']);
  if (spec.bodyLength !== undefined) {
    fields.push(['Content-Type', defaultBodyType], ['Content-Length', String(spec.bodyLength)]);
  } else if (bodyMethods.has(spec.method)) {
    fields.push(['Content-Length', '0']);
  }
  fields.push(['Connection', spec.keepAlive ? 'keep-alive' : 'close']);

  // Each user field replaces the first default of its name (dropping it if the value is
  // undefined); what replaces nothing is appended. Defaults are replaced at most once, so
  // two -H of one name both go out.
  const replaced = new Set<string>();
  const out: ([string, string] | undefined)[] = [...fields];
  for (const option of spec.headers) {
    const lower = option.name.toLowerCase();
    const index = replaced.has(lower) ? -1 : fields.findIndex(([name]) => name.toLowerCase() === lower);
    if (index !== -1) {
      replaced.add(lower);
      out[index] = option.value === undefined ? undefined : [option.name, option.value];
    } else if (option.value !== undefined) {
      out.push([option.name, option.value]);
    }
  }
  return out.filter((field) => field !== undefined);
}

/** The request asks to switch protocols (a -H Upgrade with a value), so a 101 may answer it. */
export function asksForUpgrade(headers: readonly HeaderOption[]): boolean {
  return headers.some((h) => h.name.toLowerCase() === 'upgrade' && (h.value ?? '').trim() !== '');
}

/** The request line, the fields and the empty line, as the bytes sent (UTF-8 for field values). */
export function buildRequestHead(spec: RequestSpec): Buffer {
  let head = `${spec.method} ${requestTarget(spec.url)} HTTP/1.1\r\n`;
  for (const [name, value] of requestFields(spec)) head += `${name}: ${value}\r\n`;
  return Buffer.from(`${head}\r\n`, 'utf8');
}
