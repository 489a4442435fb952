// A small HTTP load balancer for trying several Vigie nodes on one machine (`npm run cluster`) and
// for the fault tests. Round-robin per request over the nodes, on 127.0.0.1 only. A node that
// refuses a connection is skipped for a second and the request goes to the next one (the body is
// buffered, so even a POST is retried safely: nothing reached the dead node). Streams (SSE) and
// WebSocket upgrades are piped through; when a node dies, its streams end and the browser
// reconnects — to another node. Sets X-Forwarded-For/-Proto/-Host, overwriting what the client sent (run the nodes with
// VIGIE_TRUST_PROXY=true). Not a production load balancer: use nginx, HAProxy or the platform's.
import http from 'node:http';
import net from 'node:net';

export interface Target {
  host: string;
  port: number;
}

export interface Balancer {
  url: string;
  port: number;
  /** Requests forwarded per target, for tests and the cluster's status line. */
  counts(): number[];
  close(): Promise<void>;
}

const DOWN_FOR_MS = 1000;
const MAX_BODY = 1024 * 1024;
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'];

export async function startBalancer(options: { port?: number; targets: Target[]; host?: string }): Promise<Balancer> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== 'localhost') throw new Error('the balancer listens on 127.0.0.1 only');
  const targets = options.targets.map((t) => ({ ...t, downUntil: 0, forwarded: 0 }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  let next = 0;

  /** Targets in round-robin order, the ones that failed recently last. */
  const order = () => {
    const start = next++ % targets.length;
    const rotated = [...targets.slice(start), ...targets.slice(0, start)];
    const now = Date.now();
    return [...rotated.filter((t) => t.downUntil <= now), ...rotated.filter((t) => t.downUntil > now)];
  };

  const forwardedHeaders = (req: http.IncomingMessage) => {
    const headers: http.OutgoingHttpHeaders = { ...req.headers };
    for (const name of HOP_BY_HOP) delete headers[name];
    const client = req.socket.remoteAddress ?? '';
    // Overwritten, not appended: what the client wrote there must not reach the nodes.
    headers['x-forwarded-for'] = client;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = req.headers.host ?? '';
    return headers;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = forwardedHeaders(req);
      if (body.length || req.method === 'POST' || req.method === 'PUT') headers['content-length'] = String(body.length);
      const candidates = order();
      const attempt = (i: number) => {
        const target = candidates[i];
        if (!target) {
          res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' }).end('No Vigie node is reachable.\n');
          return;
        }
        let answered = false;
        const upstream = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers, agent }, (upstreamRes) => {
          answered = true;
          target.forwarded += 1;
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
          // The node died mid-stream: cut the client too, so it reconnects (EventSource does).
          upstreamRes.on('aborted', () => res.destroy());
          upstreamRes.on('error', () => res.destroy());
        });
        upstream.on('error', (error: NodeJS.ErrnoException) => {
          if (answered) return res.destroy();
          // Nothing reached the node (refused, reset before any answer): try the next one.
          target.downUntil = Date.now() + DOWN_FOR_MS;
          if (res.headersSent) return res.destroy();
          if (error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET' || error.code === 'EPIPE') return attempt(i + 1);
          res.writeHead(502, { 'retry-after': '1' }).end();
        });
        res.on('close', () => {
          if (!res.writableFinished) upstream.destroy();
        });
        upstream.end(body);
      };
      attempt(0);
    });
  });

  // WebSocket (or any upgrade): a raw TCP pipe to the next node that accepts.
  server.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
    const candidates = order();
    const attempt = (i: number) => {
      const target = candidates[i];
      if (!target) return socket.destroy();
      const upstream = net.connect(target.port, target.host);
      upstream.once('connect', () => {
        target.forwarded += 1;
        const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-forwarded-proto': 'http' };
        const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`)];
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length) upstream.write(head);
        upstream.pipe(socket).pipe(upstream);
      });
      upstream.once('error', () => {
        if (upstream.connecting || !upstream.bytesWritten) {
          target.downUntil = Date.now() + DOWN_FOR_MS;
          return attempt(i + 1);
        }
        socket.destroy();
      });
      socket.on('error', () => upstream.destroy());
    };
    attempt(0);
  });

  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    counts: () => targets.map((t) => t.forwarded),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
