import type { RequestContext } from './route';
import { writeAuditEntry } from './queries/audit-log';

/**
 * Writes a refused sign-in to the audit log. The app audits only mutations that succeed, so the login
 * routes call this themselves before answering 401/403: who tried, with which provider, and why it failed.
 */
export async function auditRefusedLogin(rc: RequestContext, provider: 'ldap' | 'github', attempt: { username: string | null; reason: string; detail?: string }): Promise<void> {
  await writeAuditEntry(rc.db, {
    actorKind: 'anonymous',
    actorId: null,
    actorName: attempt.username,
    action: 'login_refused',
    targetKind: 'user',
    targetId: null,
    details: { provider, username: attempt.username, reason: attempt.reason, ...(attempt.detail ? { detail: attempt.detail } : {}) },
    remoteAddr: rc.remoteAddr || null,
  });
}
