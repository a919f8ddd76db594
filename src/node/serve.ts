/**
 * `liveportrait serve`: the web page (web/, built into dist-web/) over HTTP.
 * Only the page's own files are served (no directory listings, no paths
 * outside the folder, no dotfiles), with the cross-origin isolation headers
 * (COOP/COEP) that threaded WebAssembly needs. The reference's app listens
 * on 127.0.0.1:8890; so does this by default, and it warns when bound to
 * an address other machines can reach.
 *
 * Hostile requests: only GET and HEAD (405 otherwise); a path is decoded
 * once and refused (404) if any segment is `..`, starts with a dot, or holds
 * a backslash, NUL or a still-encoded `%`, and the file's real path
 * (symlinks followed) must lie inside the root. Headers are capped at
 * 16 KiB and must arrive within 10 s, a request within 30 s, an idle
 * keep-alive connection is closed after 5 s, at most 1000 connections.
 */
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const DEFAULT_PORT = 8890;
export const DEFAULT_HOST = '127.0.0.1';

/** The package root (two levels above src/node or dist/node). */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Where the built page is: dist-web/ in the package. */
export function webDir(): string {
  return join(packageRoot(), 'dist-web');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

/**
 * Build the page into dist-web/ when it is missing (a clone where `npm ci`
 * did not build it): needs the repository's scripts/build-web.mjs and esbuild.
 */
export async function ensureWebBuilt(log: (line: string) => void = () => undefined, force = false): Promise<string> {
  const dir = webDir();
  if (!force && existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'assets', 'engine.js'))) return dir;
  const script = join(packageRoot(), 'scripts', 'build-web.mjs');
  if (!existsSync(script)) throw new Error(`the web page is not built (${dir} is missing) and this install has no build script; reinstall the package`);
  log('liveportrait: building the web page (once)…');
  const mod = (await import(pathToFileURL(script).href)) as { buildWeb(out?: string, o?: { log?: (l: string) => void }): Promise<string> };
  return mod.buildWeb(dir, { log });
}

/** Limits on requests and connections (see the top of this file). */
export const SERVE_LIMITS = { maxHeaderSize: 16 * 1024, headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, idleTimeout: 60_000, maxConnections: 1000 };

/** Whether `host` is reachable only from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]';
}

/**
 * The file a request path names inside `root` (its real path), or undefined
 * when it names nothing servable: see the top of this file. `root` is a real
 * path (realpathSync).
 */
export function resolveRequestPath(root: string, url: string): string | undefined {
  let path: string;
  try {
    if (url.includes('\0') || !url.startsWith('/')) return undefined;
    path = decodeURIComponent(new URL(url, 'http://x').pathname);
  } catch {
    return undefined;
  }
  if (path.endsWith('/')) path += 'index.html';
  const parts = path.split('/').filter(Boolean);
  if (parts.some((p) => p.startsWith('.') || p.includes('\\') || p.includes('\0') || p.includes('%') || p.includes(':'))) return undefined;
  const file = resolve(root, ...parts);
  if (!file.startsWith(root + sep)) return undefined;
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return undefined;
  }
  return real.startsWith(root + sep) ? real : undefined;
}

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Folder to serve (default: the built page, built first if missing). */
  root?: string;
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Start serving; resolves once listening, with the address. */
export async function serve(opts: ServeOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? (() => undefined);
  const root = realpathSync(resolve(opts.root ?? (await ensureWebBuilt(log))));
  const host = opts.host ?? DEFAULT_HOST;
  const server = createServer({ maxHeaderSize: SERVE_LIMITS.maxHeaderSize }, (req, res) => {
    const common = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
    };
    const deny = (code: number, text: string, extra: Record<string, string> = {}) => {
      res.writeHead(code, { ...common, ...extra, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return deny(405, 'method not allowed', { Allow: 'GET, HEAD' });
    const file = resolveRequestPath(root, req.url ?? '/');
    if (!file) return deny(404, 'not found');
    let st;
    try {
      st = statSync(file);
    } catch {
      return deny(404, 'not found');
    }
    if (!st.isFile()) return deny(404, 'not found');
    res.writeHead(200, {
      ...common,
      'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': st.size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
  server.headersTimeout = SERVE_LIMITS.headersTimeout;
  server.requestTimeout = SERVE_LIMITS.requestTimeout;
  server.keepAliveTimeout = SERVE_LIMITS.keepAliveTimeout;
  server.maxConnections = SERVE_LIMITS.maxConnections;
  server.setTimeout(SERVE_LIMITS.idleTimeout, (socket) => socket.destroy());
  // CONNECT (a proxy tunnel) is not a request for a file either.
  server.on('connect', (_req, socket) => socket.end('HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
  server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
    const status = e.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });
  if (!isLoopback(host)) log(`liveportrait: warning: listening on ${host}, reachable from other machines; use --host 127.0.0.1 to keep the page on this machine`);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? DEFAULT_PORT);
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    server,
    close: () => new Promise<void>((ok) => (server.closeAllConnections?.(), server.close(() => ok()))),
  };
}
