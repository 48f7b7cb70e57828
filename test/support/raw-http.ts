import http from 'node:http';

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * Sends raw bytes with exactly the headers given (fetch would add a Content-Type, and invalid UTF-8 cannot go
 * through a JS string) and reads the answer as text. A connection of its own (no keep-alive pool), so a body
 * the server left unread spoils no later request; a connection closed in the middle of the answer is an
 * error (it emits no 'end', nor an 'error' without a listener), not a wait without end.
 */
export function sendRaw(url: string, method: string, body: Buffer | undefined, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('close', () => { if (!res.complete) reject(new Error(`the connection closed before the answer to ${method} ${url} ended`)); });
    });
    req.on('error', reject);
    req.end(body);
  });
}
