/**
 * bench/dashboard: every dashboard page under load with 1,000,000 builds in the database.
 *
 *   npx tsx bench/dashboard.ts [seconds per page = 5] [page name filter ...]
 *
 * With filters, only the pages whose name contains one of them are driven (the baseline always is).
 *
 * Seeds the read model in bulk (bench/seed-builds.ts), then drives each page with autocannon at 20
 * concurrent connections (its own process, so load generation does not share the server's event loop)
 * and prints requests/s and latency percentiles. The baseline, run in the same invocation, is the JSON
 * API's answer for the same build (GET /api/v1/builds/{id}); each page's p99 is printed as a ratio to it.
 * The goal: every page's p99 ≤ 100 ms.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { seedBuilds } from './seed-builds';
import type { Db } from '../lib/db';
import { insertUser } from '../api/queries/users';
import { hashPassword } from '../lib/password-hash';
import { createSession, SESSION_COOKIE } from '../api/queries/sessions';
import { runBench, startBenchStack } from './support';

const CONNECTIONS = 20;
const GOAL_P99_MS = 100;

interface Figures {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  /** Bytes per response, headers included. */
  bytes: number;
}

/**
 * What the pages of channels, starred jobs, webhooks, notification tasks and admin users show: 30 channels,
 * 20 stars of the admin, a webhook per forge of one project, 10,000 notification tasks (1% failed), 200 users.
 */
async function seedDashboardExtras(db: Db, adminId: string): Promise<{ channelId: string }> {
  await db.raw(
    `insert into channels (project_id, name, jobset_id, current_evaluation_id)
     select j.project_id, 'channel-' || row_number() over (order by p.name, j.name), j.id,
            (select e.id from evaluations e where e.jobset_id = j.id order by e.created_at desc limit 1)
     from jobsets j join projects p on p.id = j.project_id where p.name like 'bench-%' order by p.name, j.name limit 30`,
  );
  await db.raw(
    `insert into starred_jobs (user_id, project_id, jobset_id, job_name)
     select ?, j.project_id, j.id, 'job-' || lpad(n::text, 3, '0')
     from jobsets j join projects p on p.id = j.project_id cross join generate_series(1, 4) n
     where p.name = 'bench-001'`,
    [adminId],
  );
  await db.raw(
    `insert into project_webhooks (project_id, forge_type, secret)
     select p.id, f, 'sealed-bench-secret' from projects p cross join unnest(array['github', 'gitlab', 'gitea', 'forgejo']) f where p.name = 'bench-001'`,
  );
  await db.raw(
    `insert into notification_tasks (notification_type, payload, status, attempts, max_attempts, last_error, target_name, event, order_key, state, created_at)
     select 'webhook', '{}'::jsonb, case when n % 100 = 0 then 'failed' else 'completed' end, case when n % 100 = 0 then 5 else 1 end, 5,
            case when n % 100 = 0 then 'HTTP 503' end, 'bench-hook', 'build_finished', 'bench-hook:' || (n % 500), 'success',
            now() - n * interval '1 minute'
     from generate_series(1, 10000) n`,
  );
  await db.raw(
    `insert into users (username, email, role) select 'bench-user-' || lpad(n::text, 3, '0'), 'u' || n || '@example.org', 'read-only' from generate_series(1, 200) n`,
  );
  await db.raw('analyze channels, starred_jobs, project_webhooks, notification_tasks, users');
  const channel = await db('channels').orderBy('name').first('id');
  return { channelId: channel.id };
}

