import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../lib/processes';
import { startEmbeddedPostgres, type RunningPostgres } from '../../lib/embedded-postgres';
import { findTemporalCli, MISSING_CLI_MESSAGE, startTemporalDevServer, type RunningDevServer } from '../../lib/temporal-dev-server';

/**
 * The real services the tests need: a Temporal dev server and PostgreSQL, on free ports, in a
 * temporary folder. `npm test` starts them once (test/support/run.ts) and passes their addresses to
 * every test file through the environment; a test file run on its own starts its own.
 */
export interface TestServices {
  temporalAddress: string;
  postgresBaseUrl: string;
  temporal?: RunningDevServer;
  postgres?: RunningPostgres;
  dir: string;
  stop(): Promise<void>;
}

export async function startTestServices(): Promise<TestServices> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-test-'));
  fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as the postgres user
  const cli = findTemporalCli(path.resolve('.data'), process.env.TEMPORAL_CLI);
  if (!cli) throw new Error(MISSING_CLI_MESSAGE);
  const [temporalPort, pgPort] = [await freePort(), await freePort()];
  const [temporal, postgres] = await Promise.all([
    startTemporalDevServer({ cli, port: temporalPort, headless: true, namespace: 'default', logFile: path.join(dir, 'temporal.log'), dbFile: path.join(dir, 'temporal.sqlite') }),
    startEmbeddedPostgres(path.join(dir, 'pg'), pgPort),
  ]);
  return {
    temporalAddress: temporal.address,
    postgresBaseUrl: postgres.baseUrl,
    temporal,
    postgres,
    dir,
    async stop() {
      await Promise.allSettled([temporal.stop(), postgres.stop()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The shared services from the environment (set by `npm test`), or undefined. */
export function sharedServicesFromEnv(): { temporalAddress: string; postgresBaseUrl: string } | undefined {
  const temporalAddress = process.env.RINGMASTER_TEST_TEMPORAL_ADDRESS;
  const postgresBaseUrl = process.env.RINGMASTER_TEST_POSTGRES_URL;
  return temporalAddress && postgresBaseUrl ? { temporalAddress, postgresBaseUrl } : undefined;
}
