import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject } from '../support/seed';

/** The seed CI runs with, so that a failure is repeatable; RINGMASTER_SCHEMATHESIS_SEED picks another. */
const PINNED_SEED = '20261130';
const MAX_EXAMPLES = process.env.RINGMASTER_SCHEMATHESIS_EXAMPLES ?? '3';

/** The `st` CLI: on PATH, or in the scripts folder of the python3 that pip installed it with (.ci/run). */
function schemathesisCli(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'st'))) return path.join(dir, 'st');
  }
  for (const dir of ['/usr/local/bin', path.join(os.homedir(), '.local', 'bin')]) {
    if (fs.existsSync(path.join(dir, 'st'))) return path.join(dir, 'st');
  }
  return undefined;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('Schemathesis over the OpenAPI document', { timeout: 25 * 60_000 }, () => {
  let stack: TestStack;
  let reportDir: string;
  before(async () => {
    stack = await startTestStack();
    // Rows for the list operations to return, so that their links (first item's ID) lead the fuzzer
    // past 404 into the routes that read, restart, cancel or compare a real project, jobset and build.
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id);
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    // Finished builds only: the live log of an unfinished build streams until the build ends, so each
    // request for it would hold the fuzzer for its whole request timeout.
    for (const status of ['succeeded', 'failed', 'cancelled']) await seedBuild(stack.db, { evaluation, status });
    reportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-schemathesis-'));
  });
  after(async () => {
    await stack?.stop();
    if (reportDir) fs.rmSync(reportDir, { recursive: true, force: true });
  });

  it('finds no failure in any operation, stateful phase included, with an admin key', { timeout: 20 * 60_000 }, async () => {
    const st = schemathesisCli();
    assert.ok(st, 'the Schemathesis CLI `st` is not installed: .ci/run installs it with `python3 -m pip install schemathesis==4.32.5`');
    const seed = process.env.RINGMASTER_SCHEMATHESIS_SEED ?? PINNED_SEED;
    const args = [
      '--no-color',
      '--config-file', path.join(__dirname, 'schemathesis.toml'),
      'run', `${stack.url}/api/v1/openapi.json`,
      // The fuzzer cannot revoke its own key (DELETE /api-keys/{id} of the calling key is a 409), though
      // GET /api-keys links its first item to that route.
      '--header', `Authorization: Bearer ${stack.adminKey}`,
      '--phases', 'examples,coverage,fuzzing,stateful',
      '--max-examples', MAX_EXAMPLES,
      '--seed', seed,
      // One worker: Hypothesis parses lambdas' sources with ast, which CPython 3.11 does not
      // allow from two threads at once ("AST constructor recursion depth mismatch").
      '--workers', '1',
      '--request-timeout', '60',
      '--report', 'junit', '--report-dir', reportDir,
    ];
    const { code, output } = await run(st, args, { ...process.env, SCHEMATHESIS_HOOKS: '', NO_COLOR: '1' }, reportDir); // its .schemathesis cache goes there too
    const summary = output.includes('SUMMARY') ? output.slice(output.lastIndexOf('SUMMARY') - 40) : output.slice(-4000);
    console.log(`schemathesis (seed ${seed}, ${MAX_EXAMPLES} examples per operation) exited ${code}:\n${summary}`);
    assert.equal(code, 0, output);
    // A pass means little if the fuzzer's key stopped working: only the operations that need a signed-in
    // user (starred jobs; an admin key belongs to no user) may answer nothing but 401/403.
    const refused = Number(/Authentication failed: (\d+) operations? returned only 401\/403/.exec(output)?.[1] ?? 0);
    const warnings = output.includes('WARNINGS') ? output.slice(output.indexOf('WARNINGS'), output.indexOf('SUMMARY')) : summary;
    assert.ok(refused <= 3, `${refused} operations answered only 401/403: the fuzzer lost its key\n${warnings}`);
  });
});