/** Runs the autocannon CLI against one URL and reads its JSON result. */
async function autocannon(url: string, seconds: number, headers: Record<string, string> = {}): Promise<Figures> {
  const cli = path.resolve(__dirname, '..', 'node_modules', 'autocannon', 'autocannon.js');
  const args = [cli, '--json', '--connections', String(CONNECTIONS), '--duration', String(seconds)];
  for (const [k, v] of Object.entries(headers)) args.push('--headers', `${k}=${v}`);
  args.push(url);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.resume();
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`autocannon exited with ${code}`);
  const r = JSON.parse(Buffer.concat(out).toString('utf8'));
  return { requestsPerSecond: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, non2xx: r.non2xx, errors: r.errors, bytes: r.throughput.total / Math.max(1, r.requests.total) };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const bench = await startBenchStack({ worker: false });
  const stack = bench.stack;
  try {
    const { builds } = await seedBuilds(stack.db, undefined, (l) => console.log(l));
    const db = stack.db;
    const admin = await insertUser(db, { username: 'bench-admin', email: 'bench@example.org', passwordHash: await hashPassword('bench admin'), role: 'admin' });
    const session = await createSession(db, admin.id);
    const cookie = `${SESSION_COOKIE}=${session.token}`;

    const newestEval = await db('evaluations').orderBy('created_at', 'desc').first();
    const project = await db('projects').where('name', 'bench-001').first();
    const jobset = await db('jobsets').where('project_id', project.id).first();
    const finished = await db('builds').where({ evaluation_id: newestEval.id, job_name: 'job-001' }).first();
    const queued = await db('builds').where({ status: 'pending' }).orderBy('created_at', 'desc').first();
    const extras = await seedDashboardExtras(db, admin.id);

    const pages: Array<[string, string, Record<string, string>?]> = [
      ['baseline: API JSON of the build', `/api/v1/builds/${finished.id}`],
      ['home /', '/'],
      ['projects /projects', '/projects'],
      ['project /projects/{id}', `/projects/${project.id}`],
      ['jobset matrix /jobsets/{id}', `/jobsets/${jobset.id}`],
      ['evaluation /evaluations/{id}', `/evaluations/${newestEval.id}`],
      ['build (99 dependents) /builds/{id}', `/builds/${finished.id}`],
      ['queued build (why it waits)', `/builds/${queued.id}`],
      ['queue /queue', '/queue'],
      ['queue page 40 /queue?page=40', '/queue?page=40'],
      ['builders /builders', '/builders'],
      ['admin (signed in) /admin', '/admin', { cookie }],
      ['build, signed in (buttons)', `/builds/${finished.id}`, { cookie }],
      ['channels /channels', '/channels'],
      ['channel /channels/{id}', `/channels/${extras.channelId}`],
      ['search by name /search?q=job-04', '/search?q=job-04'],
      ['search failed of a project', '/search?status=failed&project=bench-001'],
      ['search by system, page 20', '/search?system=x86_64-linux&page=20'],
      ['starred (20 stars) /starred', '/starred', { cookie }],
      ['metrics /metrics', '/metrics'],
      ['metrics per 6 h', '/metrics?bucket=6h'],
      ['webhooks /projects/{id}/webhooks', `/projects/${project.id}/webhooks`],
      ['notification tasks (admin)', '/admin/notification-tasks', { cookie }],
      ['failed notification tasks', '/admin/notification-tasks?status=failed', { cookie }],
      ['admin users page 2 /admin?users=2', '/admin?users=2', { cookie }],
      ['sign-in /login', '/login'],
    ];
    const filters = process.argv.slice(3);
    if (filters.length > 0) pages.splice(1, pages.length, ...pages.slice(1).filter(([name]) => filters.some((f) => name.includes(f))));
    console.log(`\n${builds.toLocaleString('en')} builds; ${CONNECTIONS} connections, ${seconds} s per page; goal p99 ≤ ${GOAL_P99_MS} ms\n`);
    console.log(['page'.padEnd(38), 'req/s'.padStart(8), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'max ms'.padStart(8), 'p99/base'.padStart(9), 'non-2xx'.padStart(8), 'KB/resp'.padStart(8), ' goal'].join(''));
    let baseline: Figures | undefined;
    let allMet = true;
    for (const [name, url, headers] of pages) {
      const f = await autocannon(`${stack.url}${url}`, seconds, headers);
      baseline ??= f;
      const met = f.requestsPerSecond > 0 && f.p99 <= GOAL_P99_MS && f.non2xx === 0 && f.errors === 0;
      if (name !== pages[0][0]) allMet &&= met;
      console.log(
        [
          name.padEnd(38),
          f.requestsPerSecond.toFixed(0).padStart(8),
          String(f.p50).padStart(8),
          String(f.p99).padStart(8),
          String(f.max).padStart(8),
          `${(f.p99 / Math.max(1, baseline.p99)).toFixed(1)}×`.padStart(9),
          String(f.non2xx + f.errors).padStart(8),
          (f.bytes / 1024).toFixed(1).padStart(8),
          met ? ' met' : ' MISSED',
        ].join(''),
      );
    }
    console.log(`\n${allMet ? 'every page met' : 'some page missed'} the goal of p99 ≤ ${GOAL_P99_MS} ms at ${CONNECTIONS} connections`);
  } finally {
    await bench.stop();
  }
}

runBench(main);
