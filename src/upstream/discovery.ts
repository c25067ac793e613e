// Turns configured server addresses into concrete backends: an IP stays one backend, a DNS
// name becomes one backend per address it resolves to.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { formatPath } from '../config/issues.ts';
import type { Config, PoolConfig, ServerConfig } from '../config/types.ts';

export interface ResolvedServer {
  server: ServerConfig;
  /** Stable label: the server's name, plus the resolved IP for DNS names. */
  name: string;
  host: string;
  port: number;
}

export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, order: 'ipv4first' })).map((entry) => entry.address);

/**
 * The backends of `pool`'s servers. A name that does not resolve fails it all, with the key of
 * the server that named it (`pools.web.servers[2].address: "gone.test" does not resolve
 * (ENOTFOUND)`), as `sluice check --resolve` says it.
 */
export async function resolveServers(
  pool: Pick<PoolConfig, 'name' | 'servers'>,
  resolve: Resolver = systemResolver,
): Promise<ResolvedServer[]> {
  const resolved = await Promise.all(
    pool.servers.map(async (server, i): Promise<ResolvedServer[]> => {
      if (isIP(server.host)) return [{ server, name: server.name, host: server.host, port: server.port }];
      const addresses = await resolve(server.host).catch((error: NodeJS.ErrnoException) => {
        throw new Error(`${formatPath(addressPath(pool.name, i))}: "${server.host}" ${notResolving(error)}`);
      });
      return [...new Set(addresses)].map((address) => ({
        server,
        name: `${server.name}/${address}`,
        host: address,
        port: server.port,
      }));
    }),
  );
  return resolved.flat();
}

const addressPath = (pool: string, i: number) => ['pools', pool, 'servers', i, 'address'];
const notResolving = (error: NodeJS.ErrnoException) => `does not resolve (${error.code ?? error.message})`;

/**
 * Servers given by a DNS name that does not resolve (or resolves to nothing), each at its key path
 * (`pools.web.servers[2].address`), for `sluice check --resolve`. Each name is looked up once.
 */
export async function unresolvedNames(
  config: Config,
  resolve: Resolver = systemResolver,
): Promise<{ path: (string | number)[]; message: string }[]> {
  const lookups = new Map<string, Promise<string | undefined>>();
  const failure = (host: string) => {
    let pending = lookups.get(host);
    if (pending === undefined) {
      pending = resolve(host).then(
        (addresses) => (addresses.length > 0 ? undefined : 'resolves to no address'),
        notResolving,
      );
      lookups.set(host, pending);
    }
    return pending;
  };
  const problems = await Promise.all(
    config.pools.flatMap((pool) =>
      pool.servers.map(async (server, i) => {
        if (isIP(server.host)) return undefined;
        const why = await failure(server.host);
        return why === undefined
          ? undefined
          : { path: addressPath(pool.name, i), message: `"${server.host}" ${why}` };
      }),
    ),
  );
  return problems.filter((problem) => problem !== undefined);
}
