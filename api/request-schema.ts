import type { JsonSchema } from './route';

/**
 * What the database will take, applied to every request schema of the route table, so that the
 * validators (ajv) and the OpenAPI document say the same thing and no value reaches PostgreSQL that
 * it would refuse:
 * - text without NUL characters (PostgreSQL text cannot hold `\u0000`);
 * - a maxLength on every string (every text column is `text`, but indexes and sane rows are not
 *   unbounded): MAX_BODY_STRING_LENGTH in bodies, MAX_PARAMETER_LENGTH in paths and query strings;
 * - integers within PostgreSQL's int4 (every integer column the API writes or compares is int4 or int8);
 * - a `limit` query parameter is capped rather than refused: any positive int4 is accepted, and the
 *   route's own maximum becomes the cap (the page's `limit` field says what was applied).
 */
export const MAX_BODY_STRING_LENGTH = 65536;
export const MAX_PARAMETER_LENGTH = 1024;
export const INT4_MIN = -2147483648;
export const INT4_MAX = 2147483647;
export const NO_NUL = '^[^\\u0000]*$';

/** Formats whose values can never hold NUL or grow long: ajv checks them strictly. */
const BOUNDED_FORMATS = new Set(['uuid', 'date-time', 'date', 'time', 'email', 'ipv4', 'ipv6']);

export type SchemaPlace = 'params' | 'query' | 'body';

export interface RequestSchema {
  schema: JsonSchema;
  /** Query parameters whose larger values are lowered to this cap (name → cap). */
  caps: Record<string, number>;
}

function hasType(schema: JsonSchema, type: string): boolean {
  const t = schema.type;
  return t === type || (Array.isArray(t) && t.includes(type));
}

function hardenNode(node: unknown, place: SchemaPlace): unknown {
  if (Array.isArray(node)) return node.map((n) => hardenNode(n, place));
  if (!node || typeof node !== 'object') return node;
  const schema: JsonSchema = { ...(node as JsonSchema) };
  for (const key of ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains']) {
    if (schema[key] && typeof schema[key] === 'object') schema[key] = hardenNode(schema[key], place);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf', 'prefixItems']) {
    if (Array.isArray(schema[key])) schema[key] = hardenNode(schema[key], place);
  }
  for (const key of ['properties', 'patternProperties']) {
    const props = schema[key] as Record<string, unknown> | undefined;
    if (props && typeof props === 'object') schema[key] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, hardenNode(v, place)]));
  }
  const constrained = schema.enum !== undefined || schema.const !== undefined;
  if (hasType(schema, 'string') && !constrained && !BOUNDED_FORMATS.has(String(schema.format))) {
    if (schema.pattern === undefined) schema.pattern = NO_NUL;
    if (schema.maxLength === undefined) schema.maxLength = place === 'body' ? MAX_BODY_STRING_LENGTH : MAX_PARAMETER_LENGTH;
  }
  if (hasType(schema, 'integer') && !constrained) {
    if (schema.minimum === undefined && schema.exclusiveMinimum === undefined) schema.minimum = INT4_MIN;
    if (schema.maximum === undefined && schema.exclusiveMaximum === undefined) schema.maximum = INT4_MAX;
  }
  if (hasType(schema, 'number') && !constrained) {
    // JSON numbers past double range parse as Infinity; keep them finite and within what the columns take.
    if (schema.minimum === undefined && schema.exclusiveMinimum === undefined) schema.minimum = -1e15;
    if (schema.maximum === undefined && schema.exclusiveMaximum === undefined) schema.maximum = 1e15;
  }
  return schema;
}

/** The schema a route's params, query or body is validated with and documented as. */
export function requestSchema(schema: JsonSchema, place: SchemaPlace): RequestSchema {
  const hardened = hardenNode(schema, place) as JsonSchema;
  const caps: Record<string, number> = {};
  const props = hardened.properties as Record<string, JsonSchema> | undefined;
  const limit = props?.limit;
  if (place === 'query' && limit && hasType(limit, 'integer') && typeof limit.maximum === 'number' && limit.maximum < INT4_MAX) {
    caps.limit = limit.maximum;
    props!.limit = {
      ...limit,
      maximum: INT4_MAX,
      description: `${limit.description ? `${String(limit.description)}; ` : ''}values above ${limit.maximum} are capped to ${limit.maximum}`,
    };
  }
  return { schema: hardened, caps };
}

/** Lowers capped query parameters (after validation). */
export function applyCaps(query: Record<string, unknown>, caps: Record<string, number>): void {
  for (const [name, cap] of Object.entries(caps)) {
    if (typeof query[name] === 'number' && (query[name] as number) > cap) query[name] = cap;
  }
}

/** The first string (or object key) holding a NUL character, as a field path, e.g. `body.jobsets.0.name`. */
export function fieldWithNul(value: unknown, where: string): string | undefined {
  const stack: Array<[unknown, string]> = [[value, where]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push([item, `${path}.${i}`]));
    } else if (v && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        if (k.includes('\u0000')) return path;
        stack.push([item, `${path}.${k}`]);
      }
    }
  }
  return undefined;
}

/** How deeply arrays and objects nest in a parsed JSON value (0 for a scalar). */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v && typeof v === 'object') {
      const d = depth + 1;
      if (d > deepest) deepest = d;
      for (const item of Array.isArray(v) ? v : Object.values(v)) if (item && typeof item === 'object') stack.push([item, d]);
    }
  }
  return deepest;
}
