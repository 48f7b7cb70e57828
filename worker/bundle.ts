import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { bundleWorkflowCode } from '@temporalio/worker';

export const workflowsPath = path.resolve(__dirname, '..', 'workflows', 'index.ts');
export const prebuiltBundlePath = path.resolve(__dirname, '..', 'dist', 'workflow-bundle.js');
/** Beside the bundle: the fingerprint of the sources it was built from. */
const fingerprintPath = (bundlePath: string) => `${bundlePath}.sources-sha256`;

/**
 * The workflow bundle's code. The workflow modules are preloaded (`preloadModules`): the worker's
 * reusable V8 context runs their module code once, at its start, and every workflow shares them.
 * Without it the context ran the 25 modules that `workflows/index.ts` pulls in (ours and a few of the
 * SDK's) again for each workflow, about 0.7–1 ms of the workflow thread per workflow run. This is safe
 * only while those modules hold no state of their own at module level (definitions, activity proxies
 * and pure functions only); `test/worker/workflow-bundle.test.ts` checks that.
 */
export async function workflowBundleCode(entry = workflowsPath): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: entry, preloadModules: [entry], logger: quietBundleLogger });
  return code;
}

/** Bundles the workflows once (npm start's setup step) so the worker starts without webpack. */
export async function writeWorkflowBundle(target = prebuiltBundlePath, entry = workflowsPath): Promise<string> {
  const fingerprint = workflowSourceFingerprint(entry);
  const code = await workflowBundleCode(entry);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  // Written aside and renamed, the bundle first: two workers that rebuild a stale bundle at once each
  // see a whole file, and a fingerprint never names a bundle that is not there yet.
  writeFileAtomically(target, code);
  writeFileAtomically(fingerprintPath(target), `${fingerprint}\n`);
  return target;
}

function writeFileAtomically(target: string, content: string): void {
  const aside = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(aside, content);
  fs.renameSync(aside, target);
}

const ringmasterCli = path.resolve(__dirname, '..', 'bin', 'ringmaster.js');

/**
 * The path of a current prebuilt bundle, rebuilt first when it is missing or stale. The rebuild runs in
 * a child process (`ringmaster build-workflows`): webpack's heap in the worker's own process stayed
 * resident for its whole life (an idle worker: 405 MB bundling in-process, 289 MB from the prebuilt file).
 */
export async function currentOrRebuiltBundle(): Promise<string> {
  const current = currentPrebuiltBundle();
  if (current) return current;
  await promisify(execFile)(process.execPath, [ringmasterCli, 'build-workflows'], { maxBuffer: 1 << 20 });
  const rebuilt = currentPrebuiltBundle();
  if (!rebuilt) throw new Error(`ringmaster build-workflows did not leave a current bundle at ${prebuiltBundlePath} (were the workflow sources changed meanwhile?)`);
  return rebuilt;
}

// `import … from '…'`, `export … from '…'` and bare `import '…'`; `import type`/`export type` are erased
// by the compiler and never reach the bundle.
const IMPORT_PATTERN = /(?:^|[;\n])\s*(?:(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?)['"]([^'"]+)['"]/g;

function resolveLocal(fromFile: string, specifier: string): string | undefined {
  const base = path.resolve(path.dirname(fromFile), specifier);
  for (const candidate of [base, `${base}.ts`, `${base}.js`, `${base}.json`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/**
 * Every source file of this repository that the workflow bundle includes: the entry point and, through
 * its relative imports, whatever it pulls in from `workflows/` and `lib/` (e.g. `lib/search-attributes.ts`).
 */
export function workflowSourceFiles(entry = workflowsPath): string[] {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith('.ts') && !file.endsWith('.js')) continue;
    const source = fs.readFileSync(file, 'utf8');
    for (const m of source.matchAll(IMPORT_PATTERN)) {
      const [, , typeOnly, specifier] = m;
      if (typeOnly || !specifier.startsWith('.')) continue;
      const resolved = resolveLocal(file, specifier);
      if (resolved && !seen.has(resolved)) pending.push(resolved);
    }
  }
  return [...seen].sort();
}

/** SHA-256 over the paths and contents of every file in the bundle's import graph. */
export function workflowSourceFingerprint(entry = workflowsPath): string {
  const root = path.resolve(__dirname, '..');
  // How the bundle is made, as well as what from: a bundle made before the workflow modules were preloaded is stale.
  const hash = crypto.createHash('sha256').update('preloaded workflow modules\0');
  for (const file of workflowSourceFiles(entry)) {
    hash.update(path.relative(root, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/** The prebuilt bundle when it was built from the current sources, else undefined (the worker then bundles on start). */
export function currentPrebuiltBundle(bundlePath = prebuiltBundlePath, entry = workflowsPath): string | undefined {
  if (!fs.existsSync(bundlePath) || !fs.existsSync(fingerprintPath(bundlePath))) return undefined;
  const recorded = fs.readFileSync(fingerprintPath(bundlePath), 'utf8').trim();
  return recorded === workflowSourceFingerprint(entry) ? bundlePath : undefined;
}

/** Webpack's progress stays quiet; its warnings and errors are shown. */
export const quietBundleLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
