import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

export const workflowsPath = path.resolve(__dirname, '..', 'workflows', 'index.ts');
export const prebuiltBundlePath = path.resolve(__dirname, '..', 'dist', 'workflow-bundle.js');

/** Bundles the workflows once (npm start's setup step) so the worker starts without webpack. */
export async function writeWorkflowBundle(target = prebuiltBundlePath): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, code);
  return target;
}

/** The newest workflow source file's mtime: a prebuilt bundle older than it is stale. */
function newestWorkflowSource(): number {
  const dir = path.dirname(workflowsPath);
  let newest = 0;
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(dir);
  return newest;
}

/** The prebuilt bundle when it is current, else undefined (the worker then bundles on start). */
export function currentPrebuiltBundle(): string | undefined {
  if (!fs.existsSync(prebuiltBundlePath)) return undefined;
  return fs.statSync(prebuiltBundlePath).mtimeMs >= newestWorkflowSource() ? prebuiltBundlePath : undefined;
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
