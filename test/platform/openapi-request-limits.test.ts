import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allRoutes } from '../../api/routes';
import { openApiDocument } from '../../api/openapi';
import { INT4_MAX, INT4_MIN } from '../../api/request-schema';

type Schema = Record<string, any>;
type Operation = { operationId: string; parameters: Array<{ name: string; in: string; schema: Schema }>; requestBody?: { content: Record<string, { schema: Schema }> }; responses: Record<string, { links?: Record<string, { operationId: string; parameters: Record<string, string> }> }>; security?: unknown };

const doc = openApiDocument(allRoutes()) as { paths: Record<string, Record<string, Operation>> };
const operations = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));

/** Every string and integer schema inside a request schema, with where it sits. */
function leaves(schema: unknown, where: string, out: Array<{ where: string; schema: Schema }> = []): Array<{ where: string; schema: Schema }> {
  if (Array.isArray(schema)) schema.forEach((s, i) => leaves(s, `${where}[${i}]`, out));
  else if (schema && typeof schema === 'object') {
    const s = schema as Schema;
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.includes('string') || types.includes('integer')) out.push({ where, schema: s });
    for (const [k, v] of Object.entries(s)) if (v && typeof v === 'object') leaves(v, `${where}.${k}`, out);
  }
  return out;
}

describe('the request schemas of the OpenAPI document', () => {
  it('let no string carry a NUL character or run unbounded, and no integer leave PostgreSQL int4', () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations) {
      const inputs = [...op.parameters.map((p) => [`${p.in}.${p.name}`, p.schema] as const), ...Object.values(op.requestBody?.content ?? {}).map((c) => ['body', c.schema] as const)];
      for (const [name, schema] of inputs) {
        for (const { where, schema: s } of leaves(schema, name)) {
          const types = Array.isArray(s.type) ? s.type : [s.type];
          const at = `${method} ${path} ${where}`;
          if (types.includes('string') && !s.enum && !s.const) {
            if (!s.format && typeof s.pattern !== 'string') problems.push(`${at}: string without a pattern`);
            if (!s.format && typeof s.maxLength !== 'number') problems.push(`${at}: string without maxLength`);
          }
          if (types.includes('integer') && !s.enum) {
            if (!(s.minimum >= INT4_MIN) || !(s.maximum <= INT4_MAX)) problems.push(`${at}: integer outside int4`);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('document 400 for every input, 401 unless always public, 404 for every path with parameters, 413 for bodies', () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations) {
      const has = (s: number) => op.responses[String(s)] !== undefined;
      if ((op.parameters.length > 0 || op.requestBody) && !has(400)) problems.push(`${method} ${path}: no 400`);
      if (/\{\w+\}/.test(path) && !has(404)) problems.push(`${method} ${path}: no 404`);
      if (op.requestBody && !has(413)) problems.push(`${method} ${path}: no 413`);
      if (op.security && !(has(401) && has(403))) problems.push(`${method} ${path}: no 401/403`);
    }
    assert.deepEqual(problems, []);
    assert.ok(doc.paths['/api/v1/projects/{id}'].get.responses['400'], 'a malformed UUID is a documented 400');
  });

  it('link a created project to the routes that take its ID, passing path parameters on by position', () => {
    const links = doc.paths['/api/v1/projects'].post.responses['200'].links ?? {};
    assert.deepEqual(links.getApiV1ProjectsById?.parameters, { id: '$response.body#/id' });
    assert.deepEqual(links.getApiV1ProjectsByProjectIdJobsetsById?.parameters, { project_id: '$response.body#/id' });
    assert.deepEqual(links.postApiV1WebhooksByProjectIdGithub?.parameters, { project_id: '$response.body#/id' });
    const jobsetLinks = doc.paths['/api/v1/projects/{id}/jobsets'].post.responses['200'].links ?? {};
    assert.deepEqual(jobsetLinks.postApiV1ProjectsByProjectIdJobsetsByJobsetIdInputs?.parameters, { project_id: '$request.path.id', jobset_id: '$response.body#/id' });
  });

  it('link a page or a list to the routes that take the ID of its first item', () => {
    const builds = doc.paths['/api/v1/builds'].get.responses['200'].links ?? {};
    assert.deepEqual(builds.getApiV1BuildsById?.parameters, { id: '$response.body#/items/0/id' });
    assert.deepEqual(builds.postApiV1BuildsByIdRestart?.parameters, { id: '$response.body#/items/0/id' });
    const projects = doc.paths['/api/v1/projects'].get.responses['200'].links ?? {};
    assert.deepEqual(projects.getApiV1ProjectsByProjectIdJobsetsById?.parameters, { project_id: '$response.body#/items/0/id' });
  });

  it('describe each Server-Sent Event of the live log, not only the stream as text', () => {
    const media = (doc.paths['/api/v1/builds/{id}/log/stream'].get.responses['200'] as any).content['text/event-stream'];
    assert.equal(media.itemSchema, undefined, 'itemSchema is OpenAPI 3.2; the document is 3.1');
    assert.deepEqual(media.schema.required, ['data']);
  });
});
