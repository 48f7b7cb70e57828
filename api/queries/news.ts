import type { Db } from '../../lib/db';

export interface NewsRow {
  id: string;
  title: string;
  content: string;
  created_by: string | null;
  created_at: Date;
}

/** All news entries, newest first. */
export async function listNews(db: Db): Promise<NewsRow[]> {
  return db('news').select('*').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]);
}

export async function insertNews(db: Db, entry: { title: string; content: string; created_by: string | null }): Promise<NewsRow> {
  const [row] = await db('news').insert(entry).returning('*');
  return row as NewsRow;
}

export async function deleteNews(db: Db, id: string): Promise<boolean> {
  return (await db('news').where({ id }).delete()) > 0;
}
