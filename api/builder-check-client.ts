import type { Db } from '../lib/db';
import type { TemporalDeps } from './temporal';
import { recordBuilderCheckFailure } from './queries/builders';

/** Longest the API waits for a builder check (a trivial build over SSH) before it reports it as failed. */
const CHECK_TIMEOUT = '4 minutes';

/**
 * Runs BuilderCheckWorkflow for the builder and waits for it: the worker builds a trivial derivation
 * on the builder and records the outcome on its row. A check that cannot run at all (no Temporal, no
 * worker in time) is recorded as failed with the reason.
 */
export async function runBuilderCheck(db: Db, temporal: TemporalDeps | undefined, builderId: string): Promise<void> {
  if (!temporal) {
    await recordBuilderCheckFailure(db, builderId, 'the check could not run: Temporal is not configured');
    return;
  }
  try {
    await temporal.workflows.checkBuilder(builderId, CHECK_TIMEOUT);
  } catch (err) {
    await recordBuilderCheckFailure(db, builderId, `the check could not run: ${(err as Error).message}`);
  }
}
