import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startTestServices } from './services';

/**
 * A guard against a hung test file, not a speed check: on a machine shared by several suites, files
 * that end-to-end build dozens of derivations took over 5 minutes (lifecycle, the PostgreSQL restart).
 */
const FILE_TIMEOUT_MS = Number(process.env.RINGMASTER_TEST_FILE_TIMEOUT_MS ?? 900_000);

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(p));
    else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

/** A failed test or hook, as test/support/failures-reporter.mjs writes it. */
export interface TestFailure {
  name: string;
  nesting: number;
  file: string | null;
  failureType: string | null;
  cause: string;
}

/** What the failures reporter wrote: the failures, and the run's counts (tests, pass, fail, cancelled) if it got to its end. */
export interface RunReport {
  failures: TestFailure[];
  counts: Partial<Record<'tests' | 'pass' | 'fail' | 'cancelled', number>>;
}

/**
 * The files to run once more: those that timed out as a whole (a hang, reported against the file itself at depth 0),
 * when that is all that went wrong. The run's own counts must agree (no test failed; as many cancelled as files
 * hung), so a report cut short never passes for one. Any other failure (a test that failed, a file that crashed)
 * leaves nothing to run again: the run fails as it is.
 */
export function filesToRunAgain(report: RunReport): string[] {
  const hung = (f: TestFailure) => f.nesting === 0 && f.failureType === 'testTimeoutFailure' && f.file !== null && f.name === f.file;
  const { failures, counts } = report;
  if (failures.length === 0 || !failures.every(hung)) return [];
  const files = [...new Set(failures.map((f) => f.file as string))];
  if (counts.fail !== 0 || counts.cancelled !== files.length) return [];
  return files;
}

export function readReport(file: string): RunReport {
  const report: RunReport = { failures: [], counts: {} };
  if (!fs.existsSync(file)) return report;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const entry = JSON.parse(line) as TestFailure | { count: keyof RunReport['counts']; value: number };
    if ('count' in entry) report.counts[entry.count] = entry.value;
    else report.failures.push(entry);
  }
  return report;
}

/**
 * node's test runner over `files` as `npm test` runs it: the spec report on stdout, and the failures reporter,
 * which writes to the file named by RINGMASTER_TEST_FAILURES_FILE in the environment.
 */
export function testRunnerArgs(files: string[], opts: { concurrency: string; timeoutMs: number }): string[] {
  return [
    '--import', 'tsx', '--test',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    `--test-reporter=${path.join(__dirname, 'failures-reporter.mjs')}`, '--test-reporter-destination=/dev/null',
    `--test-concurrency=${opts.concurrency}`, `--test-timeout=${opts.timeoutMs}`, '--test-force-exit', ...files,
  ];
}

/** `npm test`: starts Temporal and PostgreSQL once, runs every test file with node's test runner, stops them. */
export async function runTests(args: string[]): Promise<number> {
  const root = path.resolve(__dirname, '..', '..');
  const files = args.length ? args : testFiles(path.join(root, 'test'));
  console.log(`starting Temporal dev server and PostgreSQL for ${files.length} test files`);
  const services = await startTestServices();
  const reports = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-test-report-'));
  let child: ReturnType<typeof spawn> | undefined;
  const stop = () => { if (child?.pid) try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ } };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const run = (runFiles: string[], failuresFile: string): Promise<number> => {
    const concurrency = process.env.RINGMASTER_TEST_CONCURRENCY ?? '2';
    child = spawn(
      process.execPath,
      testRunnerArgs(runFiles, { concurrency, timeoutMs: FILE_TIMEOUT_MS }),
      {
        stdio: 'inherit',
        cwd: root,
        env: {
          ...process.env,
          // Operator lines at info would bury the test report; a test that reads them uses a logger of its own.
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
          RINGMASTER_TEST_TEMPORAL_ADDRESS: services.temporalAddress,
          RINGMASTER_TEST_POSTGRES_URL: services.postgresBaseUrl,
          RINGMASTER_TEST_FAILURES_FILE: failuresFile,
        },
      },
    );
    return new Promise<number>((resolve) => child!.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  };
  try {
    const code = await run(files, path.join(reports, 'failures.jsonl'));
    if (code === 0) return 0;
    // A file that hung is run once more, on its own, and the run stands or falls by that second run. It is said
    // loudly: a hang that comes back fails the run, and one that does not is still in the log above.
    const again = filesToRunAgain(readReport(path.join(reports, 'failures.jsonl')));
    if (again.length === 0) return code;
    console.log(`\n!!! ${again.length} test file(s) timed out as a whole (a hang) and nothing else failed; running them once more:\n${again.map((f) => `!!!   ${f}`).join('\n')}\n`);
    const second = await run(again, path.join(reports, 'failures-again.jsonl'));
    console.log(second === 0 ? '!!! the second run passed: the hang above did not come back' : '!!! the second run failed too');
    return second;
  } finally {
    fs.rmSync(reports, { recursive: true, force: true });
    await services.stop();
  }
}
