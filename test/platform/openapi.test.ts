import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { allRoutes } from '../../api/routes';
import type { RouteDef } from '../../api/route';
import { startTestStack, type TestStack } from '../support/stack';

/** The circus reference's 104 routes (a copy of the seed's endpoints.tsv): method, path, summary, responses. */
interface SeedEndpoint {
  method: string;
  path: string;
  responses: number[];
}
function seedEndpoints(): SeedEndpoint[] {
  const lines = fs.readFileSync(path.join(__dirname, 'circus-endpoints.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const [method, p, , responses] = line.split('\t');
    return { method, path: p, responses: responses.split(',').map((s) => Number(s.trim())) };
  });
}

/**
 * Routes Ringmaster serves beyond the circus reference. A route in the table that is neither in the
 * reference nor here fails the test: add it here on purpose, or fix its method or path.
 */
const RINGMASTER_ADDITIONS = new Set([
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/logout',
  // nix-channel --update fetches the channel URL itself before <URL>/nixexprs.tar.xz.
  'GET /channel/{name}',
]);

type OpenApiDocument = {
  openapi: string;
  paths: Record<string, Record<string, { operationId: string; parameters?: Array<{ name: string; in: string }>; requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
};

/** Whether a schema uses OpenAPI 3.0's `nullable: true` anywhere (ajv accepts it, OpenAPI 3.1 does not have it). */
function usesNullableKeyword(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(usesNullableKeyword);
  if (!schema || typeof schema !== 'object') return false;
  return Object.entries(schema).some(([k, v]) => (k === 'nullable' && typeof v === 'boolean') || usesNullableKeyword(v));
}

const key = (r: { method: string; path: string }) => `${r.method.toUpperCase()} ${r.path}`;

describe('the OpenAPI document', () => {
  let stack: TestStack;
  let document: OpenApiDocument;
  let routes: RouteDef[];
  before(async () => {
    stack = await startTestStack({ worker: false });
    const res = await stack.request<OpenApiDocument>('GET', '/api/v1/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    document = res.body;
    routes = allRoutes();
  });
  after(async () => stack?.stop());

  it('is valid OpenAPI 3.1 by the OpenAPI schema validator', async () => {
    // An ES module: a real dynamic import from this CommonJS test.
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const validator = new Validator();
    const result = await validator.validate(document);
    assert.deepEqual(result.errors, undefined, `validator errors: ${JSON.stringify(result.errors, null, 2)}`);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
  });

  it('every schema in it is a valid JSON Schema 2020-12 with no OpenAPI 3.0 leftovers such as nullable', () => {
    const ajv = new Ajv2020({ strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allowUnionTypes: true, validateFormats: true });
    addFormats(ajv);
    const problems: string[] = [];
    const check = (where: string, schema: unknown) => {
      if (usesNullableKeyword(schema)) problems.push(`${where}: uses "nullable" (OpenAPI 3.0); use type: [..., "null"] or anyOf`);
      if (!ajv.validateSchema(schema as object)) problems.push(`${where}: ${ajv.errorsText(ajv.errors)}`);
      try {
        ajv.compile(schema as object); // strict mode: unknown keywords and formats are errors
      } catch (err) {
        problems.push(`${where}: ${(err as Error).message}`);
      }
    };
    for (const [p, operations] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        const at = `${method.toUpperCase()} ${p}`;
        for (const param of op.parameters ?? []) check(`${at} parameter ${param.name}`, (param as { schema?: unknown }).schema);
        for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) check(`${at} request body ${type}`, media.schema);
        for (const [status, response] of Object.entries(op.responses)) {
          for (const [type, media] of Object.entries(response.content ?? {})) check(`${at} response ${status} ${type}`, media.schema);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('operationIds are unique and every path parameter is declared exactly as the template names it', () => {
    const seen = new Map<string, string>();
    const problems: string[] = [];
    for (const [p, operations] of Object.entries(document.paths)) {
      assert.doesNotMatch(p, /\/:/, `${p} uses :param; OpenAPI paths use {param}`);
      const templated = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(operations)) {
        const at = `${method.toUpperCase()} ${p}`;
        if (seen.has(op.operationId)) problems.push(`${at}: operationId ${op.operationId} also used by ${seen.get(op.operationId)}`);
        seen.set(op.operationId, at);
        const declared = (op.parameters ?? []).filter((param) => param.in === 'path').map((param) => param.name).sort();
        if (JSON.stringify(declared) !== JSON.stringify(templated)) problems.push(`${at}: path parameters ${JSON.stringify(declared)} but the template has ${JSON.stringify(templated)}`);
      }
    }
    // OpenAPI: templated paths that differ only in parameter names are the same path.
    const shapes = new Map<string, string>();
    for (const p of Object.keys(document.paths)) {
      const shape = p.replace(/\{\w+\}/g, '{}');
      if (shapes.has(shape)) problems.push(`${p} and ${shapes.get(shape)} are the same path with different parameter names`);
      shapes.set(shape, p);
    }
    assert.deepEqual(problems, []);
  });

  it('documents every route of the route table with its method', () => {
    assert.ok(routes.length > 0);
    const missing = routes.filter((r) => !document.paths[r.path]?.[r.method.toLowerCase()]).map(key);
    assert.deepEqual(missing, []);
    const documented = Object.entries(document.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    assert.equal(documented.length, routes.length, 'the document has exactly the routes of the table');
  });

  it('every route is one of the circus reference\'s 104 or an explicitly allowed Ringmaster addition', () => {
    const seed = seedEndpoints();
    assert.equal(seed.length, 104);
    const reference = new Set(seed.map(key));
    const unknown = routes.map(key).filter((k) => !reference.has(k) && !RINGMASTER_ADDITIONS.has(k));
    assert.deepEqual(unknown, [], 'routes neither in the circus reference nor in RINGMASTER_ADDITIONS (test/platform/openapi.test.ts)');
    const duplicates = routes.map(key).filter((k, i, all) => all.indexOf(k) !== i);
    assert.deepEqual(duplicates, [], 'a method and path declared twice');
  });

  it('a route from the reference declares every status the reference lists for it', () => {
    const byKey = new Map(seedEndpoints().map((e) => [key(e), e]));
    const problems: string[] = [];
    for (const route of routes) {
      const expected = byKey.get(key(route));
      if (!expected) continue;
      const declared = Object.keys(route.responses).map(Number);
      const lacking = expected.responses.filter((s) => !declared.includes(s));
      if (lacking.length) problems.push(`${key(route)} lacks ${lacking.join(', ')} (declares ${declared.join(', ')})`);
    }
    assert.deepEqual(problems, []);
  });
});
