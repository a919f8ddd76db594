/**
 * The official weights for a web page (or any runtime with fetch and
 * WebCrypto), through `@huggingface/hub`: the folder listings give each
 * file's LFS sha256 and size (`listFiles`), the `resolve` redirect and the
 * ranged reads are the library's (`downloadFile`). Around it: progress, the
 * sha256 check (a wrong file is not kept), resume of a cut transfer within
 * the call, and Cache Storage, so a later visit starts at once with no
 * request. Errors are WeightsErrors of one line; an unreachable hub is a
 * HubUnreachableError. No Node module is used.
 *
 * @example
 * const files = await downloadOfficialWeights('human', { onProgress: (f, n, total) => bar(f, n / total) });
 * for (const [module, { bytes, name }] of files) dicts.set(module, { sd: stateDictOf(bytes, name), name });
 */
import { HubApiError, downloadFile, listFiles } from '@huggingface/hub';
import { WeightsError } from '../errors.js';
import { HF_BASE_URL, HF_REPO, type WeightSet, officialPath } from '../models/checkpoints.js';
import { MODULES, type ModuleName } from '../models/registry.js';

/** The Cache Storage cache the page keeps the weights in. */
export const WEIGHTS_CACHE_NAME = 'liveportrait-weights-v1';

/** The hub (or the network to it) cannot be reached: say so on the page, offer local files. */
export class HubUnreachableError extends WeightsError {}

/** The part of the Cache interface used (Cache Storage's caches.open() gives one). */
export interface CacheLike {
  match(key: string): Promise<Response | undefined>;
  put(key: string, res: Response): Promise<void>;
  delete(key: string): Promise<boolean>;
}

export interface OfficialDownloadOptions {
  /** The hub (default https://huggingface.co). */
  endpoint?: string;
  /** Branch, tag or commit (default main). */
  revision?: string;
  /** Only these modules (default all five). */
  modules?: readonly ModuleName[];
  /** Bytes of `file` (its path in the repository) so far, of `total`; a cached file reports once, complete. */
  onProgress?: (file: string, loaded: number, total: number) => void;
  /** Where downloads are kept: Cache Storage (default where the runtime has it), nowhere, or a cache given. */
  cache?: 'cache-storage' | 'none' | CacheLike;
  /** Hash cached files again before use (default false: they were checked before they were kept). */
  verifyCached?: boolean;
  /** A HuggingFace token, for a private mirror or gated repository. */
  token?: string;
  /** Resumed reads after a cut transfer, per file (default 3). */
  retries?: number;
  fetch?: typeof globalThis.fetch;
}

export interface OfficialFile {
  bytes: Uint8Array;
  /** The file's path in the repository (`liveportrait/base_models/<module>.pth`). */
  name: string;
  sha256: string;
  fromCache: boolean;
}

/** Hex sha256 with WebCrypto. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

function oneLine(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return [typeof e === 'string' ? e : err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(': ').replace(/\s+/g, ' ');
}

const isNetworkFailure = (e: unknown): boolean => e instanceof TypeError || /fetch failed|Failed to fetch|NetworkError|Load failed/i.test(oneLine(e));

function hubError(e: unknown, what: string, endpoint: string): WeightsError {
  if (e instanceof WeightsError) return e;
  if (e instanceof HubApiError) {
    if (e.statusCode === 401 || e.statusCode === 403) return new WeightsError(`${endpoint} refused ${what} (HTTP ${e.statusCode}); it needs a HuggingFace token, or load the weights from files`);
    if (e.statusCode === 404) return new WeightsError(`${what} not found on ${endpoint} (HTTP 404); check the hub address, or load the weights from files`);
    return new WeightsError(`${what} failed on ${endpoint} (HTTP ${e.statusCode}); try again later, or load the weights from files`);
  }
  if (isNetworkFailure(e))
    return new HubUnreachableError(`cannot reach the HuggingFace hub at ${endpoint} (${oneLine(e)}); check the connection (a proxy, firewall or content blocker may stop it and its CDN) and try again, or load the weights from files`);
  return new WeightsError(`${what} failed (${oneLine(e)}); try again, or load the weights from files`);
}

async function openCache(opt: OfficialDownloadOptions['cache']): Promise<CacheLike | undefined> {
  if (opt && typeof opt === 'object') return opt;
  if (opt === 'none' || typeof caches === 'undefined') return undefined;
  return caches.open(WEIGHTS_CACHE_NAME);
}

/** Read `blob` into one buffer of `size` bytes, resuming with ranged reads after a cut. */
async function readAll(blob: Blob, size: number, retries: number, progress: (n: number) => void): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let n = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const reader = (n > 0 ? blob.slice(n) : blob).stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (n + value.length > size) throw new WeightsError(`the server sent more than the ${size} bytes listed`);
        out.set(value, n);
        n += value.length;
        progress(n);
      }
      if (n < size) throw new Error(`connection closed after ${n} of ${size} bytes`);
      return out;
    } catch (e) {
      if (e instanceof WeightsError || attempt >= retries) throw e;
    }
  }
}

