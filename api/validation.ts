import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ApiError, type FieldError } from './errors';
import type { JsonSchema } from './route';

const bodyAjv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
// Params and query strings arrive as text: coerce them to the schema's types.
const stringAjv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: 'array', strict: false });
addFormats(bodyAjv);
addFormats(stringAjv);

export type Validator = (value: unknown) => void;

function fieldOf(where: string, e: ErrorObject): string {
  const pointer = e.instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
  const base = pointer ? `${where}.${pointer}` : where;
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required' && typeof p.missingProperty === 'string') return `${base}.${p.missingProperty}`;
  if (e.keyword === 'additionalProperties' && typeof p.additionalProperty === 'string') return `${base}.${p.additionalProperty}`;
  return base;
}

function messageOf(e: ErrorObject): string {
  if (e.keyword === 'required') return 'is required';
  if (e.keyword === 'additionalProperties') return 'is not a known field';
  if (e.keyword === 'enum') return `must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues).map((v) => JSON.stringify(v)).join(', ')}`;
  return e.message ?? 'is invalid';
}

export function compileValidator(where: 'params' | 'query' | 'body', schema: JsonSchema): Validator {
  const fn: ValidateFunction = (where === 'body' ? bodyAjv : stringAjv).compile(schema);
  return (value) => {
    if (fn(value)) return;
    const seen = new Set<string>();
    const details: FieldError[] = [];
    for (const e of fn.errors ?? []) {
      // anyOf/oneOf add a summary error after the branch errors; the branch errors say more.
      if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue;
      const field = fieldOf(where, e);
      const message = messageOf(e);
      const key = `${field} ${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      details.push({ field, message });
    }
    if (details.length === 0) details.push({ field: where, message: 'is invalid' });
    const first = details[0];
    throw new ApiError('VALIDATION_ERROR', `invalid ${first.field}: ${first.message}`, details);
  };
}
