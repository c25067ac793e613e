// The plain lane for request heads: the field lines Sluice sends a backend, copied from the
// client's own lines where forwardedFields (heads.ts) would keep them as they came. That is a
// request whose lines are each written `Name: value`, with Host first and equal to the effective
// authority, no field Sluice writes itself (X-Forwarded-*, Forwarded, X-Real-IP and the other
// identity fields, Via, X-Request-Id), no Upgrade, and a route without header rules; hop-by-hop
// lines and `_` names are left out whole. Anything else gets undefined, and heads.ts makes the
// lines from the fields. Both give the same bytes (test/unit/proxy/plain-request.test.ts).
import { isHopByHop } from '../http/hop-by-hop.ts';
import type { HeaderField } from '../http/message.ts';
import { canonicalName, isIdentityField, ownFieldLines } from './forwarding.ts';
import { changesHeaders } from './header-rules.ts';
import type { UpstreamRequest } from './upstream-request.ts';

const SP = 0x20;
const CR = 0x0d;

/** The field lines for the backend, X-Request-Id last, each with its CRLF; or undefined. */
export function plainForwardedLines(request: UpstreamRequest): string | undefined {
  const { head, forwarding, authority } = request;
  const received = head.received;
  if (received === undefined || received.fields !== head.headers) return undefined;
  if (request.upgrade !== undefined || changesHeaders(request.route.headers)) return undefined;
  const { text } = received;
  const tokens = request.connectionTokens;
  const fields = head.headers;
  const last = fields.length - 1;
  let lines = '';
  // The lines from `run` to `at` are kept; `at` is where field k's line starts.
  let run = received.from;
  let at = run;
  for (let k = 0; k <= last; k++) {
    const { name, lower, value } = fields[k] as HeaderField;
    if (k === 0 && authority !== undefined && lower !== 'host') return undefined;
    // `Name: value` exactly: one SP after the colon and the CRLF right after the value (the last
    // line's CRLF is past the end of `text`).
    const crlf = at + name.length + 2 + value.length;
    if (text.charCodeAt(at + name.length + 1) !== SP) return undefined;
    if (k === last ? crlf !== text.length : text.charCodeAt(crlf) !== CR) return undefined;
    if (lower === 'host') {
      // forwardedFields sends the authority as Host, first: kept as is only if it already is.
      if (k !== 0 || value !== authority || isHopByHop(lower, tokens)) return undefined;
    } else if (isHopByHop(lower, tokens) || (lower.includes('_') && !forwarding.underscores)) {
      lines += text.slice(run, at);
      run = crlf + 2;
    } else if (isIdentityField(canonicalName(lower))) return undefined;
    at = crlf + 2;
  }
  if (run < at) lines += `${text.slice(run)}\r\n`;
  return `${lines}${ownFieldLines(forwarding)}X-Request-Id: ${forwarding.requestId}\r\n`;
}
