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
  // Written straight to the socket (ctx.respond = false): a client that leaves is normal here, not
  // an error for Koa to report.
  const res = ctx.res;
  ctx.respond = false;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  const write = (s: string) => {
    if (!res.destroyed && !res.writableEnded) res.write(s);
  };

  const abort = new AbortController();
  res.once('close', () => abort.abort());
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
      if (!res.writableEnded) res.end();
    });
}
