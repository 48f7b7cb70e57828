import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allRoutes } from '../../api/routes';
import { apiMarkdown } from '../../api/openapi';

const committed = path.resolve(__dirname, '..', '..', 'docs', 'API.md');

describe('docs/API.md', () => {
  it('is exactly what `npm run api-docs` generates from the route table', () => {
    const fresh = apiMarkdown(allRoutes());
    assert.ok(fs.existsSync(committed), 'docs/API.md is missing: run npm run api-docs');
    const onDisk = fs.readFileSync(committed, 'utf8');
    if (onDisk !== fresh) {
      const a = onDisk.split('\n');
      const b = fresh.split('\n');
      const first = a.findIndex((line, i) => line !== b[i]);
      assert.fail(`docs/API.md is out of date with the route table: run npm run api-docs\n  first difference at line ${first + 1}:\n  committed: ${a[first]}\n  generated: ${b[first]}`);
    }
  });

  it('has the seed\'s columns and one row per route, in path order', () => {
    const routes = allRoutes();
    const lines = apiMarkdown(routes).split('\n');
    const header = lines.find((l) => l.startsWith('| Method'));
    assert.equal(header, '| Method | Endpoint | Description | Responses | Role |');
    const rows = lines.filter((l) => /^\| (GET|POST|PUT|PATCH|DELETE) \|/.test(l));
    assert.equal(rows.length, routes.length);
    const paths = rows.map((r) => r.split(' | ')[1].replace(/`/g, ''));
    assert.deepEqual(paths, [...paths].sort((x, y) => (x === y ? 0 : x < y ? -1 : 1)));
    const health = rows.find((r) => r.includes('`/health`'));
    assert.equal(health, '| GET | `/health` | Health check with database and service status | 200, 503 | always public |');
  });

  it('the CLI command behind `npm run api-docs` writes the generated table', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-api-docs-'));
    try {
      const out = path.join(dir, 'API.md');
      const r = spawnSync(process.execPath, [path.resolve(__dirname, '..', '..', 'bin', 'ringmaster.js'), 'api-docs', '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /wrote .*API\.md/);
      assert.equal(fs.readFileSync(out, 'utf8'), apiMarkdown(allRoutes()));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
