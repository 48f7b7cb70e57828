import nodemailer from 'nodemailer';
import {
  emailMessage,
  forgeStatusRequest,
  SIGNATURE_HEADER,
  signatureOf,
  slackBody,
  webhookBody,
  type HttpDelivery,
} from '../../lib/notifications/messages';
import type { NotificationTarget } from '../../lib/notifications/targets';
import type { NotificationTaskRow } from '../../lib/notifications/task-records';

/** How long one HTTP request or SMTP transaction may take. */
const SEND_TIMEOUT_MS = 20_000;

/** A delivery the far side refused or did not answer; the message never carries a credential. */
export class DeliveryError extends Error {}

async function post(delivery: HttpDelivery, what: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(delivery.url, { method: 'POST', headers: delivery.headers, body: delivery.body, signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new DeliveryError(`${what}: ${e.name === 'TimeoutError' ? `no answer within ${SEND_TIMEOUT_MS / 1000} s` : e.cause?.message ?? e.message}`);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new DeliveryError(`${what}: HTTP ${res.status}${text ? `: ${text.slice(0, 300)}` : ''}`);
}

/** Where a URL points, without its path or query (which may hold a credential, as Slack's do). */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an invalid URL';
  }
}

/** Sends one task to its target: one HTTP request or one SMTP transaction. Throws DeliveryError. */
export async function sendNotification(target: NotificationTarget, task: NotificationTaskRow): Promise<void> {
  const p = task.payload;
  switch (target.type) {
    case 'webhook': {
      const body = JSON.stringify(webhookBody(task.id, p, new Date(task.event_at).toISOString()));
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'ringmaster',
        'x-ringmaster-event': p.event,
        'x-ringmaster-delivery': task.id,
      };
      if (target.secret) headers[SIGNATURE_HEADER.toLowerCase()] = signatureOf(target.secret, body);
      return post({ url: target.url, headers, body }, `webhook ${hostOf(target.url)}`);
    }
    case 'github_status':
    case 'gitea_status':
    case 'gitlab_status': {
      const request = forgeStatusRequest(target.type, target.api_url, target.token, p);
      return post(request, `${target.type} ${hostOf(request.url)}`);
    }
    case 'slack':
      return post({ url: target.webhook_url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(slackBody(p)) }, `slack ${hostOf(target.webhook_url)}`);
    case 'email': {
      const { subject, text } = emailMessage(p);
      const smtp = target.smtp;
      const transport = nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port ?? (smtp.secure ? 465 : 587),
        secure: smtp.secure ?? false,
        ignoreTLS: smtp.ignore_tls ?? false,
        auth: smtp.username ? { user: smtp.username, pass: smtp.password ?? '' } : undefined,
        connectionTimeout: SEND_TIMEOUT_MS,
        greetingTimeout: SEND_TIMEOUT_MS,
        socketTimeout: SEND_TIMEOUT_MS,
      });
      try {
        await transport.sendMail({ from: target.from, to: target.to, subject, text, headers: { 'X-Ringmaster-Delivery': task.id } });
      } catch (err) {
        throw new DeliveryError(`email via ${smtp.host}: ${(err as Error).message}`);
      } finally {
        transport.close();
      }
      return;
    }
  }
}
