import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { startSlapd, type Slapd } from '../support/slapd';
import { SESSION_COOKIE } from '../../api/queries/sessions';
import type { LdapConfig } from '../../lib/config-ldap';

describe('LDAP login (POST /auth/ldap) against a real slapd', () => {
  let stack: TestStack;
  let slapd: Slapd;

  const login = (username: string, password: string) => stack.request('POST', '/auth/ldap', { body: { username, password } });
  const configure = async (ldap: Partial<LdapConfig> | null) => {
    const contents = JSON.stringify(ldap === null ? {} : { ldap: { url: slapd.url, base_dn: slapd.suffix, ...ldap } });
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents } });
    assert.equal(res.status, 200, res.text);
  };
  const templateMode = (): Partial<LdapConfig> => ({
    bind_dn_template: `uid={username},${slapd.peopleDn}`,
    role_mapping: { [slapd.groupDn('ci-admins')]: 'admin', [slapd.groupDn('developers')]: 'create-projects' },
    default_role: 'read-only',
  });
  const searchMode = (): Partial<LdapConfig> => ({ bind_dn: slapd.rootDn, bind_password: slapd.rootPassword, user_filter: '(&(objectClass=inetOrgPerson)(uid={username}))' });
  const counts = async () => {
    const count = async (table: string) => Number((await stack.db(table).count<{ n: string }[]>('* as n'))[0].n);
    return { users: await count('users'), sessions: await count('sessions'), identities: await count('user_identities') };
  };

  before(async () => {
    [stack, slapd] = await Promise.all([
      startTestStack({ worker: false }),
      startSlapd({
        users: [
          { uid: 'alice', password: 'alice ldap password', cn: 'Alice Liddell', mail: 'alice@ldap.test' },
          { uid: 'bob', password: 'bob ldap password', cn: 'Bob', mail: 'bob@ldap.test' },
          { uid: 'carol', password: 'carol ldap password' },
          { uid: 'dave', password: 'dave ldap password' },
          { uid: 'erin', password: 'erin ldap password' },
          { uid: 'frank', password: 'frank ldap password' },
        ],
        groups: [
          { cn: 'ci-admins', members: ['alice'] },
          { cn: 'developers', members: ['alice', 'bob'] },
        ],
        tls: true,
      }),
    ]);
  });
  after(async () => {
    await stack?.stop();
    await slapd?.stop();
  });

  it('without an ldap section in the config file, LDAP login is a 404', async () => {
    await configure(null);
    const res = await login('alice', 'alice ldap password');
    assert.equal(res.status, 404);
    assert.equal(res.body.error_code, 'NOT_FOUND');
    assert.match(res.body.error, /LDAP login is not configured/);
  });

  it('a bind with the DN from the template creates an ldap user with the entry\'s mail and cn, and sets the session cookie', async () => {
    await configure(templateMode());
    const res = await login('alice', 'alice ldap password');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.user.username, 'alice');
    assert.equal(res.body.user.user_type, 'ldap');
    assert.equal(res.body.user.email, 'alice@ldap.test');
    assert.equal(res.body.user.full_name, 'Alice Liddell');
    assert.equal(typeof res.body.csrf_token, 'string');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.ok(cookie, 'sets the session cookie');
    assert.match(cookie, /;\s*httponly/i);
    assert.match(cookie, /;\s*samesite=lax/i);
    const me = await stack.request('GET', '/api/v1/me', { headers: { cookie: cookie.split(';')[0] } });
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'alice');
    const identity = await stack.db('user_identities').where({ provider: 'ldap', external_id: 'alice' }).first();
    assert.equal(identity.user_id, res.body.user.id);
    assert.equal(identity.external_name, slapd.userDn('alice'));
  });

  it('group membership maps to roles like Hydra\'s role_mapping: the first listed group wins, no group gives default_role', async () => {
    assert.equal((await login('alice', 'alice ldap password')).body.user.role, 'admin', 'alice is in ci-admins (listed first) and developers');
    assert.equal((await login('bob', 'bob ldap password')).body.user.role, 'create-projects');
    assert.equal((await login('carol', 'carol ldap password')).body.user.role, 'read-only');
  });

  it('signing in again updates the same user, and the role follows the directory\'s groups', async () => {
    const before = await counts();
    await configure({ ...templateMode(), role_mapping: { [slapd.groupDn('developers')]: 'eval-jobset' } });
    const again = await login('alice', 'alice ldap password');
    assert.equal(again.status, 200);
    assert.equal(again.body.user.role, 'eval-jobset');
    const after = await counts();
    assert.equal(after.users, before.users, 'no second user');
    assert.equal(after.identities, before.identities);
    assert.equal(after.sessions, before.sessions + 1);
    await configure(templateMode());
  });

  it('the username is the directory\'s: ALICE (uid matching ignores case) is the same user alice, not a second one', async () => {
    await configure(templateMode());
    const before = await counts();
    const res = await login('ALICE', 'alice ldap password');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.user.username, 'alice');
    assert.equal((await counts()).users, before.users);
  });

  it('a wrong password is a 401, written to the audit log without the password, and creates nothing', async () => {
    const before = await counts();
    const res = await login('dave', 'not daves password');
    assert.equal(res.status, 401);
    assert.equal(res.body.error_code, 'UNAUTHORIZED');
    assert.equal(res.body.error, 'invalid username or password');
    assert.deepEqual(await counts(), before);
    const audit = await stack.db('audit_log').where({ action: 'login_refused', actor_name: 'dave' }).first();
    assert.ok(audit, 'the refusal is audited');
    assert.equal(audit.details.provider, 'ldap');
    assert.equal(audit.details.reason, 'invalid_credentials');
    assert.ok(!JSON.stringify(audit).includes('not daves password'));
  });

  it('an unknown user gets the same 401 as a wrong password', async () => {
    const before = await counts();
    const res = await login('mallory', 'whatever');
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid username or password');
    assert.deepEqual(await counts(), before);
  });

  for (const [mode, settings] of [['a DN template', templateMode], ['search-then-bind', searchMode]] as const) {
    it(`with ${mode}, an injection in the username binds as nobody: 401, even with a real user's password`, async () => {
      await configure(settings());
      const before = await counts();
      for (const username of ['*)(uid=*', 'ali*', '*', 'alice)(|(uid=*', 'alice,ou=people', '#alice', '\\', 'alice+cn=x']) {
        const res = await login(username, 'alice ldap password');
        assert.equal(res.status, 401, `${username}: ${res.text}`);
      }
      assert.deepEqual(await counts(), before);
    });
  }

  it('search-then-bind with a service account finds the user by the filter and signs in as the entry found', async () => {
    await configure(searchMode());
    const res = await login('dave', 'dave ldap password');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.user.username, 'dave');
    assert.equal(res.body.user.user_type, 'ldap');
    assert.equal(res.body.user.role, 'read-only');
  });

  it('a service account with a wrong password makes LDAP unavailable (503), not the user\'s fault', async () => {
    await configure({ ...searchMode(), bind_password: 'wrong service password' });
    const before = await counts();
    const res = await login('dave', 'dave ldap password');
    assert.equal(res.status, 503);
    assert.equal(res.body.error_code, 'SERVICE_UNAVAILABLE');
    assert.deepEqual(await counts(), before);
  });

  it('StartTLS and ldaps:// sign in when the server\'s certificate is signed by the configured CA', async () => {
    await configure({ ...templateMode(), start_tls: true, tls_ca_file: slapd.caFile });
    const viaStartTls = await login('alice', 'alice ldap password');
    assert.equal(viaStartTls.status, 200, viaStartTls.text);
    await configure({ ...templateMode(), url: slapd.ldapsUrl, tls_ca_file: slapd.caFile });
    const viaLdaps = await login('alice', 'alice ldap password');
    assert.equal(viaLdaps.status, 200, viaLdaps.text);
    assert.equal(viaLdaps.body.user.id, viaStartTls.body.user.id);
    await configure(templateMode());
  });

  it('a certificate from a CA that is not trusted, or a CA file that cannot be read, is a 503 that creates nothing', async () => {
    const before = await counts();
    for (const tls of [{ start_tls: true }, { url: slapd.ldapsUrl }, { start_tls: true, tls_ca_file: '/nonexistent/ca.pem' }]) {
      await configure({ ...templateMode(), ...tls });
      const res = await login('dave', 'dave ldap password');
      assert.equal(res.status, 503, `${JSON.stringify(tls)}: ${res.text}`);
    }
    assert.deepEqual(await counts(), before);
    await configure(templateMode());
  });

  it('an LDAP server that is down answers 503 and creates nothing; it works again once slapd is back', async () => {
    await configure(templateMode());
    await slapd.pause();
    try {
      const before = await counts();
      const res = await login('bob', 'bob ldap password');
      assert.equal(res.status, 503);
      assert.equal(res.body.error_code, 'SERVICE_UNAVAILABLE');
      assert.match(res.body.error, /LDAP server is unavailable/);
      assert.deepEqual(await counts(), before);
    } finally {
      await slapd.start();
    }
    assert.equal((await login('bob', 'bob ldap password')).status, 200);
  });

  it('a local account with the same username is never taken over: the LDAP user becomes ldap-<uid>', async () => {
    const local = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'erin', email: 'erin@example.org', password: 'local erin password' } });
    assert.equal(local.status, 200);
    const res = await login('erin', 'erin ldap password');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.user.username, 'ldap-erin');
    assert.equal(res.body.user.user_type, 'ldap');
    assert.notEqual(res.body.user.id, local.body.id);
    const untouched = await stack.db('users').where({ id: local.body.id }).first();
    assert.equal(untouched.user_type, 'local');
  });

  it('when both <uid> and ldap-<uid> are taken by other accounts, a first sign-in is a 409 that creates nothing', async () => {
    for (const username of ['frank', 'ldap-frank']) {
      const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: 'local password' } });
      assert.equal(made.status, 200);
    }
    const before = await counts();
    const res = await login('frank', 'frank ldap password');
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error_code, 'CONFLICT');
    assert.deepEqual(await counts(), before);
  });

  it('a disabled user is refused (401, audited) even with the right password, and gets no session', async () => {
    await stack.db('users').where({ username: 'bob' }).update({ enabled: false });
    const before = await counts();
    const res = await login('bob', 'bob ldap password');
    assert.equal(res.status, 401);
    assert.deepEqual(await counts(), before);
    assert.ok(await stack.db('audit_log').where({ action: 'login_refused', actor_name: 'bob' }).whereRaw("details->>'reason' = 'disabled'").first());
  });

  it('bad input is a 400 naming the field and creates nothing; enabled:false turns LDAP login off (404)', async () => {
    const before = await counts();
    const cases: Array<[unknown, string]> = [
      [{ username: 'alice' }, 'body.password'],
      [{ username: 'alice', password: '' }, 'body.password'],
      [{ username: '', password: 'x' }, 'body.username'],
      [{ username: 'alice', password: 'x', role: 'admin' }, 'body.role'],
      [{ username: 'alice\u0000', password: 'x' }, 'body.username'],
      [{ username: 'alice\n', password: 'x' }, 'body.username'],
    ];
    for (const [body, field] of cases) {
      const res = await stack.request('POST', '/auth/ldap', { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.ok(res.body.details.some((d: { field: string }) => d.field === field), `${JSON.stringify(res.body.details)} names ${field}`);
    }
    await configure({ ...templateMode(), enabled: false });
    assert.equal((await login('alice', 'alice ldap password')).status, 404);
    assert.deepEqual(await counts(), before);
  });
});
