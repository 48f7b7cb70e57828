import { defineRoute, type RouteDef } from '../route';
import { ApiError } from '../errors';
import { errorBody } from '../schemas';
import { readConfigFile, redactConfigContents, replaceConfigFile } from '../../lib/config-file';
import { liveConfigFile } from '../../lib/live-config-file';

const configSchema = {
  type: 'object',
  required: ['contents'],
  properties: { contents: { type: 'string', description: 'The config file (JSON) as text; secrets read as "[redacted]".' } },
};

/** Audit rows keep the redacted text of small configs, and only the size of big ones. */
const AUDITED_CONTENTS_MAX = 64 * 1024;

export const adminConfigRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/admin/config',
    summary: 'Read the server config file',
    tag: 'admin',
    access: 'admin',
    responses: { 200: configSchema, 401: errorBody, 403: errorBody },
    handler: async (_input, rc) => {
      const file = rc.deps.config.configFile;
      try {
        return { contents: redactConfigContents(await readConfigFile(file)) };
      } catch (err) {
        throw new ApiError('INTERNAL_ERROR', `cannot show the config file ${file}: ${(err as Error).message}`);
      }
    },
  }),
  defineRoute<{}, {}, { contents: string }>({
    method: 'PUT',
    path: '/api/v1/admin/config',
    summary: 'Replace the server config file',
    tag: 'admin',
    access: 'admin',
    body: {
      type: 'object',
      required: ['contents'],
      additionalProperties: false,
      properties: { contents: { type: 'string', maxLength: 1024 * 1024 } },
    },
    responses: { 200: configSchema, 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ body }, rc) => {
      const result = await replaceConfigFile(rc.deps.config.configFile, body.contents);
      // The settings the file holds apply at once in this process (other processes see the change within a second).
      liveConfigFile(rc.deps.config.configFile).invalidate();
      if (!result.ok) {
        const first = result.problems[0];
        throw new ApiError('VALIDATION_ERROR', `invalid ${first.field}: ${first.message}`, result.problems);
      }
      rc.audit = {
        targetKind: 'config',
        targetId: null,
        details: result.contents.length <= AUDITED_CONTENTS_MAX ? { contents: result.contents } : { contents_bytes: result.contents.length },
      };
      return { contents: result.contents };
    },
  }),
];
