import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forgeRepositoryOf, forgeStatusRequest, planNotification, signatureOf, stateOf, type NotificationEvent } from '../../lib/notifications/messages';
import { duplicateTargetNames, notificationTargets, targetWants } from '../../lib/notifications/targets';

const event = (fields: Partial<NotificationEvent> = {}): NotificationEvent => ({
  kind: 'build_finished',
  project: 'hello',
  jobset: 'main',
  job: 'pkgs.hello',
  evaluationId: 'e1',
  buildId: 'b1',
  commit: 'a'.repeat(40),
  status: 'succeeded',
  system: 'x86_64-linux',
  errorMessage: null,
  repositoryUrl: 'https://github.com/acme/hello.git',
  ...fields,
});

describe('notification messages', () => {
  it('the webhook signature is GitHub-style sha256=<hex HMAC-SHA256 of the body>', () => {
    // GitHub's documented test vector.
    assert.equal(signatureOf("It's a Secret to Everybody", 'Hello, World!'), 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17');
  });

  it('started events are pending; finished ones success, failure or error', () => {
    assert.equal(stateOf('build_started', 'running'), 'pending');
    assert.equal(stateOf('evaluation_started', 'running'), 'pending');
    assert.equal(stateOf('build_finished', 'succeeded'), 'success');
    assert.equal(stateOf('evaluation_finished', 'completed'), 'success');
    assert.equal(stateOf('build_finished', 'dependency_failed'), 'failure');
    assert.equal(stateOf('build_finished', 'cancelled'), 'error');
  });

  it('reads owner/repo from https, ssh and scp-like repository URLs, and nothing from local paths', () => {
    assert.equal(forgeRepositoryOf('https://github.com/acme/hello.git'), 'acme/hello');
    assert.equal(forgeRepositoryOf('ssh://git@gitea.example.org:2222/acme/hello'), 'acme/hello');
    assert.equal(forgeRepositoryOf('git@gitlab.com:group/sub/hello.git'), 'group/sub/hello');
    assert.equal(forgeRepositoryOf('file:///srv/repo'), undefined);
    assert.equal(forgeRepositoryOf('/srv/repo'), undefined);
  });

  it('a build status has context ringmaster/<jobset>/<job>, a target_url to the build, and an ordering key per (target, commit, context)', () => {
    const planned = planNotification({ type: 'github_status', name: 'github', token: 't' }, event(), 'https://ci.example.org/')!;
    assert.equal(planned.payload.context, 'ringmaster/main/pkgs.hello');
    assert.equal(planned.payload.target_url, 'https://ci.example.org/api/v1/builds/b1');
    assert.equal(planned.payload.repository, 'acme/hello');
    assert.equal(planned.orderKey, `github\n${'a'.repeat(40)}\nringmaster/main/pkgs.hello`);
    assert.equal(JSON.stringify(planned.payload).includes('"t"'), false, 'no token in the payload');
  });

  it('a commit status needs a commit and a repository', () => {
    assert.equal(planNotification({ type: 'github_status', name: 'g' }, event({ commit: null }), undefined), undefined);
    assert.equal(planNotification({ type: 'github_status', name: 'g' }, event({ repositoryUrl: 'file:///srv/x' }), undefined), undefined);
    assert.ok(planNotification({ type: 'github_status', name: 'g', repositories: { hello: 'acme/other' } }, event({ repositoryUrl: 'file:///srv/x' }), undefined));
  });

  it('GitHub, Gitea and GitLab get their own paths, auth headers and state names', () => {
    const p = planNotification({ type: 'gitlab_status', name: 'gl' }, event({ kind: 'build_started', status: 'running', repositoryUrl: 'https://gitlab.com/group/sub/hello' }), undefined)!.payload;
    const gitlab = forgeStatusRequest('gitlab_status', 'https://gitlab.example/api/v4', 'glpat', p);
    assert.equal(gitlab.url, `https://gitlab.example/api/v4/projects/group%2Fsub%2Fhello/statuses/${'a'.repeat(40)}`);
    assert.equal(gitlab.headers['private-token'], 'glpat');
    assert.equal(JSON.parse(gitlab.body).state, 'running');
    assert.equal(JSON.parse(gitlab.body).name, 'ringmaster/main/pkgs.hello');
    const github = forgeStatusRequest('github_status', undefined, 'ghp', { ...p, repository: 'acme/hello', state: 'failure' });
    assert.equal(github.url, `https://api.github.com/repos/acme/hello/statuses/${'a'.repeat(40)}`);
    assert.equal(github.headers.authorization, 'Bearer ghp');
    assert.equal(JSON.parse(github.body).state, 'failure');
    const gitea = forgeStatusRequest('gitea_status', 'https://codeberg.org/api/v1/', 'tok', { ...p, repository: 'acme/hello', state: 'success' });
    assert.equal(gitea.url, `https://codeberg.org/api/v1/repos/acme/hello/statuses/${'a'.repeat(40)}`);
    assert.equal(gitea.headers.authorization, 'token tok');
    assert.equal(JSON.parse(gitea.body).context, 'ringmaster/main/pkgs.hello');
  });

  it("circus's flat keys and the targets list both declare targets; names must be unique", () => {
    const section = {
      webhook_urls: ['https://hooks.example.org/a'],
      webhook_secret: 's',
      github_token: 'ghp',
      targets: [{ type: 'slack' as const, webhook_url: 'https://hooks.slack.com/services/x' }, { type: 'webhook' as const, name: 'github', url: 'https://x.example' }],
    };
    assert.deepEqual(notificationTargets(section).map((t) => t.name), ['webhook-url-1', 'github', 'slack-1', 'github']);
    assert.deepEqual(duplicateTargetNames(section), ['github']);
  });

  it('email gets build_finished by default; events and projects narrow what a target gets', () => {
    const email = { type: 'email' as const, name: 'm', smtp: { host: 'h' }, from: 'ci@x', to: ['a@x'] };
    assert.equal(targetWants(email, 'build_started', 'hello'), false);
    assert.equal(targetWants(email, 'build_finished', 'hello'), true);
    assert.equal(targetWants({ type: 'webhook', name: 'w', url: 'u', projects: ['other'] }, 'build_finished', 'hello'), false);
  });
});
