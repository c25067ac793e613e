// Chooses the route for a request from its host and request-target. Pure; everything that can be
// worked out from the configuration is compiled once in the constructor.
//
// A route matches when both its host rule and its path prefix match. Among the matching routes
// the most specific wins, as in nginx, whatever the order in the file:
//   1. host: an exact host beats a `*.suffix` wildcard (the longer suffix first), which beats `*`;
//   2. then the longest path prefix;
//   3. then the order in the file.
// So with routes `api.example.test /v1/` and `*`, a request for api.example.test/other falls
// through to `*`. `*.example.test` matches `a.example.test` and `a.b.example.test`, not
// `example.test`.
//
// Hosts compare lower-cased, without port and without a trailing dot; an IPv6 literal compares
// in brackets (`[::1]`), whether the route names it with brackets or without. An absolute-form
// target (`http://host:port/path?q`) names the host itself, and that authority wins over the
// Host header (RFC 9112 section 3.2.2).
//
// Paths compare case-sensitively and byte for byte, on the path without the query: both sides
// are already normalized (the request by admission, the route path by config/paths.ts). A prefix ending in `/` matches every path that starts
// with it; any other prefix matches on a segment boundary: `/v1` matches `/v1`, `/v1/x` and
// `/v1?q`, not `/v1x`.

import type { RouteConfig } from '../config/types.ts';

export interface RouteMatch {
  route: RouteConfig;
  /**
   * The request-target to send on: origin-form, after stripPrefix, always starting with "/" and
   * with the query kept. The one exception is the asterisk-form `*` (OPTIONS), returned as `*`.
   */
  path: string;
}

interface CompiledRoute {
  route: RouteConfig;
  prefix: string;
  /** Prefix ends with `/`: any continuation matches. */
  slashEnded: boolean;
}

interface WildcardGroup {
  /** `.example.test` for `*.example.test`. */
  suffix: string;
  routes: CompiledRoute[];
}

export class Router {
  readonly #exact = new Map<string, CompiledRoute[]>();
  readonly #wildcards: WildcardGroup[] = [];
  readonly #any: CompiledRoute[] = [];

