import path from 'node:path';
import { MAX_NICE, MIN_NICE } from './process-priority';

/** PostgreSQL connections per process unless RINGMASTER_DB_POOL_MAX says otherwise (bench/dag: 10 left planned derivations queueing for a connection). */
export const DEFAULT_DB_POOL_MAX = 20;

/**
 * Workflow runs a worker caches unless RINGMASTER_MAX_CACHED_WORKFLOWS says otherwise: above the ~400 runs open
 * at the default RINGMASTER_MAX_OPEN_BUILDS (a BuildWorkflow and its DerivationWorkflow each), so none is
 * evicted there, and at ~0.15–0.35 MB a run at most ~100–175 MB above an idle worker however many are open.
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 500;

/**
 * The evaluator's nice value unless RINGMASTER_EVALUATOR_NICE says otherwise. On 2 cores, a warm 2,000-job
 * evaluation waited 0.23–0.34 s of its 1.1–1.5 s for a core at 0; at -10 it waited 0.03–0.10 s.
 */
export const DEFAULT_EVALUATOR_NICE = -10;

/** Every environment variable Ringmaster reads, in one place (the README's configuration table). */
export interface RingmasterConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  temporalAddress: string | undefined;
  temporalNamespace: string;
  taskQueue: string;
  temporalCli: string | undefined;
  temporalUiPort: number;
  /** Base URL of the Temporal web UI the dashboard links workflows to (default: the embedded dev server's UI). */
  temporalUiUrl: string;
  temporalPort: number;
  configFile: string;
  requireAuthForReads: boolean;
  /**
   * How long an API process remembers whom an API key or a session stands for (api/credential-cache.ts): the longest a
   * revocation, role change or sign-out made through another process takes to reach this one; 0: looked up every time.
   */
  authCacheMs: number;
  publicUrl: string | undefined;
  logLevel: string;
  /**
   * Build workflows the start activity keeps open at once (started and not finished); the rest wait,
   * `pending`, for room. 0: no bound.
   */
  maxOpenBuilds: number;
  /**
   * Build workflow starts pause while this many workflow tasks wait on the task queue (the server's
   * backlog), so that a task that does work never waits behind thousands: builds whose result was
   * recorded before their workflow started are not counted by `maxOpenBuilds`. 0: no gate.
   */
  maxWorkflowTaskBacklog: number;
  /**
   * The nice value of the evaluator's Nix process (its session's autogroup): an evaluation's critical
   * path, ahead of the worker's own bookkeeping and PostgreSQL on the same cores. Below 0 needs root or
   * CAP_SYS_NICE (without it the evaluator runs as the worker does, with one warning). 0: as the worker.
   */
  evaluatorNice: number;
  /**
   * Workflow tasks one worker runs at once. A task holds its slot while its local activities (database,
   * signals) run, so few slots left planned derivations waiting in line with the CPU idle.
   */
  workflowTaskSlots: number;
  /**
   * Workflow runs the main worker keeps in its sticky cache (their state in its workflow thread's V8 heap); an
   * evicted run replays its history on its next workflow task.
   */
  maxCachedWorkflows: number;
  /** A worker process runs V8 with `--optimize-for-size` (worker/v8-heap.ts): heaps grow less between full GCs. */
  workerOptimizeForSize: boolean;
  /**
   * How long a worker process's lease lasts after its last renewal (every 2 s): once it has lapsed, the
   * long-heartbeat activities that process ran are failed by the other workers, wherever they run
   * (worker/ended-workers.ts). At least 8 s (the 6 s an SSH builder's batch may outlive its worker, plus a renewal).
   */
  workerLeaseSeconds: number;
  /** Connections in each process's PostgreSQL pool (the worker's activities and the API share one per process). */
  dbPoolMax: number;
  /** Slots of the worker's own Nix when no remote builder is configured (default: CPU count). */
  localMaxJobs: number | undefined;
  /** A build log larger than this ends the build as log_limit_exceeded. */
  logLimitBytes: number;
  /** Longest a closure copy to or from a builder may take before the step is retried elsewhere. */
  transferTimeoutSeconds: number;
  /** The binary cache's Nix secret key file; unset: generated into `<dataDir>/binary-cache/secret-key`. */
  cacheKeyFile: string | undefined;
  /** Where Ringmaster keeps its GC roots: a folder inside the store's `gcroots` dir. */
  gcRootsDir: string;
  /** host:port where the worker's Temporal SDK serves its Prometheus metrics (worker/telemetry.ts); unset: off. */
  workerMetricsAddress: string | undefined;
  /** The server key that encrypts stored secrets (lib/secret-box.ts); unset: `<dataDir>/secret.key`. */
  secretKeyFile: string | undefined;
}

