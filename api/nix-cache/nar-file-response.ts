import fsp from 'node:fs/promises';
import parseRange from 'range-parser';
import type { Context } from 'koa';
import { ApiError } from '../errors';

/**
 * Answers a stored NAR file: 200 with the whole file, or 206 with one byte range (`Range: bytes=a-b`),
 * 416 for a range outside it; HEAD gets the headers only. A file that is not there is a 404. The file
 * is opened before anything is sent, so a file removed meanwhile cannot turn into a broken response.
 */
export async function sendNarFile(ctx: Context, file: string, contentType: string, etag: string): Promise<void> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ApiError('NOT_FOUND', 'no such NAR in this cache');
    throw err;
  }
  let handed = false;
  try {
    const { size } = await handle.stat();
    ctx.set('accept-ranges', 'bytes');
    ctx.set('cache-control', 'public, max-age=31536000, immutable');
    ctx.set('etag', `"${etag}"`);
    ctx.type = contentType;
    let start = 0;
    let end = size - 1;
    const header = ctx.get('range');
    const ifRange = ctx.get('if-range');
    if (header && (!ifRange || ifRange === `"${etag}"`)) {
      const ranges = parseRange(size, header, { combine: true });
      if (ranges === -1) {
        ctx.status = 416;
        ctx.set('content-range', `bytes */${size}`);
        ctx.body = { error: `the range ${header} lies outside the file (${size} bytes)`, error_code: 'VALIDATION_ERROR', details: [{ field: 'headers.range', message: 'not satisfiable' }] };
        return;
      }
      // A malformed header (-2) or several ranges: answer the whole file, as RFC 9110 allows.
      if (Array.isArray(ranges) && ranges.length === 1 && ranges.type === 'bytes') {
        start = ranges[0].start;
        end = ranges[0].end;
        ctx.status = 206;
        ctx.set('content-range', `bytes ${start}-${end}/${size}`);
      }
    }
    if (ctx.status !== 206) ctx.status = 200;
    ctx.length = end - start + 1;
    if (ctx.method === 'HEAD') return;
    if (size === 0) {
      ctx.body = Buffer.alloc(0);
      return;
    }
    ctx.body = handle.createReadStream({ start, end, highWaterMark: 1024 * 1024 });
    handed = true;
  } finally {
    if (!handed) await handle.close();
  }
}
