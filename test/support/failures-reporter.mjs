// A second reporter for `npm test` (test/support/run.ts): one JSON line per failed test or hook, with its file,
// its depth and the kind of failure, then the run's counts, so the runner can tell a file that hung (the file itself timed out) from
// one whose tests failed. Lines are appended synchronously to RINGMASTER_TEST_FAILURES_FILE, not yielded to a
// destination stream: --test-force-exit ends the process before such a stream writes its last lines.
import fs from 'node:fs';

export default async function* failuresReporter(source) {
  const out = process.env.RINGMASTER_TEST_FAILURES_FILE;
  for await (const event of source) {
    if (!out) continue;
    if (event.type === 'test:diagnostic') {
      // The run's counts, at its end ("fail 0", "cancelled 1"): the runner checks the lines above against them.
      const count = /^(tests|pass|fail|cancelled) (\d+)$/.exec(event.data.message);
      if (count && event.data.nesting === 0) fs.appendFileSync(out, `${JSON.stringify({ count: count[1], value: Number(count[2]) })}\n`);
      continue;
    }
    if (event.type !== 'test:fail') continue;
    const { name, nesting, file, details } = event.data;
    const error = details?.error;
    const line = { name, nesting, file, failureType: error?.failureType ?? null, cause: String(error?.cause?.message ?? error?.cause ?? error?.message ?? '') };
    fs.appendFileSync(out, `${JSON.stringify(line)}\n`);
  }
}
