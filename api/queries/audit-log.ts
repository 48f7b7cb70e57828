import { pageRows } from './page';
import type { Db } from '../../lib/db';
import { redactSecrets } from '../../lib/redact';

export interface AuditRecord {
  actorKind: string;
  actorId: string | null;
  actorName: string | null;
  action: string;
  targetKind: string | null;
  targetId: string | null;
  details: Record<string, unknown> | null;
  remoteAddr: string | null;
}

export async function writeAuditEntry(db: Db, r: AuditRecord): Promise<void> {
  await db('audit_log').insert({
    actor_kind: r.actorKind,
    actor_id: r.actorId,
    actor_name: r.actorName,
    action: r.action,
    target_kind: r.targetKind,
    target_id: r.targetId,
    details: r.details === null ? null : JSON.stringify(redactSecrets(r.details)),
    remote_addr: r.remoteAddr,
  });
}

export interface AuditFilter {
  action?: string;
  actor_name?: string;
  target_kind?: string;
  target_id?: string;
  limit: number;
  offset: number;
}

const NEWEST_FIRST = [{ column: 'occurred_at', order: 'desc' as const }, { column: 'id', order: 'desc' as const }];

function filteredAuditLog(db: Db, f: Omit<AuditFilter, 'limit' | 'offset'>) {
  const base = db('audit_log');
  if (f.action) base.where('action', f.action);
  if (f.actor_name) base.where('actor_name', f.actor_name);
  if (f.target_kind) base.where('target_kind', f.target_kind);
  if (f.target_id) base.where('target_id', f.target_id);
  return base;
}

/** A page of the audit log, newest first, with the number of entries (the API's page). */
export async function pageAuditLog(db: Db, f: AuditFilter) {
  const { rows, ...page } = await pageRows(filteredAuditLog(db, f), f, NEWEST_FIRST);
  return { items: rows, ...page };
}

/** The entries of a page of the audit log, newest first, without counting the whole log (the dashboard's pager). */
export async function auditLogEntries(db: Db, f: AuditFilter): Promise<Array<Record<string, any>>> {
  return filteredAuditLog(db, f).select('*').orderBy(NEWEST_FIRST).limit(f.limit).offset(f.offset);
}
