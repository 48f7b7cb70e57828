/**
 * Run by test/nix/evaluate.test.ts under `setpriv` without CAP_SYS_NICE: evaluates `<dir>/<file>` with a
 * negative nice value, which this process may not give, and prints on stdout what came back as JSON: the
 * jobs, and each reason evaluateJobs gave for not applying the nice value.
 */
import { evaluateJobs } from '../../activities/nix/evaluate';

async function main(): Promise<void> {
  const [dir, file, nice] = process.argv.slice(2);
  const refused: string[] = [];
  const jobs: string[] = [];
  for await (const item of evaluateJobs({ sourceDir: dir, flakeMode: false, expression: file, args: [], nice: Number(nice), onNiceRefused: (r) => refused.push(r) })) {
    jobs.push(`${item.kind}:${item.attr}`);
  }
  process.stdout.write(JSON.stringify({ jobs, refused }));
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
