import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

const root = path.resolve(__dirname, '..', '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Names of the environment variables a source file reads: process.env.X, env.X, env['X'], intFromEnv('X'), boolFromEnv('X'). */
function environmentVariablesReadBy(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const names = new Set<string>();
  for (const pattern of [/\b(?:process\.)?env\.([A-Z][A-Z0-9_]*)/g, /\benv\[['"]([A-Z][A-Z0-9_]*)['"]\]/g, /\b(?:int|bool|string)FromEnv\(\s*['"]([A-Z][A-Z0-9_]*)['"]/g]) {
    for (const m of source.matchAll(pattern)) names.add(m[1]);
  }
  return [...names];
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
}

describe('README.md', () => {
  it('its configuration table lists every environment variable lib/config.ts and cli/ read', () => {
    const files = [path.join(root, 'lib', 'config.ts'), ...sourceFiles(path.join(root, 'cli'))];
    const read = [...new Set(files.flatMap(environmentVariablesReadBy))].sort();
    assert.ok(read.includes('DATABASE_URL') && read.includes('TEMPORAL_ADDRESS'), `found ${read.join(', ')}`);
    const missing = read.filter((name) => !readme.includes(`| \`${name}\` |`));
    assert.deepEqual(missing, [], 'add a row to the README configuration table for each');
  });

  it('keeps the sections a new user looks for', () => {
    for (const heading of ['## Quick start', '## Prerequisites', '## Configuration', '## The first admin key', '## First jobset', '## Running the parts separately', '## Docker Compose']) {
      assert.ok(readme.includes(`\n${heading}\n`), `missing ${heading}`);
    }
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /npx ringmaster api-key create --name admin --role admin/);
    assert.match(readme, /http:\/\/127\.0\.0\.1:8233/);
  });

  it('docker-compose.yml passes only variables the configuration table documents', () => {
    const compose = fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    const block = compose.slice(compose.indexOf('x-ringmaster-env:'), compose.indexOf('\nservices:'));
    const names = [...block.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]);
    assert.ok(names.includes('DATABASE_URL') && names.includes('TEMPORAL_ADDRESS'), `found ${names.join(', ')}`);
    const undocumented = names.filter((name) => !readme.includes(`| \`${name}\` |`));
    assert.deepEqual(undocumented, []);
  });
});
