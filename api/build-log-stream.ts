import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import { followBuildLog } from '../lib/build-log';

const KEEP_ALIVE_MS = 15_000;

/** One SSE message carrying text: each line of it a `data:` line (the client joins them with "\n"). */
export function sseData(text: string): string {
  return `${text.split(/\r?\n/).map((line) => `data: ${line}`).join('\n')}\n\n`;
}

/**
 * Answers the request with Server-Sent Events: the build's log as `data:` messages while it grows,
 * then `event: end`. Stops following when the client goes away.
 */
export function streamBuildLog(ctx: Context, opts: { dataDir: string; buildId: string; isFinished: () => Promise<boolean>; pollMs?: number }): void {
  const stream = new PassThrough();
  stream.on('error', () => {});
  const write = (s: string) => {
    if (!stream.destroyed && !stream.writableEnded) stream.write(s);
  };
  ctx.status = 200;
  ctx.set('content-type', 'text/event-stream; charset=utf-8');
  ctx.set('cache-control', 'no-cache');
  ctx.set('x-accel-buffering', 'no');
  ctx.body = stream;

  const abort = new AbortController();
  ctx.res.once('close', () => abort.abort());
  write(`: log of build ${opts.buildId}\n\n`);
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  keepAlive.unref();

  followBuildLog(opts.dataDir, opts.buildId, {
    isFinished: opts.isFinished,
    signal: abort.signal,
    pollMs: opts.pollMs,
    onChunk: (text) => write(sseData(text)),
  })
    .then(() => {
      if (!abort.signal.aborted) write('event: end\ndata: \n\n');
    })
    .catch((err: unknown) => {
      write(`event: error\n${sseData(`could not read the log: ${(err as Error).message}`)}`);
    })
    .finally(() => {
      clearInterval(keepAlive);
      if (!stream.destroyed) stream.end();
    });
}
