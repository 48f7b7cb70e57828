// The read API at a million builds: seeds 100 projects × 10 evaluations × 1,000 builds (with one output each)
// by COPY into the real schema of a fresh embedded PostgreSQL, starts the real API on a free port, and measures
// p50/p99 latency and requests/s at 50 connections (autocannon) per route, each beside a floor route (one
// trivial query) measured in the same run. The API runs in a process of its own, as `npm run api` does.
// Each route's 50 connections ask for one URL, so its concurrent anonymous GETs share flights (api/single-flight.ts);
// the rows "with an API key" send a read-only key: each request looks its key up (and may mark it used), then joins the
// flight of its visibility class (api/flight-key.ts), which anonymous readers share.
// Goal (issue 10): p99 ≤ 25 ms per route at 50 connections on the 1M-build database.
// Run: node --import tsx bench/api.ts            (BENCH_SECONDS=10 per route, BENCH_CONNECTIONS=50, BENCH_PROJECTS=100,
//                                                  BENCH_API_PROCESSES=1 API processes sharing the port,
//                                                  BENCH_ONLY=duration,search: only the routes whose label holds one of these; the floor always)
// BENCH_DIR=/some/dir keeps the seeded database there and reuses it on the next run (seeding is skipped).
import { fork, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { loadConfig } from '../lib/config';
import { createDb, migrateLatest, type Db } from '../lib/db';
import { ensureDatabase, startEmbeddedPostgres } from '../lib/embedded-postgres';
import { freePort } from '../lib/processes';
import { startApi } from '../api/server';
import { createApiKey } from '../api/queries/api-keys';
import { runBench } from './support';
import { seededRandom } from '../test/support/seeded-random';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const PROJECTS = Number(process.env.BENCH_PROJECTS ?? 100);
const EVALUATIONS_PER_PROJECT = 10;
const BUILDS_PER_EVALUATION = 1000;
const SPAN_DAYS = 60;
/** The project whose builds the per-project routes and the store-path search ask for. */
const SAMPLE_PROJECT = Math.min(7, PROJECTS - 1);

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';
function storeHash(seed: string): string {
  const bytes = crypto.createHash('sha256').update(seed).digest();
  let out = '';
  for (let i = 0; i < 32; i++) out += NIX_BASE32[bytes[i] & 31];
  return out;
}

/** A UUID (version 4 layout) derived from a name, so a second pass finds the same IDs. */
function uuidFrom(name: string): string {
  const h = crypto.createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}


const STATUSES: Array<[string, number]> = [
  ['succeeded', 0.8], ['failed', 0.08], ['dependency_failed', 0.04], ['cancelled', 0.02], ['timeout', 0.01], ['pending', 0.03], ['running', 0.02],
];
const SYSTEMS: Array<[string, number]> = [['x86_64-linux', 0.7], ['aarch64-linux', 0.2], ['x86_64-darwin', 0.1]];
function pick(table: Array<[string, number]>, r: number): string {
  let acc = 0;
  for (const [value, share] of table) {
    acc += share;
    if (r < acc) return value;
  }
  return table[table.length - 1][0];
}

const field = (v: string | null) => (v === null ? '\\N' : v);

async function copyRows(client: pg.Client, table: string, columns: string[], rows: Iterable<string>): Promise<void> {
  async function* chunks() {
    let chunk = '';
    for (const line of rows) {
      chunk += line;
      if (chunk.length > 1 << 16) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }
  await pipeline(Readable.from(chunks()), client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN`)));
}

interface Seeded {
  projectIds: string[];
  failedCount: number;
  sampleOutputHash: string;
}

async function seed(databaseUrl: string): Promise<Seeded> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const rand = seededRandom(42);
    const now = Date.now();
    const spanMs = SPAN_DAYS * 86400_000;
    const projects = Array.from({ length: PROJECTS }, (_, p) => ({ id: crypto.randomUUID(), jobset: crypto.randomUUID(), name: `project-${p}` }));
    const iso = (ms: number) => new Date(ms).toISOString();
    await copyRows(client, 'projects', ['id', 'name', 'repository_url', 'created_at', 'updated_at'], projects.map((p) => `${p.id}\t${p.name}\thttps://example.org/${p.name}.git\t${iso(now - spanMs)}\t${iso(now - spanMs)}\n`));
    await copyRows(client, 'jobsets', ['id', 'project_id', 'name', 'nix_expression', 'created_at', 'updated_at'], projects.map((p) => `${p.jobset}\t${p.id}\tmain\trelease.nix\t${iso(now - spanMs)}\t${iso(now - spanMs)}\n`));
    const evaluations: Array<{ id: string; project: (typeof projects)[number]; at: number }> = [];
    for (let e = 0; e < EVALUATIONS_PER_PROJECT; e++) {
      projects.forEach((project, p) => {
        const at = now - spanMs + ((e * PROJECTS + p) / (PROJECTS * EVALUATIONS_PER_PROJECT)) * spanMs;
        evaluations.push({ id: crypto.randomUUID(), project, at });
      });
    }
    await copyRows(
      client,
      'evaluations',
      ['id', 'jobset_id', 'commit_hash', 'status', 'trigger_kind', 'started_at', 'completed_at', 'created_at', 'updated_at'],
      evaluations.map((e) => `${e.id}\t${e.project.jobset}\t${storeHash(e.id).slice(0, 40)}\tcompleted\tsource_change\t${iso(e.at)}\t${iso(e.at + 60_000)}\t${iso(e.at)}\t${iso(e.at)}\n`),
    );
    let failedCount = 0;
    let sampleOutputHash = '';
    const buildId = (e: number, j: number) => uuidFrom(`build-${e}-${j}`);
    const outputPath = (id: string, j: number) => `/nix/store/${storeHash(`${id}-out`)}-job-${j}`;
    function* builds() {
      for (const [n, e] of evaluations.entries()) {
        for (let j = 0; j < BUILDS_PER_EVALUATION; j++) {
          const id = buildId(n, j);
          const status = pick(STATUSES, rand());
          if (status === 'failed') failedCount++;
          const system = pick(SYSTEMS, rand());
          const hash = storeHash(id);
          const created = e.at + 60_000 + j * 50;
          const started = status === 'pending' ? null : created + 5_000;
          const completed = status === 'pending' || status === 'running' ? null : (started as number) + Math.round(5_000 + rand() * rand() * 1_800_000);
          if (!sampleOutputHash && e.project.name === `project-${SAMPLE_PROJECT}` && j === 42) sampleOutputHash = outputPath(id, j).slice('/nix/store/'.length, '/nix/store/'.length + 32);
          yield [id, e.id, e.project.jobset, e.project.id, `job-${j}`, `/nix/store/${hash}-job-${j}.drv`, system, status, '{}', iso(created), iso(created),
            field(started === null ? null : iso(started)), field(completed === null ? null : iso(completed))].join('\t') + '\n';
        }
      }
    }
    await copyRows(client, 'builds', ['id', 'evaluation_id', 'jobset_id', 'project_id', 'job_name', 'drv_path', 'system', 'status', 'outputs', 'created_at', 'updated_at', 'started_at', 'completed_at'], builds());
    function* outputs() {
      for (let n = 0; n < evaluations.length; n++) {
        for (let j = 0; j < BUILDS_PER_EVALUATION; j++) {
          const id = buildId(n, j);
          yield `${uuidFrom(`output-${n}-${j}`)}\t${id}\tout\t${outputPath(id, j)}\n`;
        }
      }
    }
    await copyRows(client, 'build_outputs', ['id', 'build_id', 'name', 'path'], outputs());
    // As after autovacuum in steady state: statistics and the visibility map (index-only scans).
    await client.query('VACUUM ANALYZE');
    return { projectIds: projects.map((p) => p.id), failedCount, sampleOutputHash };
  } finally {
    await client.end();
  }
}

interface Measured {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
}

async function measure(url: string, headers: Record<string, string> = {}): Promise<Measured> {
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration: SECONDS });
  return { p50: result.latency.p50, p99: result.latency.p99, rps: result.requests.average, errors: result.non2xx + result.errors + result.timeouts };
}

