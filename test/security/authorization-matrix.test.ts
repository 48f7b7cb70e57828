import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation } from '../support/seed';
import { signIn, sessionHeaders, type BrowserSession } from '../support/session';
import { snapshotDatabase } from '../support/database-snapshot';
import { exampleFor } from '../support/schema-example';
import { allRoutes } from '../../api/routes/index';
import { compileValidator } from '../../api/validation';
import { ROLES, type Role, type RouteDef } from '../../api/route';

/**
 * The authorization matrix, generated from the route table: every mutating route and every read that
 * is not public is called without credentials, with a revoked key, with a key of each role that may
 * not call it, and (mutations) with a session cookie but no CSRF header. Each call is refused with
 * 401 or 403, and leaves every table of the database exactly as it was.
 *
 * Only `always-public` routes are left out (health, metrics, OpenAPI, logins, signed webhooks): they
 * are open by declaration. A route whose path parameters or body this file cannot fill fails.
 */
const routes = allRoutes();
const guarded = routes.filter((r) => r.access !== 'always-public' && (r.method !== 'GET' || r.access !== 'public'));
const isMutation = (r: RouteDef) => r.method !== 'GET';
const rolesRefused = (r: RouteDef): Role[] => (r.access === 'user' || r.access === 'public' || r.access === 'always-public' ? [] : ROLES.filter((role) => role !== 'admin' && role !== r.access));

/** A key's use is recorded (last_used_at) even when the call is then refused; that column alone is left out. */
const SNAPSHOT_IGNORES = { api_keys: ['last_used_at'] };

/** Which fixture a path parameter takes: `{x_id}` by its name, `{id}` and others by the path segment before it. */
const FIXTURE_OF_SEGMENT: Record<string, string> = {
  projects: 'project', jobsets: 'jobset', inputs: 'input', builds: 'build', 'api-keys': 'apiKey', users: 'user',
  'starred-jobs': 'starredJob', news: 'news', builders: 'builder', sessions: 'machine', 'notification-tasks': 'notificationTask',
  channels: 'channel', promote: 'evaluation', 'pinned-builds': 'build', webhooks: 'webhook', keep: 'keepValue',
};

function concretePath(route: RouteDef, fixtures: Record<string, string>): string {
  const segments = route.path.split('/');
  return segments
    .map((segment, i) => {
      const m = /^\{(\w+)\}$/.exec(segment);
      if (!m) return segment;
      const fixture = FIXTURE_OF_SEGMENT[segments[i - 1]];
      const value = fixture === undefined ? undefined : fixtures[fixture];
      if (value === undefined) throw new Error(`${route.method} ${route.path}: no fixture fills {${m[1]}} after "${segments[i - 1]}"; add one to this test`);
      return encodeURIComponent(value);
    })
    .join('/');
}

