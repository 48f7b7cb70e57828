import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

export const workflowsPath = path.resolve(__dirname, '..', 'workflows', 'index.ts');
export const prebuiltBundlePath = path.resolve(__dirname, '..', 'dist', 'workflow-bundle.js');
/** Beside the bundle: the fingerprint of the sources it was built from. */
const fingerprintPath = (bundlePath: string) => `${bundlePath}.sources-sha256`;

/** Bundles the workflows once (npm start's setup step) so the worker starts without webpack. */
export async function writeWorkflowBundle(target = prebuiltBundlePath, entry = workflowsPath): Promise<string> {
  const fingerprint = workflowSourceFingerprint(entry);
  const { code } = await bundleWorkflowCode({ workflowsPath: entry, logger: quietBundleLogger });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, code);
  fs.writeFileSync(fingerprintPath(target), `${fingerprint}\n`);
  return target;
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
  const hash = crypto.createHash('sha256');
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
