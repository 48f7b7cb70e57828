import crypto from 'node:crypto';

/**
 * The marker of a personal slot: random per process, so no page data can hold it, and never sent (every slot of a
 * shared render is filled before the page leaves, fillPersonalParts).
 */
const MARK = `rm-personal-${crypto.randomBytes(16).toString('hex')}`;

/**
 * Where a render shared by the signed-in viewers of one role (viewer.ts, roleTemplateOf) leaves a part that is one
 * viewer's own (their name, their CSRF token, their star of the job), to be filled per request.
 */
export function personalSlot(name: string): string {
  return `${MARK}-${name}`;
}

/**
 * A shared page with each personal slot replaced by this viewer's part: `parts` maps a slot to its HTML (escaped by
 * the caller). A slot left unfilled is a bug of the page, and an error rather than a marker sent to the browser.
 */
export function fillPersonalParts(html: Buffer, parts: Record<string, string>): Buffer {
  let text = html.toString('utf8');
  for (const [slot, value] of Object.entries(parts)) text = text.split(slot).join(value);
  if (text.includes(MARK)) throw new Error('a personal part of a page shared by role was left unfilled');
  return Buffer.from(text, 'utf8');
}
