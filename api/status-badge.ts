/** What a job's badge says about its newest finished build. */
export interface BadgeMessage {
  message: string;
  /** A shields.io colour name, for the endpoint JSON. */
  colorName: string;
  /** The same colour as hex, for the SVG. */
  color: string;
}

export const BADGE_LABEL = 'build';

const PASSING: BadgeMessage = { message: 'passing', colorName: 'brightgreen', color: '#4c1' };
const FAILING: BadgeMessage = { message: 'failing', colorName: 'red', color: '#e05d44' };
const CANCELLED: BadgeMessage = { message: 'cancelled', colorName: 'lightgrey', color: '#9f9f9f' };
const PENDING: BadgeMessage = { message: 'pending', colorName: 'yellow', color: '#dfb317' };
export const UNKNOWN: BadgeMessage = { message: 'unknown', colorName: 'lightgrey', color: '#9f9f9f' };

/** A finished status as passing, failing or cancelled; no finished build yet as pending. */
export function badgeMessageOf(status: string | undefined): BadgeMessage {
  if (status === undefined) return PENDING;
  if (status === 'succeeded') return PASSING;
  if (status === 'cancelled' || status === 'aborted') return CANCELLED;
  return FAILING;
}

/** Approximate advance widths of Verdana 11px (the shields.io font), enough to size the boxes. */
function textWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    if ('ijl.,:;!|\'`'.includes(ch)) width += 3.5;
    else if ('frt()[]{} '.includes(ch)) width += 4.5;
    else if ('mwMW'.includes(ch)) width += 10;
    else if (ch >= 'A' && ch <= 'Z') width += 7.5;
    else width += 6.5;
  }
  return Math.round(width);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/**
 * A two-part badge in shields.io's look: `flat` (the badge route, rounded with a gloss) or `flat-square`
 * (the shield route). Its bytes depend only on the label and message, so ETags are stable.
 */
export function renderBadge(label: string, badge: BadgeMessage, style: 'flat' | 'flat-square'): string {
  const padding = 6;
  const left = textWidth(label) + 2 * padding;
  const right = textWidth(badge.message) + 2 * padding;
  const width = left + right;
  const l = escapeXml(label);
  const m = escapeXml(badge.message);
  const rounded = style === 'flat';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="${l}: ${m}">`,
    `<title>${l}: ${m}</title>`,
    ...(rounded
      ? [
          '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>',
          `<clipPath id="r"><rect width="${width}" height="20" rx="3" fill="#fff"/></clipPath>`,
        ]
      : []),
    `<g${rounded ? ' clip-path="url(#r)"' : ''} shape-rendering="crispEdges">`,
    `<rect width="${left}" height="20" fill="#555"/>`,
    `<rect x="${left}" width="${right}" height="20" fill="${badge.color}"/>`,
    ...(rounded ? [`<rect width="${width}" height="20" fill="url(#s)"/>`] : []),
    '</g>',
    '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">',
    `<text x="${left / 2}" y="14">${l}</text>`,
    `<text x="${left + right / 2}" y="14">${m}</text>`,
    '</g>',
    '</svg>',
    '',
  ].join('\n');
}

/** shields.io's endpoint JSON (https://shields.io/badges/endpoint-badge). */
export function shieldsEndpoint(label: string, badge: BadgeMessage): { schemaVersion: 1; label: string; message: string; color: string } {
  return { schemaVersion: 1, label, message: badge.message, color: badge.colorName };
}
