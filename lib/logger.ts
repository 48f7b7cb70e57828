import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

/**
 * Field paths that pino replaces with "[redacted]" wherever a caller passes them by mistake. Secrets
 * are not passed to the logger in the first place; this is the second line of defence.
 */
export const REDACTED_PATHS: readonly string[] = [
  'password', 'new_password', 'current_password', 'secret', 'webhook_secret', 'token', 'access_token',
  'api_key', 'key', 'ssh_key', 'ssh_private_key', 'private_key', 'passphrase', 'authorization', 'cookie',
].flatMap((field) => [field, `*.${field}`, `*.*.${field}`])
  .concat(['headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie']);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** LOG_LEVEL as pino knows it; an unknown value falls back to info (with a warning from createLogger). */
export function logLevelFrom(raw: string | undefined): string {
  const level = (raw ?? '').trim().toLowerCase();
  if (level === '') return 'info';
  if (level === 'warning') return 'warn';
  return (LOG_LEVELS as readonly string[]).includes(level) ? level : 'info';
}

export interface LoggerSettings {
  /** LOG_LEVEL (default info). */
  level?: string;
  /** Where lines go (default stdout). A test passes a stream of its own to read them. */
  destination?: DestinationStream;
  /** Readable lines instead of JSON (default: when stdout is a terminal and no destination is given). */
  pretty?: boolean;
}

/**
 * One structured logger for the whole process: JSON lines when stdout is not a terminal (journald,
 * docker, a file), readable coloured lines when it is; LOG_LEVEL honoured; secret fields redacted.
 */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const requested = settings.level ?? process.env.LOG_LEVEL;
  const options: LoggerOptions = {
    level: logLevelFrom(requested),
    base: { pid: process.pid },
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const pretty = settings.pretty ?? (settings.destination === undefined && process.stdout.isTTY === true);
  const destination = settings.destination
    ?? (pretty
      ? pinoPretty({ colorize: true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,component', messageFormat: '{if component}[{component}] {end}{msg}' })
      : pino.destination({ fd: 1, sync: true }));
  const logger = pino(options, destination);
  if (requested && logLevelFrom(requested) !== requested.trim().toLowerCase() && requested.trim().toLowerCase() !== 'warning') {
    logger.warn({ component: 'ringmaster', LOG_LEVEL: requested }, `LOG_LEVEL ${JSON.stringify(requested)} is not one of ${LOG_LEVELS.join(', ')}; using info`);
  }
  return logger;
}

let processLogger: Logger | undefined;

/** The process's logger, made on first use from LOG_LEVEL and stdout. */
export function rootLogger(): Logger {
  processLogger ??= createLogger();
  return processLogger;
}

/** The logger of one part of the stack (`postgres`, `temporal`, `worker`, `evaluation`, `build`, `builder`, …). */
export function componentLogger(component: string, parent: Logger = rootLogger()): Logger {
  return parent.child({ component });
}
