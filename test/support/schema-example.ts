import type { JsonSchema } from '../../api/route';

/**
 * A minimal valid value for a route's JSON schema: only required properties (or the first one, when
 * the object needs at least one), the first enum value, the smallest number, a string that meets the
 * length limits and pattern. Strings come from the schema's own examples, else (with a pattern) from a few plausible values; ids
 * (`format: uuid`) come from `ids` by property name. Throws, naming the field, when it cannot fill one,
 * so that a route added later with a shape nobody taught it fails loudly instead of being skipped.
 */
const PATTERN_CANDIDATES = ['matrix-example', 'x86_64-linux', 'abcdef1', 'example', 'a', 'ssh://matrix@builder.example.org'];

export function exampleFor(schema: JsonSchema, ids: Record<string, string>, field = 'body'): unknown {
  const s = schema as Record<string, any>;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  if (s.default !== undefined) return s.default;
  const type = Array.isArray(s.type) ? s.type.find((t: string) => t !== 'null') : s.type;
  switch (type) {
    case 'object': {
      const properties: Record<string, JsonSchema> = s.properties ?? {};
      const names: string[] = [...(s.required ?? [])];
      if (names.length < (s.minProperties ?? 0)) names.push(...Object.keys(properties).filter((n) => !names.includes(n)).slice(0, s.minProperties - names.length));
      const out: Record<string, unknown> = {};
      for (const name of names) {
        if (!properties[name]) throw new Error(`${field}.${name}: required but has no schema to fill it from`);
        out[name] = exampleFor(properties[name], ids, `${field}.${name}`);
      }
      return out;
    }
    case 'array': {
      const count = s.minItems ?? 0;
      if (count === 0) return [];
      if (!s.items) throw new Error(`${field}: an array of at least ${count} items without an item schema`);
      return Array.from({ length: count }, () => exampleFor(s.items, ids, `${field}[]`));
    }
    case 'integer':
    case 'number':
      return s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 1);
    case 'boolean':
      return true;
    case 'string':
      return exampleString(s, ids, field);
    default:
      throw new Error(`${field}: cannot make an example of schema ${JSON.stringify(s)}`);
  }
}

function exampleString(s: Record<string, any>, ids: Record<string, string>, field: string): string {
  const name = field.split('.').pop()!;
  if (s.format === 'uuid') {
    const id = ids[name];
    if (!id) throw new Error(`${field}: a uuid with no fixture named "${name}"`);
    return id;
  }
  if (s.format === 'email') return 'matrix@example.org';
  const fits = (v: string) => v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity) && (!s.pattern || new RegExp(s.pattern, 'u').test(v));
  const declared = [s.example, ...(Array.isArray(s.examples) ? s.examples : [])].filter((v): v is string => typeof v === 'string');
  const candidates = [...declared, ...(s.pattern ? PATTERN_CANDIDATES : ['x'.repeat(Math.max(s.minLength ?? 1, 1))])];
  const found = candidates.find(fits);
  if (found === undefined) throw new Error(`${field}: no example string fits ${JSON.stringify(s)}`);
  return found;
}
