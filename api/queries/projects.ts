import { pageRows } from './page';
import type { Db } from '../../lib/db';

export interface ProjectRow {
  id: string;
  name: string;
  display_name: string | null;
  description: string | null;
  repository_url: string;
  homepage: string | null;
  enabled: boolean;
  cache_enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface ProjectFields {
  name?: string;
  display_name?: string | null;
  description?: string | null;
  repository_url?: string;
  homepage?: string | null;
  enabled?: boolean;
  cache_enabled?: boolean;
}

export async function pageProjects(db: Db, f: { limit: number; offset: number; enabled?: boolean; q?: string }) {
  const base = db('projects');
  if (f.enabled !== undefined) base.where('enabled', f.enabled);
  if (f.q) base.whereILike('name', `%${f.q.replace(/[%_\\]/g, '\\$&')}%`);
  const { rows, ...page } = await pageRows<ProjectRow>(base, f, [{ column: 'name', order: 'asc' }]);
  return { items: rows, ...page };
}

export async function findProject(db: Db, id: string): Promise<ProjectRow | undefined> {
  return db('projects').where({ id }).first();
}

export async function findProjectByName(db: Db, name: string): Promise<ProjectRow | undefined> {
  return db('projects').where({ name }).first();
}

export async function insertProject(db: Db, fields: ProjectFields): Promise<ProjectRow> {
  const [row] = await db('projects').insert(fields).returning('*');
  return row as ProjectRow;
}

export async function updateProject(db: Db, id: string, fields: ProjectFields): Promise<ProjectRow | undefined> {
  const [row] = await db('projects').where({ id }).update({ ...fields, updated_at: db.fn.now() }).returning('*');
  return row as ProjectRow | undefined;
}

export async function deleteProject(db: Db, id: string): Promise<boolean> {
  return (await db('projects').where({ id }).delete()) > 0;
}