/** A worker's lease lasts this long after its last renewal unless RINGMASTER_WORKER_LEASE_SECONDS says otherwise. */
export const DEFAULT_WORKER_LEASE_SECONDS = 15;
/** The shortest lease: longer than an SSH builder's batch may outlive its worker (6 s) plus one renewal (2 s). */
export const MIN_WORKER_LEASE_SECONDS = 8;

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

function leaseSecondsFromEnv(env: NodeJS.ProcessEnv): number {
  const n = intFromEnv(env, 'RINGMASTER_WORKER_LEASE_SECONDS', DEFAULT_WORKER_LEASE_SECONDS);
  if (n < MIN_WORKER_LEASE_SECONDS) throw new Error(`RINGMASTER_WORKER_LEASE_SECONDS must be at least ${MIN_WORKER_LEASE_SECONDS}, got ${n}`);
  return n;
}

function niceFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\s*[-+]?\d+\s*$/.test(raw) || n < MIN_NICE || n > MAX_NICE) throw new Error(`${name} must be an integer from ${MIN_NICE} to ${MAX_NICE}, got ${JSON.stringify(raw)}`);
  return n;
}

function boolFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  return ['1', 'true', 'yes', 'on'].includes(raw.toLowerCase());
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RingmasterConfig {
  const dataDir = path.resolve(env.RINGMASTER_DATA_DIR || '.data');
  return {
    port: intFromEnv(env, 'PORT', 3000),
    host: env.HOST || '0.0.0.0',
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.RINGMASTER_TASK_QUEUE || 'ringmaster',
    temporalCli: env.TEMPORAL_CLI || undefined,
    temporalUiPort: intFromEnv(env, 'TEMPORAL_UI_PORT', 8233),
    temporalUiUrl: (env.TEMPORAL_UI_URL || `http://127.0.0.1:${intFromEnv(env, 'TEMPORAL_UI_PORT', 8233)}`).replace(/\/+$/, ''),
    temporalPort: intFromEnv(env, 'TEMPORAL_PORT', 7233),
    configFile: path.resolve(env.RINGMASTER_CONFIG_FILE || path.join(dataDir, 'ringmaster.json')),
    requireAuthForReads: boolFromEnv(env, 'RINGMASTER_REQUIRE_AUTH_FOR_READS', false),
    authCacheMs: intFromEnv(env, 'RINGMASTER_AUTH_CACHE_MS', 2000),
    publicUrl: env.RINGMASTER_PUBLIC_URL || undefined,
    logLevel: env.LOG_LEVEL || 'info',
    maxOpenBuilds: intFromEnv(env, 'RINGMASTER_MAX_OPEN_BUILDS', 200),
    maxWorkflowTaskBacklog: intFromEnv(env, 'RINGMASTER_MAX_WORKFLOW_TASK_BACKLOG', 200),
    evaluatorNice: niceFromEnv(env, 'RINGMASTER_EVALUATOR_NICE', DEFAULT_EVALUATOR_NICE),
    workflowTaskSlots: Math.max(1, intFromEnv(env, 'RINGMASTER_WORKFLOW_TASK_SLOTS', 40)),
    maxCachedWorkflows: intFromEnv(env, 'RINGMASTER_MAX_CACHED_WORKFLOWS', DEFAULT_MAX_CACHED_WORKFLOWS),
    workerOptimizeForSize: boolFromEnv(env, 'RINGMASTER_WORKER_OPTIMIZE_FOR_SIZE', true),
    workerLeaseSeconds: leaseSecondsFromEnv(env),
    dbPoolMax: Math.max(2, intFromEnv(env, 'RINGMASTER_DB_POOL_MAX', DEFAULT_DB_POOL_MAX)),
    localMaxJobs: env.RINGMASTER_LOCAL_MAX_JOBS ? Number(env.RINGMASTER_LOCAL_MAX_JOBS) : undefined,
    logLimitBytes: Number(env.RINGMASTER_LOG_LIMIT_BYTES || 64 * 1024 * 1024),
    transferTimeoutSeconds: intFromEnv(env, 'RINGMASTER_TRANSFER_TIMEOUT_SECONDS', 1800),
    cacheKeyFile: env.RINGMASTER_CACHE_KEY_FILE ? path.resolve(env.RINGMASTER_CACHE_KEY_FILE) : undefined,
    gcRootsDir: path.resolve(env.RINGMASTER_GC_ROOTS_DIR || '/nix/var/nix/gcroots/ringmaster'),
    workerMetricsAddress: env.RINGMASTER_WORKER_METRICS_ADDRESS || undefined,
    secretKeyFile: env.RINGMASTER_SECRET_KEY_FILE ? path.resolve(env.RINGMASTER_SECRET_KEY_FILE) : undefined,
  };
}
