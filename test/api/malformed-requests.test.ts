import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { sendRaw } from '../support/raw-http';

/** Sends raw bytes (invalid UTF-8 cannot go through a JS string) and reads the JSON answer. */
async function sendBytes(url: string, method: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const { status, text } = await sendRaw(url, method, body, headers);
  return { status, body: text ? JSON.parse(text) : undefined };
}

/** What each case survived, printed at the end for the note. */
const survived: string[] = [];
function record(what: string, status: number): void {
  survived.push(`${what} → ${status}`);
}

describe('oversized and malformed requests', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => {
    console.log(`malformed requests survived (none a 500):\n  ${survived.join('\n  ')}`);
    await stack?.stop();
  });

  const projectCount = async () => Number((await stack.db('projects').count<{ n: string }[]>('* as n'))[0].n);

  it('a body over the 10 MiB limit is a 413 naming the body, and creates nothing', async () => {
    const description = 'x'.repeat(11 * 1024 * 1024);
    const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: 'big', repository_url: '/tmp/r', description } });
    record('an 11 MiB body', res.status);
    assert.equal(res.status, 413, res.text.slice(0, 300));
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.equal(res.body.details[0].field, 'body');
    assert.equal(await projectCount(), 0);
  });

  it('JSON nested 100,000 deep is a 400 naming the body, and so is JSON nested 65 deep', async () => {
    for (const depth of [100_000, 65]) {
      const raw = '{"name":"deep","repository_url":"/tmp/r","description":' + '['.repeat(depth) + ']'.repeat(depth) + '}';
      const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, rawBody: raw, headers: { 'content-type': 'application/json' } });
      record(`JSON nested ${depth} deep`, res.status);
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(res.body.details[0].field, 'body');
      assert.match(res.body.details[0].message, /nest/);
    }
    assert.equal(await projectCount(), 0);
  });

  it('a body that is not valid UTF-8 is a 400 naming the body', async () => {
    const bytes = Buffer.concat([Buffer.from('{"name":"p","repository_url":"/tmp/'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
    const res = await sendBytes(`${stack.url}/api/v1/projects`, 'POST', bytes, { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' });
    record('invalid UTF-8 in the body', res.status);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.details, [{ field: 'body', message: 'is not valid UTF-8' }]);
    assert.equal(await projectCount(), 0);
  });

  it('a 100 kB path segment is a 400 naming the parameter', async () => {
    const res = await stack.request('GET', `/api/v1/projects/${'a'.repeat(100 * 1024)}`, { key: stack.adminKey });
    record('a 100 kB path segment', res.status);
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.equal(res.body.details[0].field, 'params.id');
  });

  it('a limit of a million is capped to the documented 1,000', async () => {
    const res = await stack.request('GET', '/api/v1/projects?limit=1000000', { key: stack.adminKey });
    record('limit=1000000', res.status);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.limit, 1000);
    const doc = (await stack.request('GET', '/api/v1/openapi.json')).body;
    const limit = doc.paths['/api/v1/projects'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    assert.match(limit.schema.description, /capped to 1000/);
  });

  it('a negative offset, an out-of-range integer and a NUL in a query string are 400s naming the parameter', async () => {
    for (const [query, field] of [['offset=-1', 'query.offset'], ['offset=2147483648', 'query.offset'], ['q=a%00b', 'query.q']] as const) {
      const res = await stack.request('GET', `/api/v1/projects?${query}`, { key: stack.adminKey });
      record(query, res.status);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.details[0].field, field);
    }
  });

  it('a NUL anywhere in a body, an over-long string and an out-of-range integer are 400s naming the field, and write nothing', async () => {
    const base = { name: 'p', repository_url: '/tmp/r' };
    const cases: Array<[string, unknown, string]> = [
      ['a NUL in a nested field', { ...base, description: 'a\u0000b' }, 'body.description'],
      ['a NUL in a key', { ...base, ['x\u0000']: 1 }, 'body'],
      ['a 20,000-character description', { ...base, description: 'd'.repeat(20_000) }, 'body.description'],
    ];
    for (const [what, body, field] of cases) {
      const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body });
      record(what, res.status);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.details[0].field, field);
    }
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: base });
    assert.equal(project.status, 200, project.text);
    const jobset = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets`, {
      key: stack.adminKey,
      body: { name: 'main', nix_expression: 'release.nix', keep_nr: 2147483648 },
    });
    record('keep_nr = 2^31', jobset.status);
    assert.equal(jobset.status, 400, jobset.text);
    assert.equal(jobset.body.details[0].field, 'body.keep_nr');
    assert.equal(Number((await stack.db('jobsets').count<{ n: string }[]>('* as n'))[0].n), 0);
  });

  it('an invalid UUID is a 400 naming the parameter, and the OpenAPI document says so', async () => {
    const res = await stack.request('GET', '/api/v1/projects/not-a-uuid', { key: stack.adminKey });
    record('an invalid UUID', res.status);
    assert.equal(res.status, 400);
    assert.equal(res.body.details[0].field, 'params.id');
    const doc = (await stack.request('GET', '/api/v1/openapi.json')).body;
    assert.ok(doc.paths['/api/v1/projects/{id}'].get.responses['400']);
  });
});
