/**
 * The `ldap` section of the server config file: how `POST /auth/ldap` finds and binds a user, and how
 * group membership maps to roles (Hydra's `<role_mapping>`). Its own module so that the config file's
 * schema (lib/config-file.ts) only includes it.
 */
export interface LdapConfig {
  /** `ldap://host:port` or `ldaps://host:port`. */
  url: string;
  /** Where users (and, unless group_base_dn says otherwise, groups) are searched. */
  base_dn: string;
  /** false keeps the section but turns LDAP login off (404). Default true. */
  enabled?: boolean;
  /**
   * Direct bind: the user's DN, with `{username}` replaced by the username escaped per RFC 4514,
   * e.g. `uid={username},ou=people,dc=example,dc=org`. Without it, Ringmaster searches, then binds.
   */
  bind_dn_template?: string;
  /** Search-then-bind: the account that searches for users (anonymous when absent). */
  bind_dn?: string;
  bind_password?: string;
  /** Search-then-bind: the filter, `{username}` escaped per RFC 4515. Default `(uid={username})`. */
  user_filter?: string;
  /** Upgrade an ldap:// connection with StartTLS before sending credentials. */
  start_tls?: boolean;
  /** A PEM file of the CA(s) that signed the server's certificate (ldaps:// and StartTLS); default: Node's trusted CAs. */
  tls_ca_file?: string;
  /** Seconds for connecting and for each operation. Default 5. */
  timeout_seconds?: number;
  /** Where groups are searched (default base_dn). */
  group_base_dn?: string;
  /** `{dn}` is the user's DN and `{username}` the username, both escaped per RFC 4515. */
  group_filter?: string;
  /** Group DN → role. The first group listed that the user belongs to gives the role, on every login. */
  role_mapping?: Record<string, string>;
  /** Role of a new user (and of every user in no mapped group, when role_mapping is set). Default read-only. */
  default_role?: string;
  /** Attributes read from the user's entry. Defaults: uid, mail, cn. */
  username_attribute?: string;
  email_attribute?: string;
  name_attribute?: string;
}

export const LDAP_DEFAULTS = {
  user_filter: '(uid={username})',
  group_filter: '(|(member={dn})(uniqueMember={dn})(memberUid={username}))',
  timeout_seconds: 5,
  username_attribute: 'uid',
  email_attribute: 'mail',
  name_attribute: 'cn',
} as const;

export function ldapConfigSchema(roles: readonly string[]) {
  const text = { type: 'string', minLength: 1, maxLength: 4096 };
  const attribute = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z][A-Za-z0-9-]*$' };
  return {
    type: 'object',
    additionalProperties: false,
    required: ['url', 'base_dn'],
    properties: {
      url: { type: 'string', pattern: '^ldaps?://', maxLength: 2048 },
      base_dn: text,
      enabled: { type: 'boolean' },
      bind_dn_template: { ...text, pattern: '\\{username\\}' },
      bind_dn: text,
      bind_password: text,
      user_filter: { ...text, pattern: '^\\(.*\\{username\\}.*\\)$' },
      start_tls: { type: 'boolean' },
      tls_ca_file: { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/' },
      timeout_seconds: { type: 'integer', minimum: 1, maximum: 120 },
      group_base_dn: text,
      group_filter: { ...text, pattern: '^\\(.*\\)$' },
      role_mapping: { type: 'object', maxProperties: 200, additionalProperties: { type: 'string', enum: [...roles] } },
      default_role: { type: 'string', enum: [...roles] },
      username_attribute: attribute,
      email_attribute: attribute,
      name_attribute: attribute,
    },
  };
}
