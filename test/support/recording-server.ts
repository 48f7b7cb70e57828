import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the recording server received it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The JSON body, when it parsed. */
  json: any;
  at: number;
  /** The status the server answered. */
  answered: number;
}

export interface RecordingServerBehaviour {
  /** Answer 500 to the first N requests (of each path when `perPath`), then 2xx. */
  failFirst?: number;
  perPath?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer every request with this status (e.g. always 503). */
  status?: number;
}

/**
 * A real HTTP server on a free loopback port standing in for what cannot be reached offline (a
 * forge's status API, a webhook receiver, Slack): it records every request and answers as told.
 * The behaviour can change while it runs.
 */
export class RecordingServer {
  readonly requests: RecordedRequest[] = [];
  behaviour: RecordingServerBehaviour;
  private readonly server: http.Server;
  private served = new Map<string, number>();
  url = '';

  constructor(behaviour: RecordingServerBehaviour = {}) {
    this.behaviour = behaviour;
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        const countKey = this.behaviour.perPath ? path : '*';
        const n = (this.served.get(countKey) ?? 0) + 1;
        this.served.set(countKey, n);
        const status = this.behaviour.status ?? (n <= (this.behaviour.failFirst ?? 0) ? 500 : 201);
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const answer = () => {
          this.requests.push({ method: req.method ?? '', path, headers: req.headers, body, json, at: Date.now(), answered: status });
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(status < 300 ? { ok: true } : { message: `failing on purpose (request ${n})` }));
        };
        if (this.behaviour.delayMs) setTimeout(answer, this.behaviour.delayMs);
        else answer();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The requests that were answered with a success. */
  delivered(): RecordedRequest[] {
    return this.requests.filter((r) => r.answered < 300);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
