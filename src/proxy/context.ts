// What every client connection of one proxy listener shares. A config reload replaces
// `config`, `router`, `pools` and `trustedPeers`; exchanges already running keep what they took.
import type { Logger } from 'winston';
import type { ProxyCache } from '../cache/proxy-cache.ts';
import type { Config } from '../config/types.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { Clock } from './clock.ts';
import type { TrustedPeers } from './forwarding.ts';
import type { Router } from './router.ts';

export interface ProxyContext {
  config: Config;
  router: Router;
  pools: ReadonlyMap<string, BackendPool>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** One line per request, when the config has the access log on. */
  accessLog: AccessLog | undefined;
  readonly metrics: Metrics | undefined;
  trustedPeers: TrustedPeers;
  /** The shared response cache of routes with `cache: true`. */
  readonly cache: ProxyCache | undefined;
  /** This instance's Via entry (`1.1 sluice-<id>`): seeing it on a request means a loop. */
  readonly via: string;
  /** Set when shutdown began: finish the current response, then close. */
  draining: boolean;
  /** Set when the shutdown deadline passed: what is still open is cut, and says so. */
  cutting: boolean;
}
