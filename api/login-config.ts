import { readConfigFile, validateConfigContents, type RingmasterConfigFile } from '../lib/config-file';
import { ApiError } from './errors';
import { ROLES, type Role } from './route';

/**
 * The enabled section of a sign-in provider, read from the config file on each sign-in (so a
 * `PUT /api/v1/admin/config` takes effect at once). Absent or `enabled: false` is a 404: that way of
 * signing in does not exist here. A config file that no longer validates (edited by hand) is a 503.
 */
export async function signInProviderConfig<K extends 'ldap' | 'github_oauth'>(file: string, key: K, what: string): Promise<NonNullable<RingmasterConfigFile[K]>> {
  const validation = validateConfigContents(await readConfigFile(file));
  if (!validation.ok) {
    const first = validation.problems[0];
    throw new ApiError('SERVICE_UNAVAILABLE', `${what} is unavailable: the config file is invalid at ${first.field} (${first.message})`);
  }
  const section = validation.config[key];
  if (!section || section.enabled === false) throw new ApiError('NOT_FOUND', `${what} is not configured on this server`);
  return section as NonNullable<RingmasterConfigFile[K]>;
}

/** A role named in a provider's section (default_role, role_mapping), as a Role; the schema already allows only roles. */
export function configuredRole(value: string | undefined): Role | undefined {
  return (ROLES as readonly string[]).includes(value ?? '') ? (value as Role) : undefined;
}