async function timeOnce(url: string): Promise<number> {
  const started = process.hrtime.bigint();
  const res = await fetch(url);
  await res.text();
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/**
 * The API in a child process (without Temporal: the read routes need none), so autocannon does not share its thread;
 * with BENCH_API_PROCESSES=n, n processes share its port (node:cluster), each with its own pool.
 */
async function serveApi(): Promise<void> {
  const processes = Number(process.env.BENCH_API_PROCESSES ?? 1);
  if (processes > 1 && cluster.isPrimary) {
    const workers = Array.from({ length: processes }, () => cluster.fork());
    const urls = await Promise.all(workers.map((w) => new Promise<string>((resolve) => w.once('message', (m) => resolve((m as { url: string }).url)))));
    process.send!({ url: urls[0] });
    process.once('SIGTERM', () => {
      for (const w of workers) w.process.kill('SIGTERM');
      Promise.all(workers.map((w) => new Promise((resolve) => (w.isDead() ? resolve(undefined) : w.once('exit', resolve))))).then(() => process.exit(0));
    });
    return;
  }
  const databaseUrl = process.env.BENCH_DATABASE_URL!;
  const db = createDb(databaseUrl);
  const config = { ...loadConfig({}), dataDir: process.env.BENCH_DATA_DIR!, databaseUrl };
  const api = await startApi({ db, config, temporal: undefined, startedAt: new Date(), version: 'bench' }, Number(process.env.BENCH_API_PORT ?? 0), '127.0.0.1');
  process.send!({ url: api.url });
  process.once('SIGTERM', () => {
    // Requests still in flight may hold pool connections: the process exit releases them all.
    void api.close().then(() => process.exit(0));
  });
}

async function startApiProcess(databaseUrl: string, dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  // Workers of a cluster share one port: a fixed one, so each reports the same URL.
  const port = Number(process.env.BENCH_API_PROCESSES ?? 1) > 1 ? await freePort() : 0;
  const child = fork(__filename, ['serve'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl, BENCH_DATA_DIR: dataDir, BENCH_API_PORT: String(port) },
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`the API process exited with ${code}`)));
  });
  return { url, child };
}

