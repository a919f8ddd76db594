/**
 * A stand-in for the HuggingFace hub on 127.0.0.1 (an ephemeral port),
 * answering what `@huggingface/hub` asks as the hub does: the revision info
 * (`/api/models/<repo>/revision/<rev>` with `sha`), folder listings
 * (`/api/models/<repo>/tree/<rev>/<folder>` with `lfs.oid`/`lfs.size`),
 * `resolve` with a 302 to a CDN-like path on the same server (headers
 * x-repo-commit, x-linked-etag, x-linked-size, etag), ranged CDN responses,
 * 404 with X-Error-Code (RepoNotFound / EntryNotFound) and 401 without the
 * token asked for. Every request is logged; a file can be cut after some
 * bytes, or served corrupt (another body than its listed sha256).
 *
 * A page on another origin (`liveportrait serve`, cross-origin isolated) can
 * use it as it uses the hub: every answer carries CORS headers (the headers
 * the hub library reads exposed) and Cross-Origin-Resource-Policy:
 * cross-origin, and preflights (OPTIONS) are answered, before any token check.
 */
import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

export const COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

export interface Hit {
  method: string;
  path: string;
  range?: string;
  auth?: string;
}

export interface HubServer {
  url: string;
  hits: Hit[];
  /** Path in the repository → bytes. */
  files: Map<string, Uint8Array>;
  /** Path → cut the next `times` CDN responses after `after` bytes. */
  cuts: Map<string, { after: number; times: number }>;
  /** Paths whose CDN body differs from the listed sha256. */
  corrupt: Set<string>;
  /** When set, every request needs `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Answer for this repository only (404 RepoNotFound for any other). */
  repo: string;
  close(): Promise<void>;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const gitSha = (b: Uint8Array): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** What lets a page on another origin read the answers, as huggingface.co and its CDN allow. */
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'etag, x-linked-etag, x-linked-size, x-repo-commit, x-error-code, x-request-id, content-range, content-length, accept-ranges, location, link',
  'cross-origin-resource-policy': 'cross-origin',
};

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

export async function startHubServer(files: Map<string, Uint8Array>, repo = 'KwaiVGI/LivePortrait'): Promise<HubServer> {
  const hub = { hits: [] as Hit[], files, cuts: new Map(), corrupt: new Set<string>(), repo } as HubServer;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(u.pathname);
    hub.hits.push({ method: req.method ?? 'GET', path, range: req.headers.range, auth: req.headers.authorization });
    for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'access-control-allow-headers': 'authorization, range, accept, content-type', 'access-control-max-age': '600' }).end();
      return;
    }
    const cdn = path.match(/^\/cdn\/([0-9a-f]{64})$/);
    if (!cdn && hub.token && req.headers.authorization !== `Bearer ${hub.token}`) {
      json(res, 401, { error: 'Invalid credentials in Authorization header' }, { 'x-error-code': 'RepoNotFound' });
      return;
    }
    const esc = hub.repo.replace('/', '\\/');
    const info = path.match(new RegExp(`^/api/models/${esc}/revision/([^/]+)$`));
    if (info) {
      json(res, 200, { _id: 'lp', id: hub.repo, sha: COMMIT, private: false, downloads: 0, gated: false, likes: 0, lastModified: '2024-07-01T00:00:00.000Z', tags: [], siblings: [...hub.files.keys()].map((rfilename) => ({ rfilename })) });
      return;
    }
    const tree = path.match(new RegExp(`^/api/models/${esc}/tree/([^/]+)/(.+)$`));
    if (tree) {
      const folder = tree[2].replace(/\/$/, '');
      const entries = [...hub.files].filter(([p]) => p.slice(0, p.lastIndexOf('/')) === folder);
      if (!entries.length) return json(res, 404, { error: `${folder} does not exist on "${tree[1]}"` }, { 'x-error-code': 'EntryNotFound' });
      json(
        res,
        200,
        entries.map(([p, b]) => ({ type: 'file', oid: gitSha(b), size: b.length, path: p, lfs: { oid: sha(b), size: b.length, pointerSize: 134 } })),
      );
      return;
    }
    const resolve = path.match(new RegExp(`^/${esc}/resolve/([^/]+)/(.+)$`));
    if (resolve) {
      const b = hub.files.get(resolve[2]);
      if (!b) return json(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
      const s = sha(b);
      res.writeHead(302, { location: `/cdn/${s}?X-Amz-Expires=3600`, 'x-repo-commit': COMMIT, 'x-linked-etag': `"${s}"`, 'x-linked-size': String(b.length), etag: `"${gitSha(b)}"`, 'content-length': '0' }).end();
      return;
    }
    if (cdn) {
      const entry = [...hub.files].find(([, b]) => sha(b) === cdn[1]);
      if (!entry) return json(res, 404, { error: 'not found' });
      const [file, good] = entry;
      let b = good;
      if (hub.corrupt.has(file)) {
        b = Uint8Array.from(good);
        b[b.length >> 1] ^= 0xff;
      }
      const m = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
      const start = m ? Number(m[1]) : 0;
      const end = m && m[2] ? Math.min(Number(m[2]), b.length - 1) : b.length - 1;
      if (start >= b.length) {
        res.writeHead(416, { 'content-range': `bytes */${b.length}` }).end();
        return;
      }
      const body = b.subarray(start, end + 1);
      res.writeHead(m ? 206 : 200, { 'content-length': String(body.length), etag: `"${cdn[1]}"`, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', ...(m ? { 'content-range': `bytes ${start}-${end}/${b.length}` } : {}) });
      const cut = hub.cuts.get(file);
      if (cut && cut.times > 0 && body.length > cut.after) {
        cut.times--;
        // Send `after` bytes, let the client read them, then drop the connection: a body shorter than content-length.
        res.write(body.subarray(0, cut.after), () => setTimeout(() => res.socket?.destroy(), 100));
        return;
      }
      res.end(body);
      return;
    }
    json(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
  };
  const server: Server = createServer(handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  hub.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  hub.close = async () => {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  };
  return hub;
}

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as { port: number }).port;
  await new Promise((ok) => s.close(ok));
  return port;
}

/** The sha256 (hex) of some bytes. */
export { sha as sha256Hex };
