import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { filesToRunAgain, readReport, testRunnerArgs, type RunReport, type TestFailure } from '../support/run';

/** The environment without NODE_TEST_CONTEXT, which would make the inner runner report to this one as a child. */
function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _context, ...rest } = env;
  return rest;
}

/** Runs node's test runner over the files with `npm test`'s own command line, and reads what the failures reporter wrote. */
function reportOf(files: Record<string, string>, timeoutMs: number): RunReport {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-runner-'));
  try {
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    const out = path.join(dir, 'failures.jsonl');
    spawnSync(process.execPath, testRunnerArgs(Object.keys(files).map((f) => path.join(dir, f)), { concurrency: '2', timeoutMs }), {
      // From the project, where `--import tsx` resolves.
      cwd: path.resolve(__dirname, '..', '..'),
      stdio: 'ignore',
      timeout: 60_000,
      env: { ...withoutTestContext(process.env), RINGMASTER_TEST_FAILURES_FILE: out },
    });
    const report = readReport(out);
    return { ...report, failures: report.failures.map((f) => ({ ...f, file: f.file && path.basename(f.file), name: f.name.startsWith(dir) ? path.basename(f.name) : f.name })) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const hangs = `import { it } from 'node:test';\nit('passes', () => {});\nit('hangs', async () => { await new Promise(() => setInterval(() => {}, 1000)); });\n`;
const fails = `import { it } from 'node:test';\nit('fails', () => { throw new Error('boom'); });\n`;
const passes = `import { it } from 'node:test';\nit('passes', () => {});\n`;

describe('npm test runs a file that hung once more, and nothing else', () => {
  it('the reporter tells a file that timed out as a whole from a test that failed', () => {
    const { failures, counts } = reportOf({ 'hangs.test.mjs': hangs, 'fails.test.mjs': fails, 'passes.test.mjs': passes }, 3000);
    // A hung file's tests that passed count; the one it was in is not reported at all, the file is cancelled.
    assert.deepEqual(counts, { tests: 4, pass: 2, fail: 1, cancelled: 1 });
    const byFile = new Map(failures.map((f) => [f.file, f]));
    assert.equal(failures.length, 2, JSON.stringify(failures));
    assert.deepEqual(byFile.get('hangs.test.mjs'), { name: 'hangs.test.mjs', nesting: 0, file: 'hangs.test.mjs', failureType: 'testTimeoutFailure', cause: 'test timed out after 3000ms' });
    assert.equal(byFile.get('fails.test.mjs')?.failureType, 'testCodeFailure');
    assert.equal(byFile.get('fails.test.mjs')?.name, 'fails');
    assert.match(byFile.get('fails.test.mjs')?.cause ?? '', /boom/);
  });

  it('a run where only files hung, and whose counts agree, runs those files again', () => {
    const { failures, counts } = reportOf({ 'hangs.test.mjs': hangs, 'passes.test.mjs': passes }, 3000);
    assert.deepEqual(counts, { tests: 3, pass: 2, fail: 0, cancelled: 1 });
    assert.deepEqual(filesToRunAgain({ failures, counts }), ['hangs.test.mjs']);
  });

  it('only files that hung, and only when nothing else failed, are run again', () => {
    const hung = (file: string): TestFailure => ({ name: file, nesting: 0, file, failureType: 'testTimeoutFailure', cause: 'test timed out after 900000ms' });
    const counts = (cancelled: number, fail = 0) => ({ tests: 100, pass: 100 - cancelled - fail, fail, cancelled });
    assert.deepEqual(filesToRunAgain({ failures: [hung('/a.test.ts'), hung('/b.test.ts')], counts: counts(2) }), ['/a.test.ts', '/b.test.ts']);
    assert.deepEqual(filesToRunAgain({ failures: [], counts: counts(0) }), []);
    // Another failure beside the hang: the run fails as it is.
    assert.deepEqual(filesToRunAgain({ failures: [hung('/a.test.ts'), { name: 'x', nesting: 1, file: '/b.test.ts', failureType: 'testCodeFailure', cause: 'boom' }], counts: counts(1, 1) }), []);
    // A test of its own that timed out (a timeout the test set) is a failure, not a hang of the file.
    assert.deepEqual(filesToRunAgain({ failures: [{ name: 'waits', nesting: 1, file: '/a.test.ts', failureType: 'testTimeoutFailure', cause: 'test timed out after 10ms' }], counts: counts(0, 1) }), []);
    // A file that crashed is not a hang.
    assert.deepEqual(filesToRunAgain({ failures: [{ name: '/a.test.ts', nesting: 0, file: '/a.test.ts', failureType: 'testCodeFailure', cause: 'exit code 1' }], counts: counts(0, 1) }), []);
    // Counts that disagree with the lines (a failure the report lost), or no counts at all (a report cut short).
    assert.deepEqual(filesToRunAgain({ failures: [hung('/a.test.ts')], counts: counts(1, 1) }), []);
    assert.deepEqual(filesToRunAgain({ failures: [hung('/a.test.ts')], counts: counts(2) }), []);
    assert.deepEqual(filesToRunAgain({ failures: [hung('/a.test.ts')], counts: {} }), []);
  });
});
