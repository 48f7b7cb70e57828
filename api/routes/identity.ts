import type { RouteDef } from '../route';
import { adminAuditRoutes } from './admin-audit';
import { adminConfigRoutes } from './admin-config';
import { apiKeyRoutes } from './api-keys';
import { authRoutes } from './auth';
import { githubLoginRoutes } from './github-login';
import { ldapLoginRoutes } from './ldap-login';
import { meRoutes } from './me';
import { newsRoutes } from './news';
import { starredJobRoutes } from './starred-jobs';
import { userRoutes } from './users';

/** Identity (keys, users, sign-in, /me), news, the audit log and the config file. */
export const identityRoutes: RouteDef[] = [...apiKeyRoutes, ...userRoutes, ...authRoutes, ...ldapLoginRoutes, ...githubLoginRoutes, ...meRoutes, ...starredJobRoutes, ...newsRoutes, ...adminAuditRoutes, ...adminConfigRoutes];
