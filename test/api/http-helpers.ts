/** Raw HTTP requests for the API tests: every header (Host, Origin, Cookie) under the test's control. */
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export interface RawRequest {
  method?: string;
  path: string;
  token?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export function raw(port: number, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...r.headers };
    if (r.token !== undefined) headers.Authorization = `Bearer ${r.token}`;
    if (r.body !== undefined) headers['Content-Length'] = Buffer.byteLength(r.body);
    const req = http.request(
      { host: '127.0.0.1', port, method: r.method ?? 'GET', path: r.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
}

export function errorOf(r: RawResponse): { code: string; message: string } {
  return (r.json as { error: { code: string; message: string } }).error;
}
