import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startTestServices } from './services';

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(p));
    else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

/** `npm test`: starts Temporal and PostgreSQL once, runs every test file with node's test runner, stops them. */
export async function runTests(args: string[]): Promise<number> {
  const root = path.resolve(__dirname, '..', '..');
  const files = args.length ? args : testFiles(path.join(root, 'test'));
  console.log(`starting Temporal dev server and PostgreSQL for ${files.length} test files`);
  const services = await startTestServices();
  let child: ReturnType<typeof spawn> | undefined;
  const stop = () => { if (child?.pid) try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ } };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const concurrency = process.env.RINGMASTER_TEST_CONCURRENCY ?? '2';
    child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, '--test-timeout=600000', '--test-force-exit', ...files], {
      stdio: 'inherit',
      cwd: root,
      env: {
        ...process.env,
        RINGMASTER_TEST_TEMPORAL_ADDRESS: services.temporalAddress,
        RINGMASTER_TEST_POSTGRES_URL: services.postgresBaseUrl,
      },
    });
    const code = await new Promise<number>((resolve) => child!.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
    return code;
  } finally {
    await services.stop();
  }
}
