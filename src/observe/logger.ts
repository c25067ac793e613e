// JSON-lines logs on stdout: one line per event, one access line per finished request.
import winston from 'winston';
import type { LogLevel } from '../config/types.ts';

export function createLogger(level: LogLevel, silent = false): winston.Logger {
  return winston.createLogger({
    level,
    silent,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}
