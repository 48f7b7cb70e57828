import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfigContents } from '../../lib/config-file';

function problemFields(config: unknown): string[] {
  const result = validateConfigContents(JSON.stringify(config));
  return result.ok ? [] : result.problems.map((p) => p.field);
}

describe('the sign-in sections of the config file (github_oauth, ldap)', () => {
  const ldap = { url: 'ldap://127.0.0.1:389', base_dn: 'dc=example,dc=org' };
  const github = { client_id: 'Iv1.x', client_secret: 's' };

  it('a full GitHub Enterprise section and a full LDAP section are valid', () => {
    assert.deepEqual(
      problemFields({
        github_oauth: {
          ...github,
          authorize_url: 'https://ghe.example.org/login/oauth/authorize',
          token_url: 'https://ghe.example.org/login/oauth/access_token',
          api_url: 'https://ghe.example.org/api/v3',
          redirect_url: 'https://ci.example.org/api/v1/auth/github/callback',
          after_login_path: '/dashboard',
          allowed_organizations: ['org'],
          default_role: 'read-only',
          timeout_seconds: 5,
          enabled: true,
        },
        ldap: {
          ...ldap,
          bind_dn_template: 'uid={username},ou=people,dc=example,dc=org',
          group_base_dn: 'ou=groups,dc=example,dc=org',
          group_filter: '(member={dn})',
          role_mapping: { 'cn=admins,ou=groups,dc=example,dc=org': 'admin' },
          default_role: 'read-only',
          timeout_seconds: 3,
        },
      }),
      [],
    );
  });

  it('each bad LDAP setting is refused by name', () => {
    assert.deepEqual(problemFields({ ldap: { ...ldap, bind_dn_template: 'uid=fixed,dc=example,dc=org' } }), ['contents.ldap.bind_dn_template']);
    assert.deepEqual(problemFields({ ldap: { ...ldap, user_filter: 'uid={username}' } }), ['contents.ldap.user_filter']);
    assert.deepEqual(problemFields({ ldap: { ...ldap, role_mapping: { 'cn=x': 'superuser' } } }), ['contents.ldap.role_mapping.cn=x']);
    assert.deepEqual(problemFields({ ldap: { ...ldap, timeout_seconds: 0 } }), ['contents.ldap.timeout_seconds']);
  });

  it('each bad GitHub setting is refused by name; after_login_path stays on this server', () => {
    assert.deepEqual(problemFields({ github_oauth: { ...github, api_url: 'ftp://ghe' } }), ['contents.github_oauth.api_url']);
    for (const offsite of ['//evil.example.org', '/\\evil.example.org', 'https://evil.example.org']) {
      assert.deepEqual(problemFields({ github_oauth: { ...github, after_login_path: offsite } }), ['contents.github_oauth.after_login_path'], offsite);
    }
    assert.deepEqual(problemFields({ github_oauth: { client_id: 'x' } }), ['contents.github_oauth.client_secret']);
  });
});
