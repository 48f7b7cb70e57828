import { defineRoute, HANDLED, Reply, type AppDeps, type RouteDef } from '../route';
import { errorBody } from '../schemas';
import { invalidField, notFound } from '../errors';
import { renderNixCacheInfo } from '../../lib/binary-cache/narinfo';
import { narFilePath, parseNarFileName } from '../../lib/binary-cache/nar-files';
import { NarInfoLookup } from '../nix-cache/narinfo-lookup';
import { cacheSigningKey } from '../nix-cache/signing-key';
import { sendNarFile } from '../nix-cache/nar-file-response';

/** Lower numbers win; cache.nixos.org has 40, so a CI server's own cache is asked first (as circus and harmonia do). */
const CACHE_PRIORITY = 30;
const NARINFO = /^([0-9a-df-np-sv-z]{32})\.narinfo$/;

const lookups = new WeakMap<AppDeps, NarInfoLookup>();
function narInfoLookup(deps: AppDeps): NarInfoLookup {
  let lookup = lookups.get(deps);
  if (!lookup) {
    lookup = new NarInfoLookup(deps.db, deps.config.dataDir, cacheSigningKey(deps.config));
    lookups.set(deps, lookup);
  }
  return lookup;
}

const hashParams = { type: 'object', required: ['hash'], properties: { hash: { type: 'string', minLength: 1, maxLength: 200 } } };

/**
 * The binary cache at `/nix-cache`: the outputs Ringmaster built, with their closures, each NAR
 * compressed once when its build finished. Reads follow the require-auth setting like every other read
 * (a Nix client then sends an API key as the password of a netrc entry).
 */
export const nixCacheRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/nix-cache/nix-cache-info',
    summary: 'Nix binary cache metadata',
    tag: 'nix-cache',
    access: 'public',
    responses: { 200: { description: 'StoreDir, WantMassQuery and Priority', contentType: 'text/x-nix-cache-info' } },
    handler: async (_input, rc) => {
      rc.koa.type = 'text/x-nix-cache-info';
      rc.koa.set('cache-control', 'public, max-age=86400');
      rc.koa.body = renderNixCacheInfo({ priority: CACHE_PRIORITY });
      return HANDLED;
    },
  }),
  defineRoute<{ hash: string }>({
    method: 'GET',
    path: '/nix-cache/{hash}',
    summary: 'NAR info lookup: `/nix-cache/<store path hash>.narinfo`, signed with the cache key',
    tag: 'nix-cache',
    access: 'public',
    params: hashParams,
    responses: {
      200: { description: 'the narinfo', contentType: 'text/x-nix-narinfo' },
      400: errorBody,
      404: errorBody,
    },
    handler: async ({ params }, rc) => {
      const m = NARINFO.exec(params.hash);
      if (!m) {
        if (params.hash.endsWith('.narinfo')) throw invalidField('params.hash', 'must be a 32-character Nix base-32 store path hash followed by .narinfo');
        throw notFound('cache entry', params.hash);
      }
      const text = await narInfoLookup(rc.deps).narInfo(m[1]);
      // The common answer to a client asking every substituter about every path: a plain reply, no exception.
      if (text === undefined) return new Reply(404, { error: `no store path with hash ${m[1]} in this cache`, error_code: 'NOT_FOUND' });
      rc.koa.type = 'text/x-nix-narinfo';
      rc.koa.set('cache-control', 'public, max-age=60');
      rc.koa.body = text;
      return HANDLED;
    },
  }),
  defineRoute<{ hash: string }>({
    method: 'GET',
    path: '/nix-cache/nar/{hash}',
    summary: 'NAR download: `/nix-cache/nar/<file hash>.nar.xz` (the URL a narinfo names), with Range support',
    tag: 'nix-cache',
    access: 'public',
    params: hashParams,
    responses: {
      200: { description: 'the xz-compressed NAR', contentType: 'application/x-xz' },
      206: { description: 'one byte range of it', contentType: 'application/x-xz' },
      404: errorBody,
      416: errorBody,
    },
    handler: async ({ params }, rc) => {
      const name = parseNarFileName(params.hash);
      if (!name) throw notFound('NAR', params.hash);
      await sendNarFile(rc.koa, narFilePath(rc.deps.config.dataDir, name.fileHash, name.compression), 'application/x-xz', name.fileHash);
      return HANDLED;
    },
  }),
];