/**
 * The official `set`'s checkpoints as bytes, by module: from the cache when
 * all are kept there (no request at all), else listed and downloaded from
 * the hub, each checked against its LFS sha256 and then kept.
 */
export async function downloadOfficialWeights(set: WeightSet = 'human', opts: OfficialDownloadOptions = {}): Promise<Map<ModuleName, OfficialFile>> {
  const endpoint = (opts.endpoint ?? HF_BASE_URL).replace(/\/+$/, '');
  const revision = opts.revision ?? 'main';
  const modules = opts.modules ?? MODULES;
  const cache = await openCache(opts.cache);
  const key = (file: string): string => `${endpoint}/${HF_REPO}/resolve/${revision}/${file}`;
  const out = new Map<ModuleName, OfficialFile>();
  const files = new Map<string, OfficialFile>();

  // Kept from an earlier visit: no request.
  const missing: string[] = [];
  for (const file of new Set(modules.map((m) => officialPath(m, set)))) {
    const hit = await cache?.match(key(file));
    const sha256 = hit?.headers.get('x-sha256');
    if (hit && sha256) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (!opts.verifyCached || (await sha256Hex(bytes)) === sha256) {
        files.set(file, { bytes, name: file, sha256, fromCache: true });
        opts.onProgress?.(file, bytes.length, bytes.length);
        continue;
      }
      await cache!.delete(key(file));
    }
    missing.push(file);
  }

  if (missing.length) {
    const base = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const origin = new URL(endpoint).origin;
    const hubFetch: typeof fetch = (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (!opts.token || new URL(url, endpoint).origin !== origin) return base(input, init);
      const headers = new Headers(init?.headers);
      headers.set('Authorization', `Bearer ${opts.token}`);
      return base(input, { ...init, headers });
    };
    const lib = { repo: { type: 'model' as const, name: HF_REPO }, hubUrl: endpoint, revision, fetch: hubFetch };
    const listed = new Map<string, { size: number; sha256?: string }>();
    for (const folder of new Set(missing.map((f) => f.slice(0, f.lastIndexOf('/'))))) {
      try {
        for await (const e of listFiles({ ...lib, path: folder })) if (e.type === 'file') listed.set(e.path, { size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid });
      } catch (e) {
        throw hubError(e, `the listing of ${HF_REPO}/${folder}`, endpoint);
      }
    }
    for (const file of missing) {
      const rec = listed.get(file);
      if (!rec?.sha256) throw new WeightsError(`${endpoint} lists no ${file} with an LFS sha256 in ${HF_REPO}; the repository changed, load the weights from files`);
      let bytes: Uint8Array;
      try {
        const blob = await downloadFile({ ...lib, path: file });
        if (!blob) throw new WeightsError(`${HF_REPO}/${file} not found on ${endpoint} (HTTP 404); load the weights from files`);
        opts.onProgress?.(file, 0, rec.size);
        bytes = await readAll(blob, rec.size, opts.retries ?? 3, (n) => opts.onProgress?.(file, n, rec.size));
      } catch (e) {
        throw hubError(e, `${HF_REPO}/${file}`, endpoint);
      }
      const got = await sha256Hex(bytes);
      if (got !== rec.sha256) throw new WeightsError(`${file} from ${endpoint}: sha256 mismatch (expected ${rec.sha256}, got ${got}); the download was corrupt and was not kept, try again`);
      await cache?.put(key(file), new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length), 'x-sha256': got } }));
      files.set(file, { bytes, name: file, sha256: got, fromCache: false });
    }
  }
  for (const m of modules) out.set(m, files.get(officialPath(m, set))!);
  return out;
}