describe('the authorization matrix of the route table', () => {
  let stack: TestStack;
  let fixtures: Record<string, string>;
  let bodyIds: Record<string, string>;
  let revokedKey: string;
  let roleKeys: Record<Role, string>;
  let adminSession: BrowserSession;

  before(async () => {
    stack = await startTestStack({ worker: false });
    const admin = { key: stack.adminKey };
    const created = async (method: string, p: string, body: unknown) => {
      const res = await stack.request(method, p, { ...admin, body });
      assert.ok(res.status < 300, `${method} ${p} answered ${res.status}: ${res.text}`);
      return res.body;
    };
    const project = await created('POST', '/api/v1/projects', { name: 'matrix', repository_url: 'file:///srv/matrix' });
    const jobset = await created('POST', `/api/v1/projects/${project.id}/jobsets`, { name: 'main', nix_expression: 'release.nix' });
    const input = await created('POST', `/api/v1/projects/${project.id}/jobsets/${jobset.id}/inputs`, { name: 'src', input_type: 'string', value: 'x' });
    const webhook = await created('POST', `/api/v1/projects/${project.id}/webhooks`, { forge_type: 'github', secret: 'matrix-webhook-secret' });
    const channel = await created('POST', '/api/v1/channels', { project_id: project.id, jobset_id: jobset.id, name: 'matrix-channel' });
    const news = await created('POST', '/api/v1/news', { title: 'matrix', content: 'news' });
    const user = await created('POST', '/api/v1/users', { username: 'matrix-admin', email: 'm@example.org', password: 'matrix-password-1', role: 'admin' });
    const apiKey = await created('POST', '/api/v1/api-keys', { name: 'matrix-victim', role: 'read-only' });
    const builder = await created('POST', '/api/v1/admin/builders', { name: 'matrix-builder', ssh_uri: 'ssh://builder@127.0.0.1', systems: ['x86_64-linux'] });
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    const build = await seedBuild(stack.db, { evaluation });
    const [starred] = await stack.db('starred_jobs').insert({ user_id: user.id, project_id: project.id, jobset_id: jobset.id, job_name: build.job_name }).returning('id');
    const [task] = await stack.db('notification_tasks').insert({ notification_type: 'email', payload: JSON.stringify({}) }).returning('id');
    await stack.db('builder_sessions').insert({ machine_id: 'matrix-machine', name: 'matrix-builder' });
    fixtures = {
      project: project.id, jobset: jobset.id, input: input.id, webhook: webhook.id, channel: channel.id, news: String(news.id), user: user.id,
      apiKey: apiKey.id, builder: builder.id, evaluation: evaluation.id, build: build.id, starredJob: starred.id, notificationTask: task.id,
      machine: 'matrix-machine', keepValue: 'true',
    };
    bodyIds = { project_id: project.id, jobset_id: jobset.id };

    const revoked = await created('POST', '/api/v1/api-keys', { name: 'matrix-revoked', role: 'admin' });
    const revoke = await stack.request('DELETE', `/api/v1/api-keys/${revoked.id}`, admin);
    assert.equal(revoke.status, 204, revoke.text);
    revokedKey = revoked.key;
    roleKeys = Object.fromEntries(await Promise.all(ROLES.map(async (role) => [role, await stack.keyFor(role)]))) as Record<Role, string>;
    adminSession = await signIn(stack, 'matrix-admin', 'matrix-password-1');
  });
  after(async () => stack?.stop());

  it('covers every route that is not declared always-public, and no mutation is merely public', () => {
    assert.ok(guarded.length > 40, `only ${guarded.length} guarded routes`);
    const publicMutations = routes.filter((r) => isMutation(r) && r.access === 'public').map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(publicMutations, [], 'a mutation must name who may call it (or be always-public on purpose)');
  });

  for (const route of guarded) {
    const name = `${route.method} ${route.path} (${route.access})`;
    describe(name, () => {
      let url: string;
      let body: unknown;
      before(() => {
        url = concretePath(route, fixtures);
        if (isMutation(route) && route.body) {
          body = exampleFor(route.body, bodyIds);
          // The example must itself be valid, or a refusal could come from validation, not from authorization.
          assert.doesNotThrow(() => compileValidator('body', route.body!)(body), `the example body ${JSON.stringify(body)} is not valid`);
        }
      });

      const refused = async (expected: 401 | 403, headers: Record<string, string>) => {
        const beforeCall = await snapshotDatabase(stack.db, SNAPSHOT_IGNORES);
        const res = await stack.request(route.method, url, { headers, body: isMutation(route) ? (body ?? {}) : undefined });
        assert.equal(res.status, expected, `${route.method} ${url} answered ${res.status}: ${res.text}`);
        assert.equal(res.body.error_code, expected === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
        assert.deepEqual(await snapshotDatabase(stack.db, SNAPSHOT_IGNORES), beforeCall, `${route.method} ${url} changed the database`);
      };

      it('without credentials is a 401', () => refused(401, {}));
      it('with a revoked key is a 401', () => refused(401, { authorization: `Bearer ${revokedKey}` }));
      for (const role of rolesRefused(route)) {
        it(`with a ${role} key is a 403`, () => refused(403, { authorization: `Bearer ${roleKeys[role]}` }));
      }
      if (isMutation(route)) {
        it('with a session cookie but no CSRF header is a 403', () => refused(403, sessionHeaders(adminSession, false)));
      }
    });
  }
});
