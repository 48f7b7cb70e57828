import type { Knex } from 'knex';
import type { Db } from '../../lib/db';
import { eventually } from './pipeline';

/**
 * Holds a page's answer back while it is being made: `hold(table)` locks a table the page reads (in a transaction
 * left open until `release()`), so each answer being made is one statement waiting on that lock, which
 * `waitingStatements` counts (in this database).
 */
export function heldReads(db: Db) {
  let lock: Knex.Transaction | undefined;
  const waitingStatements = async (): Promise<number> => {
    const r = await db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
    return r.rows[0].n as number;
  };
  return {
    waitingStatements,
    untilWaiting: (n: number) => eventually(`${n} answers waiting on the lock`, async () => ((await waitingStatements()) === n ? true : undefined), 20_000, 20),
    async hold(table: string): Promise<void> {
      lock = await db.transaction();
      await lock.raw('LOCK TABLE ?? IN ACCESS EXCLUSIVE MODE', [table]);
    },
    async release(): Promise<void> {
      await lock?.rollback();
      lock = undefined;
    },
  };
}
