import fs from 'node:fs/promises';
import net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, ResultCodeError, type Entry } from 'ldapts';
import { LDAP_DEFAULTS, type LdapConfig } from '../lib/config-ldap';
import { escapeDnValue, escapeFilterValue, fillTemplate, normalizeDn } from '../lib/ldap-escape';

/** Who the directory says signed in. */
export interface LdapIdentity {
  dn: string;
  /** The entry's username attribute (uid), else the name typed at login. */
  username: string;
  email: string | null;
  fullName: string | null;
  /** DNs of the groups the user belongs to, among those that role_mapping names (as the config spells them). */
  mappedGroups: string[];
}

/** Why the directory refused: each is a 401 to the caller, recorded in the audit log. */
export type LdapRefusal = 'invalid_credentials' | 'no_such_user' | 'ambiguous_user';

export type LdapAuthentication = { ok: true; identity: LdapIdentity } | { ok: false; reason: LdapRefusal; detail: string };

/** The directory could not be asked (down, unreachable, timed out, or the service account refused). */
export class LdapUnavailableError extends Error {}

function firstValue(entry: Entry, attribute: string): string | null {
  const value = entry[attribute] ?? entry[Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase()) ?? ''];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return null;
  const text = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  return text === '' ? null : text;
}

function refused(reason: LdapRefusal, detail: string): LdapAuthentication {
  return { ok: false, reason, detail };
}

/** Runs one LDAP operation; anything but an LDAP result (a refused connection, a timeout) means unavailable. */
async function ask<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (err instanceof ResultCodeError) throw err;
    throw new LdapUnavailableError(`LDAP server unavailable (${what}): ${(err as Error).message}`);
  }
}

async function findUserDn(client: Client, config: LdapConfig, username: string): Promise<{ dn: string } | LdapAuthentication> {
  if (config.bind_dn_template) return { dn: fillTemplate(config.bind_dn_template, { username: escapeDnValue(username) }) };
  if (config.bind_dn) {
    try {
      await ask('service bind', () => client.bind(config.bind_dn!, config.bind_password ?? ''));
    } catch (err) {
      if (err instanceof ResultCodeError) throw new LdapUnavailableError(`LDAP service account ${config.bind_dn} could not bind: ${err.message.trim()}`);
      throw err;
    }
  }
  const filter = fillTemplate(config.user_filter ?? LDAP_DEFAULTS.user_filter, { username: escapeFilterValue(username) });
  let entries: Entry[];
  try {
    ({ searchEntries: entries } = await ask('user search', () => client.search(config.base_dn, { scope: 'sub', filter, sizeLimit: 2, attributes: ['1.1'] })));
  } catch (err) {
    if (err instanceof ResultCodeError && err.code === 4) return refused('ambiguous_user', `more than one entry matches ${filter}`);
    if (err instanceof ResultCodeError) throw new LdapUnavailableError(`LDAP user search failed: ${err.message.trim()}`);
    throw err;
  }
  if (entries.length === 0) return refused('no_such_user', `no entry matches ${filter}`);
  if (entries.length > 1) return refused('ambiguous_user', `more than one entry matches ${filter}`);
  return { dn: entries[0].dn };
}

async function mappedGroupsOf(client: Client, config: LdapConfig, dn: string, username: string): Promise<string[]> {
  const mapping = config.role_mapping ?? {};
  if (Object.keys(mapping).length === 0) return [];
  const filter = fillTemplate(config.group_filter ?? LDAP_DEFAULTS.group_filter, { dn: escapeFilterValue(dn), username: escapeFilterValue(username) });
  const { searchEntries } = await ask('group search', () => client.search(config.group_base_dn ?? config.base_dn, { scope: 'sub', filter, attributes: ['1.1'] }));
  const memberOf = new Set(searchEntries.map((e) => normalizeDn(e.dn)));
  return Object.keys(mapping).filter((groupDn) => memberOf.has(normalizeDn(groupDn)));
}

/** TLS options for ldaps:// and StartTLS: the configured CA, and the host name the certificate must name. */
async function tlsOptionsFor(config: LdapConfig): Promise<ConnectionOptions> {
  const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
  let ca: string | undefined;
  if (config.tls_ca_file) {
    try {
      ca = await fs.readFile(config.tls_ca_file, 'utf8');
    } catch (err) {
      throw new LdapUnavailableError(`cannot read the LDAP CA file ${config.tls_ca_file}: ${(err as Error).message}`);
    }
  }
  return { host, ...(net.isIP(host) ? {} : { servername: host }), ...(ca ? { ca } : {}) };
}

/**
 * Signs a user in against the directory: finds the DN (template, or search as the service account),
 * binds as it with the password, reads the user's entry and the mapped groups it belongs to.
 * A refusal by the directory is a result; an unreachable directory throws LdapUnavailableError.
 */
export async function authenticateWithLdap(config: LdapConfig, username: string, password: string): Promise<LdapAuthentication> {
  const timeout = (config.timeout_seconds ?? LDAP_DEFAULTS.timeout_seconds) * 1000;
  const tlsOptions = await tlsOptionsFor(config);
  // ldapts speaks TLS from the first byte whenever tlsOptions is given, so only ldaps:// gets them here.
  const client = new Client({ url: config.url, timeout, connectTimeout: timeout, ...(config.url.startsWith('ldaps:') ? { tlsOptions } : {}) });
  try {
    if (config.start_tls) await ask('StartTLS', () => client.startTLS({ ...tlsOptions }));
    const found = await findUserDn(client, config, username);
    if ('ok' in found) return found;
    try {
      // An empty password would be an unauthenticated bind (RFC 4513 §5.1.2), which succeeds as nobody.
      if (password === '') return refused('invalid_credentials', 'empty password');
      await ask('user bind', () => client.bind(found.dn, password));
    } catch (err) {
      if (err instanceof InvalidCredentialsError) return refused('invalid_credentials', `bind as ${found.dn} refused`);
      if (err instanceof ResultCodeError) return refused('invalid_credentials', `bind as ${found.dn} refused: ${err.message.trim()}`);
      throw err;
    }
    const attributes = [
      config.username_attribute ?? LDAP_DEFAULTS.username_attribute,
      config.email_attribute ?? LDAP_DEFAULTS.email_attribute,
      config.name_attribute ?? LDAP_DEFAULTS.name_attribute,
    ];
    const { searchEntries } = await ask('entry read', () => client.search(found.dn, { scope: 'base', filter: '(objectClass=*)', attributes }));
    const entry = searchEntries[0] ?? { dn: found.dn };
    const dn = entry.dn || found.dn;
    const entryUsername = firstValue(entry, attributes[0]) ?? username;
    return {
      ok: true,
      identity: {
        dn,
        username: entryUsername,
        email: firstValue(entry, attributes[1]),
        fullName: firstValue(entry, attributes[2]),
        mappedGroups: await mappedGroupsOf(client, config, dn, entryUsername),
      },
    };
  } catch (err) {
    if (err instanceof ResultCodeError) throw new LdapUnavailableError(`LDAP server refused a lookup: ${err.message.trim()}`);
    throw err;
  } finally {
    await client.unbind().catch(() => {});
  }
}
