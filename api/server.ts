import http from 'node:http';
import type { AppDeps } from './route';
import { buildApp } from './app';
import { allRoutes } from './routes';
import { cacheSigningKey } from './nix-cache/signing-key';

export interface RunningApi {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startApi(deps: AppDeps, port: number, host: string, log: (line: string) => void = () => {}): Promise<RunningApi> {
  cacheSigningKey(deps.config); // the binary cache's key: read, or generated into the data folder on first start
  const { app } = buildApp(deps, allRoutes(), log);
  // Long enough for a 100 kB path segment to reach the route table, which answers 400 naming the parameter.
  const server = http.createServer({ maxHeaderSize: 256 * 1024 }, app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    server,
    url: `http://${shownHost}:${actualPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
