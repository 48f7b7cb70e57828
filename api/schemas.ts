import type { JsonSchema } from './route';

/** Shared JSON-schema fragments for the route table. */
export const uuid: JsonSchema = { type: 'string', format: 'uuid' };
export const timestamp: JsonSchema = { type: 'string', format: 'date-time' };
export const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });
export const nullableString: JsonSchema = { type: ['string', 'null'] };
export const nullableTimestamp: JsonSchema = nullable(timestamp);
export const stringArray: JsonSchema = { type: 'array', items: { type: 'string' } };

/** A non-empty name safe in URLs: projects, jobsets, channels, builders. */
export const identifier: JsonSchema = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*$' };

/** A pattern for text without control characters (NUL above all, which PostgreSQL text cannot hold). */
export const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*$';

export const idParams: JsonSchema = {
  type: 'object',
  properties: { id: uuid },
  required: ['id'],
  additionalProperties: false,
};

export function paramsOf(names: string[]): JsonSchema {
  return {
    type: 'object',
    properties: Object.fromEntries(names.map((n) => [n, uuid])),
    required: names,
    additionalProperties: false,
  };
}

export const pageQueryProperties = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  offset: { type: 'integer', minimum: 0, default: 0 },
};

export const pageQuery: JsonSchema = {
  type: 'object',
  properties: pageQueryProperties,
  additionalProperties: false,
};

export function pageOf(item: JsonSchema): JsonSchema {
  return {
    type: 'object',
    required: ['items', 'total', 'limit', 'offset'],
    properties: {
      items: { type: 'array', items: item },
      total: { type: 'integer' },
      limit: { type: 'integer' },
      offset: { type: 'integer' },
    },
  };
}

export const arrayOf = (item: JsonSchema): JsonSchema => ({ type: 'array', items: item });

export const errorBody: JsonSchema = {
  type: 'object',
  required: ['error', 'error_code'],
  properties: { error: { type: 'string' }, error_code: { type: 'string' }, details: {} },
};

export const emptyBody: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };

export const noContent = { description: 'No content', contentType: '' };
