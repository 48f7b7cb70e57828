import type { RouteDef } from '../route';
import type { PageInput } from './page';

/** The audit entry of a form's action (what the API route writes for the same mutation). */
export interface FormAudit {
  action: string;
  targetKind: string;
  targetId: string | null;
  details: Record<string, unknown>;
}

/** What a form action gets: a page's input for a signed-in viewer whose CSRF token and role were checked, and the form's fields. */
export interface FormActionInput extends Omit<PageInput, 'query'> {
  /** A field of the form, '' when absent; NUL characters removed, surrounding white space trimmed. */
  field(name: string): string;
}

/**
 * A dashboard form that works without script: `POST path` with an urlencoded body carrying the session's
 * csrf_token. It may do what the API route `api` allows (its declared access), and nobody else sees or uses
 * it. `run` throws ApiErrors for bad input (answered as an HTML page with their 4xx), or answers where to go.
 */
export interface FormActionDef {
  path: string;
  api: { method: RouteDef['method']; path: string };
  run(input: FormActionInput): Promise<{ redirect: string; audit: FormAudit }>;
}

export function defineFormAction(def: FormActionDef): FormActionDef {
  return def;
}
