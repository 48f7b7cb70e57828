import type { Db } from '../../lib/db';
import type { ForgeType } from '../webhooks/forge-event';

/** A project's webhook as the API shows it: never its secret. */
export interface WebhookView {
  id: string;
  project_id: string;
  forge_type: ForgeType;
  enabled: boolean;
  created_at: Date;
}

/** A webhook with its secret, sealed by lib/secret-box.ts; only the receiver reads it. */
export interface WebhookWithSealedSecret extends WebhookView {
  secret: string;
}

const VIEW_COLUMNS = ['id', 'project_id', 'forge_type', 'enabled', 'created_at'];

export async function listWebhooks(db: Db, projectId: string): Promise<WebhookView[]> {
  return db('project_webhooks').where({ project_id: projectId }).orderBy([{ column: 'created_at' }, { column: 'id' }]).select(VIEW_COLUMNS);
}

export async function findWebhookByForge(db: Db, projectId: string, forge: ForgeType): Promise<WebhookView | undefined> {
  return db('project_webhooks').where({ project_id: projectId, forge_type: forge }).first(VIEW_COLUMNS);
}

export async function insertWebhook(db: Db, projectId: string, forge: ForgeType, sealedSecret: string): Promise<WebhookView> {
  const [row] = await db('project_webhooks').insert({ project_id: projectId, forge_type: forge, secret: sealedSecret }).returning(VIEW_COLUMNS);
  return row as WebhookView;
}

export async function deleteWebhook(db: Db, projectId: string, webhookId: string): Promise<boolean> {
  return (await db('project_webhooks').where({ project_id: projectId, id: webhookId }).delete()) > 0;
}

/** The enabled webhook a delivery for (project, forge) is checked against. */
export async function findEnabledWebhookWithSecret(db: Db, projectId: string, forge: ForgeType): Promise<WebhookWithSealedSecret | undefined> {
  return db('project_webhooks').where({ project_id: projectId, forge_type: forge, enabled: true }).first([...VIEW_COLUMNS, 'secret']);
}

export interface DeliveryRecord {
  projectId: string;
  forge: ForgeType;
  deliveryId: string;
  event: string | null;
  outcome: 'triggered' | 'ignored';
  triggeredJobsets: string[];
}

/** How long a delivery ID is remembered; forges redeliver within days (GitHub keeps deliveries 3 days). */
export const DELIVERY_MEMORY_DAYS = 30;

/** Records a delivery; false when (project, forge, delivery id) was seen before. Forgets the project's old ones. */
export async function recordDelivery(db: Db, d: DeliveryRecord): Promise<boolean> {
  await db('webhook_deliveries')
    .where({ project_id: d.projectId })
    .where('received_at', '<', db.raw(`now() - interval '${DELIVERY_MEMORY_DAYS} days'`))
    .delete();
  const inserted = await db('webhook_deliveries')
    .insert({
      project_id: d.projectId,
      forge_type: d.forge,
      delivery_id: d.deliveryId,
      event: d.event,
      outcome: d.outcome,
      triggered_jobsets: JSON.stringify(d.triggeredJobsets),
    })
    .onConflict(['project_id', 'forge_type', 'delivery_id'])
    .ignore()
    .returning('id');
  return inserted.length > 0;
}

/** Forgets a delivery whose triggers could not be started, so the forge's redelivery is not taken for a duplicate. */
export async function forgetDelivery(db: Db, projectId: string, forge: ForgeType, deliveryId: string): Promise<void> {
  await db('webhook_deliveries').where({ project_id: projectId, forge_type: forge, delivery_id: deliveryId }).delete();
}
