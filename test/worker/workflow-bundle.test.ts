import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import ts from 'typescript';
import { currentPrebuiltBundle, workflowSourceFiles, workflowBundleCode, workflowSourceFingerprint, writeWorkflowBundle } from '../../worker/bundle';

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

  it('preloads the workflow modules: a workflow run in the reusable context runs none of their module code again', async () => {
    // The SDK's reusable V8 context, as the worker makes it (an internal module of @temporalio/worker).
    const { ReusableVMWorkflowCreator } = require('@temporalio/worker/lib/workflow/reusable-vm.js');
    const code = await workflowBundleCode();
    const creator = await ReusableVMWorkflowCreator.create({ code, filename: 'workflow-bundle.js', sourceMap: { version: 3, sources: [], names: [], mappings: '' } }, 5000, new Set(), undefined);
    try {
      // What a workflow's start does: importWorkflows() with the run's own module cache.
      const imported = vm.runInContext(
        `globalThis.__TEMPORAL_ACTIVATOR__ = { moduleCache: new Map() };
         const mod = __TEMPORAL__.importWorkflows();
         const run = [...globalThis.__TEMPORAL_ACTIVATOR__.moduleCache.keys()];
         delete globalThis.__TEMPORAL_ACTIVATOR__;
         ({ run, workflows: Object.keys(mod) })`,
        creator.context,
      );
      assert.ok(imported.workflows.includes('BuildWorkflow'), `the workflows: ${imported.workflows.join(', ')}`);
      assert.deepEqual([...imported.run], [], 'modules whose code ran again for this workflow');
    } finally {
      await creator.destroy();
    }
  });

  it('the workflow modules hold no state of their own at module level (they are shared by every workflow run)', () => {
    // Preloaded modules are one instance for all the runs of a worker: a module-level `let`, a Map or any
    // object made with `new`, or a statement that changes something when the module loads, would leak
    // from one workflow run into the next and make replays nondeterministic.
    const problems: string[] = [];
    for (const file of workflowSourceFiles()) {
      const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
      const where = (node: ts.Node) => `${path.relative(root, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
      for (const statement of source.statements) {
        if (ts.isVariableStatement(statement)) {
          if (!(statement.declarationList.flags & ts.NodeFlags.Const)) problems.push(`${where(statement)}: a module-level let/var`);
          for (const d of statement.declarationList.declarations) {
            if (d.initializer && ts.isNewExpression(d.initializer)) problems.push(`${where(d)}: a module-level object made with new`);
          }
        } else if (ts.isExpressionStatement(statement)) {
          problems.push(`${where(statement)}: a statement run when the module loads`);
        } else if (ts.isClassDeclaration(statement)) {
          for (const member of statement.members) {
            const modifiers = ts.canHaveModifiers(member) ? ts.getModifiers(member) ?? [] : [];
            if (ts.isPropertyDeclaration(member) && modifiers.some((m) => m.kind === ts.SyntaxKind.StaticKeyword)) problems.push(`${where(member)}: a static class property`);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
