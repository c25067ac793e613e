// Who may use the admin port. Browsers are the danger: a page on any site can make a visitor's
// browser POST to 127.0.0.1:9100, and DNS rebinding even lets it read the answers. So a state
// change (anything but GET and HEAD) is refused when it comes from a browser (Origin or
// Sec-Fetch-Site present) or names a Host that is not an IP address or localhost (a rebound
// name), unless the caller shows the bearer token. With `adminToken` set, every endpoint but
// /healthz and /readyz needs it.
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { headerValue, type RequestHead } from '../http/message.ts';

export type AdminRefusal = { status: 401 | 403; reason: string; message: string };

/** Liveness and readiness: open without the token, and answered even at the connection limit. */
export const probePaths: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export function adminRefusal(
  head: RequestHead,
  path: string,
  token: string | undefined,
): AdminRefusal | undefined {
  const authorized = token !== undefined && bearerMatches(headerValue(head.headers, 'authorization'), token);
  if (token !== undefined && !authorized && !probePaths.has(path))
    return { status: 401, reason: 'admin_unauthorized', message: 'bearer token required' };
  if (head.method === 'GET' || head.method === 'HEAD') return undefined;
  if (fromBrowser(head))
    return { status: 403, reason: 'admin_browser', message: 'state changes from a browser are refused' };
  if (!authorized && !localHost(headerValue(head.headers, 'host')))
    return {
      status: 403,
      reason: 'admin_host',
      message: 'state changes need Host to be an IP address or localhost, or a bearer token',
    };
  return undefined;
}

function fromBrowser(head: RequestHead): boolean {
  if (headerValue(head.headers, 'origin') !== undefined) return true;
  const site = headerValue(head.headers, 'sec-fetch-site');
  return site !== undefined && site.toLowerCase() !== 'none';
}

/** `127.0.0.1:9100`, `[::1]:9100`, `localhost` …: not a name an attacker's DNS can point here. */
function localHost(host: string | undefined): boolean {
  if (host === undefined) return true; // HTTP/1.0 without Host: no name at all, so not rebound
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']'));
  else if (name.includes(':')) name = name.slice(0, name.lastIndexOf(':'));
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name === 'localhost' || isIP(name) !== 0;
}

function bearerMatches(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1] as string);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
