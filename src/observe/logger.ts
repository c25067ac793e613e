// The process's own lines on stdout, one per event (start, stop, backend state changes, errors):
// JSON lines with `type: "event"` for collectors; on a terminal (or with logFormat: text)
// `time level message key=value ...`. The access lines are written apart, by access-log.ts.
import winston from 'winston';
import type { LogFormat, LogLevel } from '../config/types.ts';

export function createLogger(
  level: LogLevel,
  silent = false,
  format: LogFormat = process.stdout.isTTY ? 'text' : 'json',
): winston.Logger {
  return winston.createLogger({
    level,
    silent,
    defaultMeta: { type: 'event' },
    format: winston.format.combine(
      winston.format.timestamp(),
      format === 'text' ? winston.format.printf(textLine) : winston.format.json(),
    ),
    transports: [new winston.transports.Console()],
  });
}

/** `2026-11-28T08:31:25.123Z info  sluice started listen=0.0.0.0:8080 pools=[...]`. */
export function textLine(info: winston.Logform.TransformableInfo): string {
  const { timestamp, level, message, type: _type, ...fields } = info;
  const pairs = Object.entries(fields).map(([key, value]) => `${key}=${textValue(value)}`);
  return [String(timestamp), level.padEnd(5), String(message), ...pairs].join(' ');
}

/** Bare when it has no space, quote or `=`; JSON otherwise (strings quoted, objects inline). */
function textValue(value: unknown): string {
  if (typeof value === 'string' && value !== '' && !/[\s"=]/.test(value)) return value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value) ?? String(value);
}
