import { Runtime, type Logger as TemporalLogger, type LogLevel, type LogMetadata } from '@temporalio/worker';
import type { Logger } from '../lib/logger';
import { telemetryOptions } from './telemetry';

const TEMPORAL_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/** Messages that Ringmaster's own activity and workflow code logs through the SDK's context loggers. */
const APPLICATION_COMPONENTS = new Set(['activity', 'workflow']);

/**
 * The Temporal SDK's logger interface on top of a pino logger. The SDK's own messages (worker, core)
 * below `minimum` are dropped: it reports routine state changes at INFO, which an operator does not
 * need next to Ringmaster's lines unless LOG_LEVEL asks for debug. Messages from activity and
 * workflow code keep pino's level.
 */
export class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly logger: Logger, private readonly minimum: LogLevel = 'WARN') {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const fields = meta ?? {};
    const fromApplication = APPLICATION_COMPONENTS.has(String(fields.sdkComponent));
    if (!fromApplication && TEMPORAL_LEVELS.indexOf(level) < TEMPORAL_LEVELS.indexOf(this.minimum)) return;
    switch (level) {
      case 'TRACE': this.logger.trace(fields, message); break;
      case 'DEBUG': this.logger.debug(fields, message); break;
      case 'INFO': this.logger.info(fields, message); break;
      case 'WARN': this.logger.warn(fields, message); break;
      default: this.logger.error(fields, message);
    }
  }
  trace(message: string, meta?: LogMetadata): void { this.log('TRACE', message, meta); }
  debug(message: string, meta?: LogMetadata): void { this.log('DEBUG', message, meta); }
  info(message: string, meta?: LogMetadata): void { this.log('INFO', message, meta); }
  warn(message: string, meta?: LogMetadata): void { this.log('WARN', message, meta); }
  error(message: string, meta?: LogMetadata): void { this.log('ERROR', message, meta); }
}

/** The least severe Temporal level that reaches the log: WARN, or what pino's level lets through when it is debug or trace. */
export function temporalLevelFor(logger: Logger): LogLevel {
  const override = process.env.RINGMASTER_WORKER_LOG_LEVEL?.toUpperCase();
  if (override && (TEMPORAL_LEVELS as readonly string[]).includes(override)) return override as LogLevel;
  if (logger.level === 'trace') return 'TRACE';
  if (logger.level === 'debug') return 'DEBUG';
  if (logger.level === 'error' || logger.level === 'fatal' || logger.level === 'silent') return 'ERROR';
  return 'WARN';
}

export interface RuntimeSettings {
  /** Ringmaster's logger; the SDK's messages and Core's native ones go through it as component "temporal". */
  logger: Logger;
  /** host:port for the SDK's own Prometheus metrics (worker/telemetry.ts); unset: off. */
  workerMetricsAddress?: string;
}

let installed = false;

/**
 * Installs the Temporal Runtime once per process: the one place its options are set (the logger here;
 * telemetry and metrics belong beside it). A second call, or a Runtime already created by the SDK, is
 * left as it is.
 */
export function installRuntime(settings: RuntimeSettings): void {
  if (installed) return;
  installed = true;
  const logger = settings.logger.child({ component: 'temporal' });
  const minimum = temporalLevelFor(settings.logger);
  const metrics = telemetryOptions({ workerMetricsAddress: settings.workerMetricsAddress })?.metrics;
  try {
    Runtime.install({
      logger: new PinoTemporalLogger(logger, minimum),
      // Ringmaster's processes stop their workers themselves, in order, on SIGINT and SIGTERM; the
      // SDK's own handlers would start a second shutdown of the same worker.
      shutdownSignals: [],
      telemetryOptions: {
        // Core's native (Rust) messages are forwarded to the same logger instead of raw stderr.
        logging: { filter: { core: minimum, other: 'ERROR' }, forward: {} },
        ...(metrics ? { metrics } : {}),
      },
    });
  } catch {
    /* a Runtime exists already (installed before this call): keep it */
  }
}
