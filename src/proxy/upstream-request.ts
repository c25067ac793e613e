// What admission decided goes to a backend: heads.ts makes its head, the cache keys on it.
import type { RouteConfig } from '../config/types.ts';
import type { BodyFraming, RequestHead } from '../http/message.ts';
import type { ForwardingContext } from './forwarding.ts';

export interface UpstreamRequest {
  head: RequestHead;
  connectionTokens: readonly string[];
  framing: BodyFraming;
  route: RouteConfig;
  /** Origin-form target after normalization and prefix stripping. */
  path: string;
  /**
   * The effective authority: of an absolute-form target (RFC 9112 3.2.2), else Host, else the
   * address the client connected to. Always sent as Host, whatever the client's fields said.
   */
  authority: string | undefined;
  /** The Upgrade value when the client asks to switch protocols. */
  upgrade: string | undefined;
  forwarding: ForwardingContext;
}
