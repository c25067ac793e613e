// `-w FORMAT`, as curl's --write-out: text with `%{variable}` (and `%header{name}`) replaced by
// facts about the transfer, written to stdout after it. `\n`, `\t`, `\r`, `\\` and `%%` are
// escapes. An unknown variable is a usage error (exit 2) rather than a silent blank.
import { ClientError, exitCodes } from './errors.ts';

/** What a finished transfer tells -w. Times are seconds from the start of the command. */
export interface WriteOutValues {
  httpCode: number;
  sizeDownload: number;
  sizeUpload: number;
  sizeHeader: number;
  timeConnect: number;
  timeStartTransfer: number;
  timeTotal: number;
  remoteIp: string;
  remotePort: number;
  contentType: string;
  urlEffective: string;
  numRedirects: number;
  method: string;
  exitCode: number;
  /** A response header's value ('' when absent). */
  header(name: string): string;
}

type Piece = string | ((values: WriteOutValues) => string);

const seconds = (s: number) => s.toFixed(6);

const VARIABLES: Record<string, (v: WriteOutValues) => string> = {
  http_code: (v) => String(v.httpCode).padStart(3, '0'),
  response_code: (v) => String(v.httpCode).padStart(3, '0'),
  size_download: (v) => String(v.sizeDownload),
  size_upload: (v) => String(v.sizeUpload),
  size_header: (v) => String(v.sizeHeader),
  time_connect: (v) => seconds(v.timeConnect),
  time_starttransfer: (v) => seconds(v.timeStartTransfer),
  time_total: (v) => seconds(v.timeTotal),
  remote_ip: (v) => v.remoteIp,
  remote_port: (v) => String(v.remotePort),
  content_type: (v) => v.contentType,
  url_effective: (v) => v.urlEffective,
  num_redirects: (v) => String(v.numRedirects),
  method: (v) => v.method,
  exitcode: (v) => String(v.exitCode),
};

export const writeOutVariables: readonly string[] = Object.keys(VARIABLES);

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };

/** Parses FORMAT once, before the request, so that a typo fails fast. */
export function parseWriteOut(format: string): Piece[] {
  const pieces: Piece[] = [];
  let text = '';
  const pattern = /%\{([a-z_]+)\}|%header\{([^}]+)\}|%%|\\([ntr\\])/gy;
  for (let i = 0; i < format.length; ) {
    pattern.lastIndex = i;
    const m = pattern.exec(format);
    if (m === null) {
      text += format[i];
      i++;
      continue;
    }
    i = pattern.lastIndex;
    const [whole, variable, header, escaped] = m;
    if (whole === '%%') text += '%';
    else if (escaped !== undefined) text += ESCAPES[escaped];
    else {
      if (text !== '') pieces.push(text);
      text = '';
      if (header !== undefined) pieces.push((v) => v.header(header));
      else {
        const render = VARIABLES[variable ?? ''];
        if (render === undefined) {
          throw new ClientError(
            exitCodes.usage,
            `-w: unknown variable %{${variable}} (known: ${writeOutVariables.join(', ')}, %header{name})`,
          );
        }
        pieces.push(render);
      }
    }
  }
  if (text !== '') pieces.push(text);
  return pieces;
}

export function renderWriteOut(pieces: readonly Piece[], values: WriteOutValues): string {
  return pieces.map((piece) => (typeof piece === 'string' ? piece : piece(values))).join('');
}
