import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import { Client, Connection } from '@temporalio/client';
import { startTestStack, type TestStack } from '../support/stack';
import { eventually } from '../support/pipeline';
import { RecordingServer } from '../support/recording-server';
import { configureNotifications, notificationDeps, PUBLIC_URL, raiseBuildEvent, seedRunningBuild, taskRows, waitForTasks } from './support';
import { buildEvent } from '../../activities/notifications/events';
import { enqueueNotifications } from '../../activities/notifications/enqueue';
import { planNotification } from '../../lib/notifications/messages';
import { notificationTargets } from '../../lib/notifications/targets';
import { insertNotificationTasks } from '../../lib/notifications/task-records';
import { RingmasterWorkflows } from '../../lib/workflow-client';
import { startNotificationDelivery } from '../../lib/notifications/start-delivery';
import { DELIVERIES_PER_RUN } from '../../workflows/notification';

/**
 * Notifications delivered by real Temporal workflows from a real worker, recorded in PostgreSQL, to
 * real HTTP servers started here (standing in for GitHub, Gitea, GitLab, Slack and a webhook
 * receiver) and to a real SMTP server.
 */
describe('notifications as durable workflows', () => {
  let stack: TestStack;
  let forge: RecordingServer;
  before(async () => {
    stack = await startTestStack({ worker: true });
    forge = await new RecordingServer().start();
  });
  after(async () => {
    await stack?.stop();
    await forge?.stop();
  });

  it('a build that starts and succeeds sets pending then success on GitHub, Gitea and GitLab, with context ringmaster/<jobset>/<job> and a target_url to the build', async () => {
    await configureNotifications(stack, {
      retry_backoff_seconds: 1,
      targets: [
        { type: 'github_status', name: 'gh', api_url: `${forge.url}/github`, token: 'ghp_status_token' },
        { type: 'gitea_status', name: 'gitea', api_url: `${forge.url}/gitea/api/v1`, token: 'gitea_status_token' },
        { type: 'gitlab_status', name: 'gl', api_url: `${forge.url}/gitlab/api/v4`, token: 'glpat_status_token' },
      ],
    });
    const { evaluation, build } = await seedRunningBuild(stack, 'pkgs.hello');
    assert.equal(await raiseBuildEvent(stack, build.id, 'build_started'), 3);
    await waitForTasks(stack, { target_name: 'gh', event: 'build_started' }, ['completed', 'superseded']);
    assert.equal(await raiseBuildEvent(stack, build.id, 'build_finished', 'succeeded'), 3);
    for (const name of ['gh', 'gitea', 'gl']) await waitForTasks(stack, { target_name: name }, ['completed', 'superseded']);

    const sha = evaluation.commit_hash;
    const of = (prefix: string) => forge.delivered().filter((r) => r.path.startsWith(prefix));
    const github = of('/github/');
    assert.deepEqual(github.map((r) => r.path), [`/github/repos/acme/hello/statuses/${sha}`, `/github/repos/acme/hello/statuses/${sha}`]);
    assert.deepEqual(github.map((r) => r.json.state), ['pending', 'success']);
    assert.equal(github[1].json.context, 'ringmaster/main/pkgs.hello');
    assert.equal(github[1].json.target_url, `${PUBLIC_URL}/api/v1/builds/${build.id}`);
    assert.equal(github[1].headers.authorization, 'Bearer ghp_status_token');

    const gitea = of('/gitea/');
    assert.deepEqual(gitea.map((r) => r.path), [`/gitea/api/v1/repos/acme/hello/statuses/${sha}`, `/gitea/api/v1/repos/acme/hello/statuses/${sha}`]);
    assert.deepEqual(gitea.map((r) => r.json.state), ['pending', 'success']);
    assert.equal(gitea[0].headers.authorization, 'token gitea_status_token');

    const gitlab = of('/gitlab/');
    assert.deepEqual(gitlab.map((r) => r.path), [`/gitlab/api/v4/projects/acme%2Fhello/statuses/${sha}`, `/gitlab/api/v4/projects/acme%2Fhello/statuses/${sha}`]);
    assert.deepEqual(gitlab.map((r) => r.json.state), ['running', 'success']);
    assert.equal(gitlab[1].json.name, 'ringmaster/main/pkgs.hello');
    assert.equal(gitlab[1].headers['private-token'], 'glpat_status_token');
  });

  it('cancelling a build whose workflow has not started yet still sends its final status (error) to the forge', async () => {
    await configureNotifications(stack, { retry_backoff_seconds: 1, targets: [{ type: 'github_status', name: 'early', api_url: `${forge.url}/early`, token: 't' }] });
    // A recorded build with no workflow yet: its evaluation starts the workflows after completing.
    const { evaluation, build } = await seedRunningBuild(stack, 'pkgs.early');
    const cancel = await stack.request('POST', `/api/v1/builds/${build.id}/cancel`, { key: stack.adminKey, body: {} });
    assert.equal(cancel.status, 200, cancel.text);
    await waitForTasks(stack, { target_name: 'early', event: 'build_finished' }, ['completed']);
    const delivered = forge.delivered().filter((r) => r.path.startsWith('/early/'));
    assert.deepEqual(delivered.map((r) => [r.path, r.json.state, r.json.context]), [[`/early/repos/acme/hello/statuses/${evaluation.commit_hash}`, 'error', 'ringmaster/main/pkgs.early']]);
  });

  it('a generic webhook is JSON signed with HMAC-SHA256 that the receiver verifies over the raw body', async () => {
    const receiver = await new RecordingServer().start();
    try {
      const secret = `whsec-${crypto.randomBytes(8).toString('hex')}`;
      await configureNotifications(stack, { targets: [{ type: 'webhook', name: 'hook', url: `${receiver.url}/hook`, secret }] });
      const { build } = await seedRunningBuild(stack);
      await raiseBuildEvent(stack, build.id, 'build_finished', 'failed');
      const [task] = await waitForTasks(stack, { target_name: 'hook' }, ['completed']);
      const [request] = receiver.delivered();
      const expected = `sha256=${crypto.createHmac('sha256', secret).update(request.body).digest('hex')}`;
      const sent = String(request.headers['x-ringmaster-signature-256']);
      assert.ok(crypto.timingSafeEqual(Buffer.from(sent), Buffer.from(expected)), 'the signature verifies');
      const forged = `sha256=${crypto.createHmac('sha256', 'wrong secret').update(request.body).digest('hex')}`;
      assert.notEqual(sent, forged);
      assert.equal(request.headers['x-ringmaster-event'], 'build_finished');
      assert.equal(request.headers['x-ringmaster-delivery'], task.id);
      assert.equal(request.json.build_id, build.id);
      assert.equal(request.json.status, 'failed');
      assert.equal(request.json.state, 'failure');
      assert.equal(request.json.context, `ringmaster/main/${build.job_name}`);
    } finally {
      await receiver.stop();
    }
  });

  it('a Slack incoming webhook gets a text message', async () => {
    const slack = await new RecordingServer().start();
    try {
      await configureNotifications(stack, { targets: [{ type: 'slack', name: 'slack', webhook_url: `${slack.url}/services/T000/B000/XXXX` }] });
      const { build } = await seedRunningBuild(stack, 'docs');
      await raiseBuildEvent(stack, build.id, 'build_finished', 'succeeded');
      await waitForTasks(stack, { target_name: 'slack' }, ['completed']);
      const [request] = slack.delivered();
      assert.equal(request.path, '/services/T000/B000/XXXX');
      assert.match(request.json.text, /:white_check_mark: .*\/main\/docs: succeeded/);
      assert.match(request.json.text, /<https:\/\/ci\.example\.org\/api\/v1\/builds\/[0-9a-f-]+\|details>/);
    } finally {
      await slack.stop();
    }
  });

  it('an endpoint that fails twice gets the status on the third attempt, after backing off 1 s then 2 s', async () => {
    const flaky = await new RecordingServer({ failFirst: 2 }).start();
    try {
      await configureNotifications(stack, { max_attempts: 5, retry_backoff_seconds: 1, targets: [{ type: 'github_status', name: 'flaky', api_url: flaky.url, token: 't' }] });
      const { build } = await seedRunningBuild(stack);
      await raiseBuildEvent(stack, build.id, 'build_finished', 'succeeded');
      const [task] = await waitForTasks(stack, { target_name: 'flaky' }, ['completed']);
      assert.equal(task.attempts, 3);
      assert.equal(task.last_error, null);
      assert.deepEqual(flaky.requests.map((r) => r.answered), [500, 500, 201]);
      const [first, second, third] = flaky.requests.map((r) => r.at);
      assert.ok(second - first >= 900, `first back-off ${second - first} ms`);
      assert.ok(third - second >= 1900, `second back-off ${third - second} ms (doubled)`);
    } finally {
      await flaky.stop();
    }
  });

  it('order holds under retries: a final status waits for the retried pending before it, and a late pending is dropped, not delivered', async () => {
    const flaky = await new RecordingServer({ failFirst: 2 }).start();
    try {
      await configureNotifications(stack, { max_attempts: 5, retry_backoff_seconds: 1, targets: [{ type: 'github_status', name: 'ordered', api_url: flaky.url, token: 't' }] });
      const { build } = await seedRunningBuild(stack);
      await raiseBuildEvent(stack, build.id, 'build_started');
      await eventually('the pending status to fail once', async () => (flaky.requests.length >= 1 ? true : undefined), 30_000, 50);
      await raiseBuildEvent(stack, build.id, 'build_finished', 'succeeded');
      await waitForTasks(stack, { target_name: 'ordered' }, ['completed']);
      assert.deepEqual(flaky.delivered().map((r) => r.json.state), ['pending', 'success']);
      assert.deepEqual(flaky.requests.map((r) => `${r.json.state}:${r.answered}`), ['pending:500', 'pending:500', 'pending:201', 'success:201']);

      // A pending recorded before the success but whose signal comes only now (a slow activity, Hydra #488).
      const event = (await buildEvent(stack.db, build.id, 'build_started'))!;
      const target = notificationTargets({ targets: [{ type: 'github_status', name: 'ordered', api_url: flaky.url, token: 't' }] })[0];
      const [late] = await insertNotificationTasks(stack.db, [planNotification(target, event, PUBLIC_URL)!], 5);
      const [firstPending] = await taskRows(stack, { target_name: 'ordered' });
      await stack.db('notification_tasks').where({ id: late.id }).update({ seq: firstPending.seq });
      await startNotificationDelivery(stack.temporal.workflows, { ...late, seq: firstPending.seq }, 1);
      const [dropped] = await waitForTasks(stack, { id: late.id }, ['superseded', 'completed']);
      assert.equal(dropped.status, 'superseded');
      assert.deepEqual(flaky.delivered().map((r) => r.json.state), ['pending', 'success'], 'the late pending never reached the forge');
    } finally {
      await flaky.stop();
    }
  });

  it('a task that exhausts max_attempts ends failed with last_error, and the retry route requeues it (202) into the workflow of its key, which delivers it', async () => {
    const down = await new RecordingServer({ status: 503 }).start();
    try {
      await configureNotifications(stack, { max_attempts: 2, retry_backoff_seconds: 1, targets: [{ type: 'webhook', name: 'down', url: `${down.url}/hook` }] });
      const { build } = await seedRunningBuild(stack);
      await raiseBuildEvent(stack, build.id, 'build_finished', 'succeeded');
      const [failed] = await waitForTasks(stack, { target_name: 'down' }, ['failed']);
      assert.equal(failed.attempts, 2);
      assert.match(failed.last_error, /HTTP 503/);
      assert.equal(down.requests.length, 2);

      down.behaviour = {};
      const retried = await stack.request('POST', `/api/v1/admin/notification-tasks/${failed.id}/retry`, { key: stack.adminKey, body: {} });
      assert.equal(retried.status, 202, retried.text);
      assert.equal(retried.body.id, failed.id);
      assert.equal(retried.body.status, 'pending');
      assert.equal(retried.body.attempts, 0);
      const [done] = await waitForTasks(stack, { id: failed.id }, ['completed']);
      assert.equal(done.attempts, 1);
      assert.equal(down.delivered().length, 1);
      assert.equal(done.workflow_id, failed.workflow_id, 'the same (target, commit, context) key, so the same workflow');
      const audit = await stack.db('audit_log').where({ target_kind: 'notification_task', target_id: failed.id }).first();
      assert.ok(audit, 'the retry is audited');

      const again = await stack.request('POST', `/api/v1/admin/notification-tasks/${failed.id}/retry`, { key: stack.adminKey, body: {} });
      assert.equal(again.status, 409);
      assert.equal(again.body.error_code, 'CONFLICT');
      const unknown = await stack.request('POST', `/api/v1/admin/notification-tasks/${crypto.randomUUID()}/retry`, { key: stack.adminKey, body: {} });
      assert.equal(unknown.status, 404);
      const bad = await stack.request('POST', '/api/v1/admin/notification-tasks/not-a-uuid/retry', { key: stack.adminKey, body: {} });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.details[0].field, 'params.id');
      const notAdmin = await stack.request('POST', `/api/v1/admin/notification-tasks/${failed.id}/retry`, { key: await stack.keyFor('restart-jobs'), body: {} });
      assert.equal(notAdmin.status, 403);
    } finally {
      await down.stop();
    }
  });

  it('a task that cannot be handed to Temporal is recorded as failed, not lost, and the retry route delivers it', async () => {
    const sink = await new RecordingServer().start();
    const closed = await Connection.connect({ address: stack.temporalAddress });
    await closed.close();
    try {
      await configureNotifications(stack, { targets: [{ type: 'webhook', name: 'unhanded', url: `${sink.url}/hook` }] });
      const { build } = await seedRunningBuild(stack);
      const event = (await buildEvent(stack.db, build.id, 'build_finished'))!;
      await enqueueNotifications({ ...notificationDeps(stack), workflows: new RingmasterWorkflows(new Client({ connection: closed }), stack.taskQueue) }, event);
      const [task] = await taskRows(stack, { target_name: 'unhanded' });
      assert.equal(task.status, 'failed');
      assert.match(task.last_error, /could not be handed to Temporal/);
      const retried = await stack.request('POST', `/api/v1/admin/notification-tasks/${task.id}/retry`, { key: stack.adminKey, body: {} });
      assert.equal(retried.status, 202, retried.text);
      await waitForTasks(stack, { id: task.id }, ['completed']);
      assert.equal(sink.delivered().length, 1);
    } finally {
      await sink.stop();
    }
  });

  it('email goes out over SMTP to a real SMTP server', async () => {
    const received: Array<{ from: string; to: string[]; data: string }> = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            data: Buffer.concat(chunks).toString('utf8'),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    const port = (smtp.server.address() as { port: number }).port;
    try {
      await configureNotifications(stack, {
        targets: [{ type: 'email', name: 'mail', smtp: { host: '127.0.0.1', port, secure: false, ignore_tls: true }, from: 'ringmaster@ci.example.org', to: ['dev@example.org', 'ops@example.org'] }],
      });
      const { project, build } = await seedRunningBuild(stack, 'tests');
      assert.equal(await raiseBuildEvent(stack, build.id, 'build_started'), 0, 'email is for finished builds only by default');
      await raiseBuildEvent(stack, build.id, 'build_finished', 'failed');
      const [task] = await waitForTasks(stack, { target_name: 'mail' }, ['completed']);
      assert.equal(received.length, 1);
      assert.equal(received[0].from, 'ringmaster@ci.example.org');
      assert.deepEqual(received[0].to, ['dev@example.org', 'ops@example.org']);
      assert.match(received[0].data, new RegExp(`Subject: \\[ringmaster\\] ${project.name}/main/tests: failed`));
      assert.match(received[0].data, new RegExp(`X-Ringmaster-Delivery: ${task.id}`));
      assert.match(received[0].data, new RegExp(`${PUBLIC_URL}/api/v1/builds/${build.id}`));
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });

  it('the tasks route pages every task, filters by status, and never shows a token, secret or Slack URL', async () => {
    const sink = await new RecordingServer().start();
    try {
      await configureNotifications(stack, {
        targets: [
          { type: 'github_status', name: 'secretive', api_url: sink.url, token: 'ghp_never_shown_1234' },
          { type: 'slack', name: 'slack-secret', webhook_url: `${sink.url}/services/T1/B1/never-shown-slack-path` },
          { type: 'webhook', name: 'hook-secret', url: `${sink.url}/hook`, secret: 'never-shown-hmac-secret' },
        ],
      });
      const { build } = await seedRunningBuild(stack);
      await raiseBuildEvent(stack, build.id, 'build_finished', 'succeeded');
      for (const name of ['secretive', 'slack-secret', 'hook-secret']) await waitForTasks(stack, { target_name: name }, ['completed']);

      const total = (await taskRows(stack)).length;
      const page = await stack.request('GET', '/api/v1/admin/notification-tasks?limit=2&offset=1', { key: stack.adminKey });
      assert.equal(page.status, 200, page.text);
      assert.equal(page.body.total, total);
      assert.equal(page.body.limit, 2);
      assert.equal(page.body.offset, 1);
      assert.equal(page.body.items.length, 2);
      const all = await stack.request('GET', '/api/v1/admin/notification-tasks?limit=1000', { key: stack.adminKey });
      for (const secret of ['ghp_never_shown_1234', 'never-shown-slack-path', 'never-shown-hmac-secret', 'glpat_status_token', 'ghp_status_token']) {
        assert.ok(!all.text.includes(secret), `${secret} is not shown`);
      }
      const github = all.body.items.find((t: any) => t.target === 'secretive');
      assert.equal(github.notification_type, 'github_status');
      assert.equal(github.payload.context, `ringmaster/main/${build.job_name}`);
      assert.equal(github.payload.repository, 'acme/hello');
      assert.equal(github.status, 'completed');

      const failed = await stack.request('GET', '/api/v1/admin/notification-tasks?status=failed', { key: stack.adminKey });
      assert.equal(failed.status, 200);
      assert.ok(failed.body.items.every((t: any) => t.status === 'failed'));
      assert.equal(failed.body.total, (await taskRows(stack, { status: 'failed' })).length);
      const badStatus = await stack.request('GET', '/api/v1/admin/notification-tasks?status=lost', { key: stack.adminKey });
      assert.equal(badStatus.status, 400);
      assert.equal(badStatus.body.details[0].field, 'query.status');
      assert.equal((await stack.request('GET', '/api/v1/admin/notification-tasks', { key: await stack.keyFor('read-only') })).status, 403);
      assert.equal((await stack.request('GET', '/api/v1/admin/notification-tasks')).status, 401);
    } finally {
      await sink.stop();
    }
  });

  it('a key with more than 100 deliveries continues as new and keeps delivering in order', async () => {
    const sink = await new RecordingServer().start();
    try {
      await configureNotifications(stack, { targets: [{ type: 'webhook', name: 'busy', url: `${sink.url}/hook` }] });
      const { build } = await seedRunningBuild(stack);
      const statuses: string[] = [];
      for (let i = 0; i < DELIVERIES_PER_RUN + 5; i++) {
        const status = i % 2 === 0 ? 'succeeded' : 'failed';
        statuses.push(status);
        await raiseBuildEvent(stack, build.id, 'build_finished', status);
      }
      const rows = await waitForTasks(stack, { target_name: 'busy' }, ['completed'], 240_000);
      assert.equal(rows.length, DELIVERIES_PER_RUN + 5);
      assert.deepEqual(sink.delivered().map((r) => r.json.status), statuses, 'every final status, in the order of the events');
      const history = await stack.temporal.client.workflow.getHandle(rows[0].workflow_id).fetchHistory();
      assert.notEqual(history.events?.[0].workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? '', '', 'the run now delivering continues an earlier one');
    } finally {
      await sink.stop();
    }
  });

  it('/prometheus reports the delivery lag histogram, the failures counter and the backlog by status', async () => {
    const res = await stack.request('GET', '/prometheus');
    assert.equal(res.status, 200);
    const delivered = (await taskRows(stack, { status: 'completed', notification_type: 'github_status' })).length;
    assert.match(res.text, new RegExp(`ringmaster_notification_delivery_lag_seconds_count\\{type="github_status"\\} ${delivered}\\n`));
    assert.match(res.text, /ringmaster_notification_delivery_lag_seconds_bucket\{type="github_status",le="\+Inf"\} \d+/);
    const [{ gaveUp }] = await stack.db('notification_tasks').where({ notification_type: 'webhook' }).sum({ gaveUp: 'give_ups' });
    assert.ok(Number(gaveUp) >= 1);
    assert.match(res.text, new RegExp(`ringmaster_notification_failures_total\\{type="webhook"\\} ${Number(gaveUp)}\\n`));
    assert.match(res.text, /ringmaster_notification_tasks\{type="webhook",status="completed"\} \d+/);
  });
});