  constructor(routes: readonly RouteConfig[]) {
    const wildcards = new Map<string, CompiledRoute[]>();
    for (const route of routes) {
      const compiled: CompiledRoute = { route, prefix: route.path, slashEnded: route.path.endsWith('/') };
      const host = normalizeHost(route.host);
      if (host === '*') {
        this.#any.push(compiled);
      } else if (host.startsWith('*.')) {
        pushTo(wildcards, host.slice(1), compiled);
      } else {
        pushTo(this.#exact, host, compiled);
      }
    }
    for (const [suffix, list] of wildcards) this.#wildcards.push({ suffix, routes: list });
    // Longer suffix first; Array.prototype.sort is stable, so file order breaks ties.
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    for (const list of this.#exact.values()) sortByPrefix(list);
    for (const group of this.#wildcards) sortByPrefix(group.routes);
    sortByPrefix(this.#any);
  }

  /**
   * The route for a request, or undefined when none matches (404). `host` is the raw Host header
   * value, `target` the request-target as sent.
   */
  match(host: string | undefined, target: string): RouteMatch | undefined {
    let originForm = target;
    let authority = host;
    if (target.charCodeAt(0) !== SLASH) {
      if (target === '*') return this.#matchAsterisk(host);
      const absolute = splitAbsolute(target);
      if (absolute === undefined) return undefined; // authority-form or garbage
      originForm = absolute.path;
      if (absolute.authority !== '') authority = absolute.authority;
    }
    const name = authority === undefined ? '' : hostName(authority);
    const query = originForm.indexOf('?');
    const pathEnd = query < 0 ? originForm.length : query;

    const exact = this.#exact.get(name);
    if (exact !== undefined) {
      const found = firstMatch(exact, originForm, pathEnd);
      if (found !== undefined) return found;
    }
    for (const group of this.#wildcards) {
      if (name.length > group.suffix.length && name.endsWith(group.suffix)) {
        const found = firstMatch(group.routes, originForm, pathEnd);
        if (found !== undefined) return found;
      }
    }
    return firstMatch(this.#any, originForm, pathEnd);
  }

  /** `OPTIONS *` matches only routes whose prefix is `/`. */
  #matchAsterisk(host: string | undefined): RouteMatch | undefined {
    const name = host === undefined ? '' : hostName(host);
    const pick = (list: readonly CompiledRoute[] | undefined): RouteMatch | undefined => {
      if (list === undefined) return undefined;
      for (const c of list) if (c.prefix === '/') return { route: c.route, path: '*' };
      return undefined;
    };
    let found = pick(this.#exact.get(name));
    for (let i = 0; found === undefined && i < this.#wildcards.length; i++) {
      const group = this.#wildcards[i] as WildcardGroup;
      if (name.length > group.suffix.length && name.endsWith(group.suffix)) found = pick(group.routes);
    }
    return found ?? pick(this.#any);
  }
}

const SLASH = 0x2f;

function pushTo(map: Map<string, CompiledRoute[]>, key: string, route: CompiledRoute): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [route]);
  else list.push(route);
}

/** Longest prefix first; the sort is stable, so file order breaks ties. */
function sortByPrefix(list: CompiledRoute[]): void {
  list.sort((a, b) => b.prefix.length - a.prefix.length);
}

function firstMatch(list: readonly CompiledRoute[], target: string, pathEnd: number): RouteMatch | undefined {
  for (const c of list) {
    const prefix = c.prefix;
    if (prefix.length > pathEnd || !target.startsWith(prefix)) continue;
    if (!c.slashEnded && pathEnd !== prefix.length && target.charCodeAt(prefix.length) !== SLASH) continue;
    return { route: c.route, path: c.route.stripPrefix ? strip(c, target) : target };
  }
  return undefined;
}

/** `/v1/users?id=3` less `/v1/` is `/users?id=3`; less `/v1` it is the same; `/v1?x` less `/v1` is `/?x`. */
function strip(c: CompiledRoute, target: string): string {
  if (c.slashEnded) return target.slice(c.prefix.length - 1);
  const rest = target.slice(c.prefix.length);
  return rest.charCodeAt(0) === SLASH ? rest : `/${rest}`;
}

/**
 * Splits an absolute-form target `scheme://authority/path?query` into its authority and its
 * origin-form part (`/` when the path is empty). Undefined when the target is not absolute-form.
 */
function splitAbsolute(target: string): { authority: string; path: string } | undefined {
  const sep = target.indexOf('://');
  if (sep <= 0 || !/^[A-Za-z][A-Za-z0-9+.-]*$/.test(target.slice(0, sep))) return undefined;
  const start = sep + 3;
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === SLASH || c === 0x3f /* ? */ || c === 0x23 /* # */) break;
    end++;
  }
  let authority = target.slice(start, end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let path = target.slice(end);
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  if (path === '') path = '/';
  else if (path.charCodeAt(0) !== SLASH) path = `/${path}`;
  return { authority, path };
}

/** The host of a Host header value or authority: lower case, no port, no trailing dot. */
export function hostName(authority: string): string {
  let host = authority.trim();
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    host = close < 0 ? host : host.slice(0, close + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) {
      // `host:port`; several colons is a bare IPv6 literal, which compares in brackets.
      host = host.indexOf(':', colon + 1) < 0 ? host.slice(0, colon) : `[${host}]`;
    }
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

/** A route's host rule in the form `hostName` produces (`*` and `*.suffix` kept as they are). */
function normalizeHost(host: string): string {
  const h = host.trim().toLowerCase();
  if (h === '*') return h;
  if (h.startsWith('*.')) return h.endsWith('.') ? h.slice(0, -1) : h;
  return hostName(h);
}
