import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

/**
 * Fields whose values are replaced with "[redacted]" wherever a caller passes them by mistake, at the top
 * level of a line or up to two objects deep (`field`, `*.field`, `*.*.field`: `headers.authorization` and
 * `req.headers.authorization` among them). Secrets are not passed to the logger in the first place; this
 * is the second line of defence.
 */
export const SECRET_FIELDS: ReadonlySet<string> = new Set([
  'password', 'new_password', 'current_password', 'secret', 'webhook_secret', 'token', 'access_token',
  'api_key', 'key', 'ssh_key', 'ssh_private_key', 'private_key', 'passphrase', 'authorization', 'cookie',
]);
const CENSOR = '[redacted]';

/**
 * `value` with every secret field (SECRET_FIELDS) at most `depth` objects below it replaced by "[redacted]":
 * a copy along the way to each one found, and `value` itself when it holds none (the usual case). The
 * caller's objects are never changed. pino's own `redact` did this with 45 paths, 30 of them wildcards,
 * which cost about 140 µs per line against about 13 µs for the line itself (2,000 lines of a finished
 * build's fields); this walk costs a key lookup per field. (A child logger's bindings are redacted by pino
 * at the top level only.)
 */
export function redactSecrets<T>(value: T, depth = 2): T {
  if (value === null || typeof value !== 'object') return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    let replaced: unknown = field;
    if (SECRET_FIELDS.has(key)) replaced = CENSOR;
    else if (depth > 0 && field !== null && typeof field === 'object' && !(field instanceof Date) && !Buffer.isBuffer(field)) replaced = redactSecrets(field, depth - 1);
    if (replaced !== field) {
      copy ??= (Array.isArray(value) ? [...value] : { ...value }) as Record<string, unknown>;
      copy[key] = replaced;
    }
  }
  return (copy ?? value) as T;
}

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
    // A line's fields go through redactSecrets; pino's own redaction, with top-level paths only (about as
    // cheap as none), keeps a child logger's bindings clean too (pino formats those once, without `log`).
    redact: { paths: [...SECRET_FIELDS], censor: CENSOR },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: (object) => redactSecrets(object) },
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