describe('the config file drives runtime settings live', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());

  it('require_auth_for_reads applies at once when PUT, and stops applying when turned off', async () => {
    assert.equal((await stack.request('GET', '/api/v1/projects')).status, 200);
    const on = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify({ require_auth_for_reads: true }) } });
    assert.equal(on.status, 200);
    assert.equal((await stack.request('GET', '/api/v1/projects')).status, 401);
    assert.equal((await stack.request('GET', '/api/v1/projects', { key: await stack.keyFor('read-only') })).status, 200);
    assert.equal((await stack.request('GET', '/health')).status === 401, false);
    await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify({ require_auth_for_reads: false }) } });
    assert.equal((await stack.request('GET', '/api/v1/projects')).status, 200);
  });

  it('notification targets are validated: a missing url, an unknown kind or two targets with one name is a 400 naming the field, and changes nothing', async () => {
    const before = (await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey })).body.contents;
    const put = (notifications: unknown) => stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify({ notifications }) } });
    const noUrl = await put({ targets: [{ type: 'webhook' }] });
    assert.equal(noUrl.status, 400);
    assert.ok(noUrl.body.details.some((d: any) => d.field === 'contents.notifications.targets.0.url'), noUrl.text);
    const unknown = await put({ targets: [{ type: 'pager' }] });
    assert.equal(unknown.status, 400);
    assert.ok(unknown.body.details.some((d: any) => d.field === 'contents.notifications.targets.0.type'), unknown.text);
    const twins = await put({ targets: [{ type: 'webhook', name: 'a', url: 'https://x.example' }, { type: 'slack', name: 'a', webhook_url: 'https://hooks.slack.com/x' }] });
    assert.equal(twins.status, 400);
    assert.equal(twins.body.details[0].field, 'contents.notifications.targets');
    assert.equal((await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey })).body.contents, before);
  });

  it("a Slack target's webhook URL is redacted like any secret, and a PUT sending it back redacted keeps it", async () => {
    const notifications = { targets: [{ type: 'slack', name: 's', webhook_url: 'https://hooks.slack.com/services/T/B/secret-path' }] };
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify({ notifications }) } });
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes('secret-path'));
    const shown = JSON.parse(res.body.contents);
    assert.equal(shown.notifications.targets[0].webhook_url, '[redacted]');
    const again = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(shown) } });
    assert.equal(again.status, 200, again.text);
  });
});
