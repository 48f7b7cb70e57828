// The cost of the hourly rollup's triggers on builds (migrations/20261130170000_build_hourly_rollup.ts) on the
// evaluation path: inserts 10,000 builds in batches of 1000 (as insertEvaluatedBuilds writes them) and then
// finishes them in batches of 1000, each in a transaction that is rolled back, with the rollup's statement
// triggers, without them, with the hourly ones only (without those that keep the whole server's 6-hour and daily
// counts and durations, migrations/20261201100000_build_period_rollup.ts), and with equivalent row-level triggers instead;
// rounds alternate, the median is printed.
// No issue sets a goal for it: the triggers' cost is read against the inserts without them.
// Run: BENCH_DIR=/tmp/apibench node --import tsx bench/rollup-inserts.ts   (a database seeded by bench/api.ts)
import crypto from 'node:crypto';
import path from 'node:path';
import { createDb, migrateLatest } from '../lib/db';
import { ensureDatabase, startEmbeddedPostgres } from '../lib/embedded-postgres';
import { freePort } from '../lib/processes';
import { runBench } from './support';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BUILDS = 10_000;
const BATCH = 1000;

const ROW_LEVEL = `
  CREATE FUNCTION pg_temp.rollup_row() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    gamma float8 := 1.02::float8 / 0.98::float8;
  BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
      UPDATE build_hourly_counts SET builds = builds - 1
      WHERE hour = date_bin('1 hour'::interval, OLD.created_at, '2000-01-01T00:00:00Z'::timestamptz)
        AND project_id = OLD.project_id AND jobset_id = OLD.jobset_id AND system = OLD.system AND status = OLD.status;
      IF OLD.started_at IS NOT NULL AND OLD.completed_at IS NOT NULL THEN
        UPDATE build_hourly_durations SET builds = builds - 1
        WHERE hour = date_bin('1 hour'::interval, OLD.completed_at, '2000-01-01T00:00:00Z'::timestamptz) AND project_id = OLD.project_id
          AND jobset_id = OLD.jobset_id
          AND bin = CASE WHEN OLD.completed_at <= OLD.started_at THEN -1000000 ELSE ceil(ln(extract(epoch FROM OLD.completed_at - OLD.started_at)::float8) / ln(gamma))::int END;
      END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
      INSERT INTO build_hourly_counts AS t VALUES (date_bin('1 hour'::interval, NEW.created_at, '2000-01-01T00:00:00Z'::timestamptz), NEW.project_id, NEW.jobset_id, NEW.system, NEW.status, 1)
      ON CONFLICT (hour, project_id, jobset_id, system, status) DO UPDATE SET builds = t.builds + 1;
      IF NEW.started_at IS NOT NULL AND NEW.completed_at IS NOT NULL THEN
        INSERT INTO build_hourly_durations AS t VALUES (date_bin('1 hour'::interval, NEW.completed_at, '2000-01-01T00:00:00Z'::timestamptz), NEW.project_id, NEW.jobset_id,
          CASE WHEN NEW.completed_at <= NEW.started_at THEN -1000000 ELSE ceil(ln(extract(epoch FROM NEW.completed_at - NEW.started_at)::float8) / ln(gamma))::int END, 1)
        ON CONFLICT (hour, project_id, jobset_id, bin) DO UPDATE SET builds = t.builds + 1;
      END IF;
    END IF;
    RETURN NULL;
  END $$`;

type Variant = 'no rollup triggers' | 'hourly statement triggers only' | 'statement triggers (this branch)' | 'row-level triggers';

async function main(): Promise<void> {
  const dir = process.env.BENCH_DIR;
  if (!dir) throw new Error('BENCH_DIR: a database seeded by bench/api.ts');
  const pgServer = await startEmbeddedPostgres(path.join(dir, 'postgres'), await freePort());
  const db = createDb(await ensureDatabase(pgServer.baseUrl, 'bench'));
  try {
    await migrateLatest(db);
    const evaluation = await db('evaluations').first('id', 'jobset_id');
    const jobset = await db('jobsets').where({ id: evaluation.jobset_id }).first('project_id');
    const times: Record<Variant, { insert: number[]; finish: number[] }> = {
      'no rollup triggers': { insert: [], finish: [] },
      'hourly statement triggers only': { insert: [], finish: [] },
      'statement triggers (this branch)': { insert: [], finish: [] },
      'row-level triggers': { insert: [], finish: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of Object.keys(times) as Variant[]) {
        await db
          .transaction(async (trx) => {
            if (variant === 'no rollup triggers' || variant === 'row-level triggers') {
              for (const t of ['insert', 'update', 'delete']) await trx.raw(`ALTER TABLE builds DISABLE TRIGGER builds_rollup_${t}`);
            }
            if (variant === 'hourly statement triggers only') {
              for (const t of ['insert', 'update', 'delete']) {
                await trx.raw(`ALTER TABLE build_hourly_durations DISABLE TRIGGER build_period_durations_${t}`);
                await trx.raw(`ALTER TABLE build_hourly_counts DISABLE TRIGGER build_period_counts_${t}`);
              }
            }
            if (variant === 'row-level triggers') {
              await trx.raw(ROW_LEVEL);
              await trx.raw('CREATE TRIGGER rollup_row AFTER INSERT OR UPDATE OR DELETE ON builds FOR EACH ROW EXECUTE FUNCTION pg_temp.rollup_row()');
            }
            const ids: string[] = [];
            let started = process.hrtime.bigint();
            for (let b = 0; b < BUILDS; b += BATCH) {
              const rows = Array.from({ length: BATCH }, (_, i) => ({
                evaluation_id: evaluation.id,
                jobset_id: evaluation.jobset_id,
                project_id: jobset.project_id,
                job_name: `rollup-bench-${round}-${b + i}`,
                drv_path: `/nix/store/${crypto.randomBytes(16).toString('hex')}-x.drv`,
                system: i % 2 ? 'x86_64-linux' : 'aarch64-linux',
              }));
              ids.push(...(await trx('builds').insert(rows).returning('id')).map((r: { id: string }) => r.id));
            }
            times[variant].insert.push(Number(process.hrtime.bigint() - started) / 1e6);
            started = process.hrtime.bigint();
            for (let b = 0; b < BUILDS; b += BATCH) {
              await trx('builds')
                .whereIn('id', ids.slice(b, b + BATCH))
                .update({ status: 'succeeded', started_at: trx.raw(`now() - make_interval(secs => random() * 600)`), completed_at: trx.fn.now() });
            }
            times[variant].finish.push(Number(process.hrtime.bigint() - started) / 1e6);
            throw new Error('rollback');
          })
          .catch((err: Error) => {
            if (err.message !== 'rollback') throw err;
          });
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const base = times['no rollup triggers'];
    console.log(`${BUILDS} builds in batches of ${BATCH}, median of ${ROUNDS} rounds (each rolled back)\n`);
    console.log(`${'variant'.padEnd(36)} ${'insert ms'.padStart(10)} ${'×base'.padStart(6)} ${'finish ms'.padStart(10)} ${'×base'.padStart(6)}`);
    for (const [variant, t] of Object.entries(times)) {
      const ins = median(t.insert);
      const fin = median(t.finish);
      console.log(`${variant.padEnd(36)} ${ins.toFixed(0).padStart(10)} ${(ins / median(base.insert)).toFixed(2).padStart(6)} ${fin.toFixed(0).padStart(10)} ${(fin / median(base.finish)).toFixed(2).padStart(6)}`);
    }
  } finally {
    await db.destroy();
    await pgServer.stop();
  }
}

runBench(main);
