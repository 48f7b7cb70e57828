import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { currentPrebuiltBundle, workflowSourceFiles, workflowSourceFingerprint, writeWorkflowBundle } from '../../worker/bundle';

const root = path.resolve(__dirname, '..', '..');
const relative = (files: string[]) => files.map((f) => path.relative(root, f));

describe('the prebuilt workflow bundle', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bundle-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("covers every file the workflows import at run time, in workflows/ and lib/, and none they import only as types", () => {
    const files = relative(workflowSourceFiles());
    assert.ok(files.includes('workflows/index.ts'));
    assert.ok(files.includes('workflows/shared.ts'));
    assert.ok(files.includes('workflows/build-outcome.ts'));
    assert.ok(files.includes('lib/search-attributes.ts'), `lib/search-attributes.ts missing from ${files.join(', ')}`);
    assert.deepEqual(files.filter((f) => f.startsWith('activities/')), [], 'activities are imported as types only');
  });

  it('is stale once a file it imports outside workflows/ changes', async () => {
    // A tiny bundle of its own: an entry that imports a helper from another folder.
    fs.mkdirSync(path.join(dir, 'workflows'));
    fs.mkdirSync(path.join(dir, 'lib'));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    const entry = path.join(dir, 'workflows', 'index.ts');
    fs.writeFileSync(entry, "import { greeting } from '../lib/greeting';\nimport type { Unused } from '../lib/types-only';\nexport async function Hello(): Promise<string> { return greeting; }\n");
    fs.writeFileSync(path.join(dir, 'lib', 'greeting.ts'), "export const greeting = 'hello';\n");
    fs.writeFileSync(path.join(dir, 'lib', 'types-only.ts'), 'export type Unused = string;\n');
    const bundle = path.join(dir, 'dist', 'bundle.js');
    await writeWorkflowBundle(bundle, entry);
    assert.equal(currentPrebuiltBundle(bundle, entry), bundle);

    const before = workflowSourceFingerprint(entry);
    fs.writeFileSync(path.join(dir, 'lib', 'types-only.ts'), 'export type Unused = number;\n');
    assert.equal(workflowSourceFingerprint(entry), before, 'a type-only import does not reach the bundle');

    fs.writeFileSync(path.join(dir, 'lib', 'greeting.ts'), "export const greeting = 'hi';\n");
    assert.notEqual(workflowSourceFingerprint(entry), before);
    assert.equal(currentPrebuiltBundle(bundle, entry), undefined, 'a changed lib/ file makes the bundle stale');
  });
});
