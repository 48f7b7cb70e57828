/**
 * Escaping of user input before it goes into LDAP strings. ldapts escapes values of the filter and DN
 * objects it builds itself, but not values spliced into an administrator's template, so these do that.
 */

/** A value for a filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A value for an attribute of a DN (RFC 4514 §2.4): `"`, `+`, `,`, `;`, `<`, `>`, `\` and `=` get a
 * backslash, NUL becomes `\00`, and a leading space or `#` and a trailing space are escaped.
 */
export function escapeDnValue(value: string): string {
  let out = value.replace(/["+,;<>\\=]/g, (c) => `\\${c}`).replace(/\0/g, '\\00');
  if (out.startsWith(' ') || out.startsWith('#')) out = `\\${out}`;
  if (out.length > 1 && out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** Replaces every `{name}` in template by its (already escaped) value; other text stays as written. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (Object.hasOwn(values, name) ? values[name] : whole));
}

/** A DN in a form to compare with another: lower case, no spaces around `,`, `=` and `+`. */
export function normalizeDn(dn: string): string {
  return dn.trim().replace(/\s*([,=+])\s*/g, '$1').toLowerCase();
}
