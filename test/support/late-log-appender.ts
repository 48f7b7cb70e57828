// A second process for test/lib/build-log.test.ts: for each line `<buildId> <text>` on stdin it appends
// the text to that build's log late (BuildLogWriter.appendLate, as a batch on another worker does) and
// answers `<buildId>` on stdout once the append is done.
import readline from 'node:readline';
import { BuildLogWriter } from '../../lib/build-log';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: late-log-appender.ts <dataDir>');
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [buildId, ...text] = line.split(' ');
  BuildLogWriter.appendLate(dataDir, buildId, `${text.join(' ')}\n`).then(
    () => process.stdout.write(`${buildId}\n`),
    (err) => process.stdout.write(`${buildId} failed: ${String(err)}\n`),
  );
});
lines.on('close', () => process.exit(0));