async function stopApiProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGTERM');
  await exited;
}

/** Milliseconds PostgreSQL spends executing a statement (EXPLAIN ANALYZE's Execution Time; rows are not sent). */
async function executionMs(db: Db, sql: string, bindings: readonly unknown[] = []): Promise<number> {
  const r = await db.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql.replace(/\$\d+/g, '?')}`, bindings as never);
  return (r.rows[0]['QUERY PLAN'] as Array<{ 'Execution Time': number }>)[0]['Execution Time'];
}

/** The statements a route runs (captured from knex in this process), and their summed execution time. */
async function routeSqlMs(db: Db, url: string): Promise<number> {
  const ran: Array<{ sql: string; bindings: unknown[] }> = [];
  const listener = (q: { sql: string; bindings?: unknown[] }) => ran.push({ sql: q.sql, bindings: q.bindings ?? [] });
  db.on('query', listener);
  try {
    const res = await fetch(url);
    await res.text();
  } finally {
    db.removeListener('query', listener);
  }
  let total = 0;
  for (const q of ran) if (/^\s*select/i.test(q.sql)) total += await executionMs(db, q.sql, q.bindings);
  return total;
}

/**
 * The statements main (9d251d1) ran for the same routes: an exact count(*) of the filter, then the page by
 * OFFSET over whole rows; stats by a GROUP BY over builds. (Each route also read the page's outputs, as now.)
 */
function mainStatements(projectId: string, lastFailedOffset: number): Record<string, Array<[string, unknown[]]>> {
  const page = (where: string, bindings: unknown[], offset = 0): Array<[string, unknown[]]> => [
    [`SELECT count(*) FROM builds ${where}`, bindings],
    [`SELECT * FROM builds ${where} ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET ${offset}`, bindings],
  ];
  return {
    'GET /api/v1/builds?limit=50': page('', []),
    'GET /api/v1/builds?status=failed&limit=50': page('WHERE status = ?', ['failed']),
    'GET /api/v1/builds?job_name=job-42&limit=50': page('WHERE job_name = ?', ['job-42']),
    'last page: ?job_name=job-42&offset=950': page('WHERE job_name = ?', ['job-42'], 950),
    [`last page: ?status=failed&offset=${lastFailedOffset}`]: page('WHERE status = ?', ['failed'], lastFailedOffset),
    'GET /api/v1/projects/{id}/builds?limit=50&offset=9000': [[`SELECT * FROM builds WHERE project_id = ? ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 9000`, [projectId]]],
    'GET /api/v1/builds/stats': [
      ['SELECT status, count(*) FROM builds GROUP BY status', []],
      ['SELECT avg(extract(epoch FROM (completed_at - started_at)))::float8 FROM builds WHERE started_at IS NOT NULL AND completed_at IS NOT NULL', []],
    ],
  };
}

async function main(): Promise<void> {
  const keep = process.env.BENCH_DIR;
  const dir = keep ? path.resolve(keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-api-'));
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as the postgres user
  const pgServer = await startEmbeddedPostgres(path.join(dir, 'postgres'), await freePort());
  let db: Db | undefined;
  let api: { url: string; child: ChildProcess } | undefined;
  try {
    const databaseUrl = await ensureDatabase(pgServer.baseUrl, 'bench');
    db = createDb(databaseUrl);
    const migrateStarted = Date.now();
    await migrateLatest(db);
    console.log(`migrations (with any back-fill of existing rows): ${Date.now() - migrateStarted} ms`);
    const seedStarted = Date.now();
    const seededFile = path.join(dir, 'seeded.json');
    const seeded: Seeded = fs.existsSync(seededFile) ? JSON.parse(fs.readFileSync(seededFile, 'utf8')) : await seed(databaseUrl);
    fs.writeFileSync(seededFile, JSON.stringify(seeded));
    const builds = Number((await db.raw('SELECT count(*) AS n FROM builds')).rows[0].n);
    console.log(`seeded ${builds.toLocaleString('en')} builds (${PROJECTS} projects × ${EVALUATIONS_PER_PROJECT} evaluations × ${BUILDS_PER_EVALUATION}) in ${((Date.now() - seedStarted) / 1000).toFixed(0)} s`);
    api = await startApiProcess(databaseUrl, path.join(dir, 'data'));
    const project = seeded.projectIds[SAMPLE_PROJECT];
    const lastFailedOffset = Math.floor((seeded.failedCount - 1) / 50) * 50;
    // The same last page by keyset cursor: next_cursor of the page before it.
    const before = (await (await fetch(`${api.url}/api/v1/builds?status=failed&limit=50&offset=${lastFailedOffset - 50}`)).json()) as { next_cursor: string };
    // Identical GETs in flight together share one run (api/single-flight.ts); a request with an API key looks its key
    // up first, so the keyed rows show what that costs on top (keyed requests of one visibility class share flights).
    await db('api_keys').where({ name: 'bench-reader' }).delete();
    const keyed = { authorization: `Bearer ${(await createApiKey(db, { name: 'bench-reader', role: 'read-only' })).key}` };
    const routes: Array<[string, string, Record<string, string>?]> = [
      ['floor: GET /api/v1/news (one trivial query)', '/api/v1/news'],
      ['GET /api/v1/builds?limit=50', '/api/v1/builds?limit=50'],
      ['GET /api/v1/builds?status=failed&limit=50', '/api/v1/builds?status=failed&limit=50'],
      ['  the same with a read-only API key', '/api/v1/builds?status=failed&limit=50', keyed],
      ['GET /api/v1/builds?job_name=job-42&limit=50', '/api/v1/builds?job_name=job-42&limit=50'],
      ['last page: ?job_name=job-42&offset=950', '/api/v1/builds?job_name=job-42&limit=50&offset=950'],
      [`last page: ?status=failed&offset=${lastFailedOffset}`, `/api/v1/builds?status=failed&limit=50&offset=${lastFailedOffset}`],
      ['last page by cursor: ?status=failed&cursor=<next_cursor>', `/api/v1/builds?status=failed&limit=50&cursor=${before.next_cursor}`],
      ['GET /api/v1/projects/{id}/builds?limit=50&offset=9000', `/api/v1/projects/${project}/builds?limit=50&offset=9000`],
      ['GET /api/v1/search?q=job-42', '/api/v1/search?q=job-42'],
      ['  the same with a read-only API key', '/api/v1/search?q=job-42', keyed],
      ['GET /api/v1/search?q=job-42&status=failed&system=aarch64-linux', '/api/v1/search?q=job-42&status=failed&system=aarch64-linux'],
      ['GET /api/v1/search?store_path=<output hash>', `/api/v1/search?store_path=${seeded.sampleOutputHash}`],
      ['GET /api/v1/metrics/timeseries/builds (30 days, 1d)', '/api/v1/metrics/timeseries/builds?bucket=1d'],
      ['GET /api/v1/metrics/timeseries/duration (30 days, 1d)', '/api/v1/metrics/timeseries/duration?bucket=1d'],
      ['GET /api/v1/metrics/timeseries/duration (30 days, 6h)', '/api/v1/metrics/timeseries/duration?bucket=6h'],
      ['GET /api/v1/metrics/timeseries/duration (30 days, 1h)', '/api/v1/metrics/timeseries/duration?bucket=1h'],
      ['GET /api/v1/metrics/timeseries/builds (30 days, 1h, project)', `/api/v1/metrics/timeseries/builds?bucket=1h&project_id=${project}`],
      ['GET /api/v1/builds/stats', '/api/v1/builds/stats'],
      ['GET /api/v1/metrics/systems', '/api/v1/metrics/systems'],
      ['GET /prometheus', '/prometheus'],
    ];
    const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
    if (only) routes.splice(1, routes.length, ...routes.slice(1).filter(([label]) => only.some((word) => label.includes(word))));
    // Database time per request: the SQL each route runs now, beside the SQL main ran for it, in this run.
    const inProcess = await startApi({ db, config: { ...loadConfig({}), dataDir: path.join(dir, 'data'), databaseUrl }, temporal: undefined, startedAt: new Date(), version: 'bench' }, 0, '127.0.0.1');
    try {
      const before = mainStatements(project, lastFailedOffset);
      console.log(`\nSQL execution time of one request (EXPLAIN ANALYZE), this branch vs main's statements for the same route\n`);
      console.log(`${'route'.padEnd(66)} ${'now ms'.padStart(8)} ${'main ms'.padStart(8)} ${'main/now'.padStart(9)}`);
      for (const [label, route, headers] of routes.slice(1)) {
        if (route.includes('/timeseries/') || headers) continue; // series: their first answer is timed below
        const now = await routeSqlMs(db, `${inProcess.url}${route}`);
        const old = before[label];
        let mainMs: number | undefined;
        if (old) {
          mainMs = 0;
          for (const [sql, bindings] of old) mainMs += await executionMs(db, sql, bindings);
        }
        const ratio = mainMs === undefined ? '' : `${(mainMs / now).toFixed(0)}×`;
        console.log(`${label.padEnd(66)} ${now.toFixed(1).padStart(8)} ${mainMs === undefined ? ''.padStart(8) : mainMs.toFixed(1).padStart(8)} ${ratio.padStart(9)}`);
      }
    } finally {
      await inProcess.close();
    }
    // The first answer of each series route: whole-hour series read the hourly rollup on every request (no cache).
    for (const [label, route] of routes.filter(([, r]) => r.includes('/timeseries/'))) {
      console.log(`uncached first answer, ${label}: ${(await timeOnce(`${api.url}${route}`)).toFixed(0)} ms`);
    }
    console.log(`\n${CONNECTIONS} connections, ${SECONDS} s per route; ratios against the floor route measured in the same run\n`);
    console.log(`${'route'.padEnd(66)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'req/s'.padStart(7)} ${'p99/floor'.padStart(9)}  non-2xx`);
    let floor: Measured | undefined;
    for (const [label, route, headers] of routes) {
      const m = await measure(`${api.url}${route}`, headers);
      floor ??= m;
      const ratio = floor.p99 > 0 ? (m.p99 / floor.p99).toFixed(1) : '-';
      console.log(`${label.padEnd(66)} ${String(m.p50).padStart(7)} ${String(m.p99).padStart(7)} ${m.rps.toFixed(0).padStart(7)} ${`${ratio}×`.padStart(9)}  ${m.errors}`);
    }
  } finally {
    if (api) await stopApiProcess(api.child);
    await db?.destroy();
    await pgServer.stop();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

const serving = process.argv[2] === 'serve';
runBench(serving ? serveApi : main, { exitAtEnd: !serving });
