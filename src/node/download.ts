/**
 * Downloading the official weights from HuggingFace (KwaiVGI/LivePortrait),
 * with resume (HTTP Range on a `.part` file), sha256 check against the
 * repository's LFS ids, and conversion to safetensors; and checking a local
 * set. The .pth files land in the official nested layout under the output
 * directory, the converted files flat next to them, and every verified hash
 * in `sha256sums.json` (relative path → hex sha256).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { WeightsError } from '../layers/params.js';
import { HF_BASE_URL, type WeightSet, hfFileUrl, hfTreeUrl, officialPath, safetensorsName } from '../models/checkpoints.js';
import { type ConvertResult, convertWeights, findModuleFile, readWeightsFile } from './weights.js';
import type { StateDict } from '../formats/host_tensor.js';
import { ensureDir, prepareOutputDir, removeCreatedDirs } from './output.js';
import { MODULES, checkSignature, type ModuleName } from '../models/registry.js';

export const SHA256SUMS = 'sha256sums.json';

export interface DownloadProgress {
  module: ModuleName;
  /** The file's path in the repository (and under the output directory). */
  file: string;
  phase: 'listing' | 'skipped' | 'downloading' | 'verified' | 'converting' | 'converted';
  /** Bytes on disk so far (resumed bytes included). */
  received: number;
  /** Total size where known. */
  total?: number;
}

export interface DownloadOptions {
  set?: WeightSet;
  /** Only these modules (default all five). */
  modules?: readonly ModuleName[];
  onProgress?: (p: DownloadProgress) => void;
  /** Server root (default $HF_ENDPOINT, else https://huggingface.co). */
  baseUrl?: string;
  /** fetch implementation (default the global one). */
  fetch?: typeof globalThis.fetch;
  /** Convert to safetensors afterwards (default true). */
  convert?: boolean;
  /** Resumed attempts after a cut connection, per file (default 3). */
  retries?: number;
}

export interface DownloadResult {
  dir: string;
  files: { module: ModuleName; path: string; sha256: string; bytes: number; downloaded: boolean }[];
  converted: ConvertResult[];
}

interface RemoteFile {
  size?: number;
  sha256?: string;
}

function hex(buf: Buffer): string {
  return buf.toString('hex');
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return hex(h.digest());
}

/** The recorded hashes of a weights directory (empty when none). */
export function readSha256Sums(dir: string): Record<string, string> {
  const p = join(dir, SHA256SUMS);
  if (!existsSync(p)) return {};
  try {
    const j = JSON.parse(readFileSync(p, 'utf8')) as unknown;
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not a JSON object');
    return j as Record<string, string>;
  } catch (e) {
    throw new WeightsError(`${p}: malformed (${(e as Error).message}); delete it and run the download again`);
  }
}

function writeSha256Sums(dir: string, sums: Record<string, string>): void {
  const p = join(dir, SHA256SUMS);
  const tmp = `${p}.tmp-${process.pid}`;
  const sorted = Object.fromEntries(Object.entries(sums).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(tmp, JSON.stringify(sorted, null, 2) + '\n');
  renameSync(tmp, p);
}

/** The message for when the server cannot be reached: what to fetch by hand and where to put it. */
export function offlineMessage(outDir: string, set: WeightSet, modules: readonly ModuleName[], cause: string, baseUrl = HF_BASE_URL): string {
  const d = resolve(outDir);
  const files = [...new Set(modules.map((m) => officialPath(m, set)))];
  return (
    `cannot reach ${baseUrl} (${cause}). Without network, download these files by hand: ` +
    files.map((f) => `${hfFileUrl(f, baseUrl)} → ${join(d, f)}`).join('; ') +
    `; then convert them with \`liveportrait weights convert --from ${d} --dir ${d}${set === 'animal' ? ' --set animal' : ''}\` (see weights/README.md)`
  );
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return [err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(': ');
}

class NetworkError extends Error {}

async function listFolder(folder: string, baseUrl: string, doFetch: typeof fetch): Promise<Map<string, RemoteFile>> {
  const url = hfTreeUrl(folder, baseUrl);
  let res: Response;
  try {
    res = await doFetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (e) {
    throw new NetworkError(causeOf(e));
  }
  if (!res.ok) throw new WeightsError(`listing ${url} failed: HTTP ${res.status} ${res.statusText}`);
  const entries = (await res.json()) as { path?: string; size?: number; lfs?: { oid?: string; size?: number } }[];
  if (!Array.isArray(entries)) throw new WeightsError(`listing ${url}: unexpected answer (not a list)`);
  const out = new Map<string, RemoteFile>();
  for (const e of entries) if (typeof e.path === 'string') out.set(e.path, { size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid });
  return out;
}

/**
 * Fetch `url` into `dest` through `dest.part`, resuming from what the part
 * file holds. Returns when the part file is complete (by Content-Length /
 * Content-Range); throws NetworkError on a cut connection (the part stays).
 */
async function fetchToPart(url: string, part: string, total: number | undefined, doFetch: typeof fetch, progress: (received: number, total?: number) => void): Promise<void> {
  const have = existsSync(part) ? statSync(part).size : 0;
  if (total !== undefined && have === total) return;
  if (total !== undefined && have > total) rmSync(part);
  const start = total !== undefined && have > total ? 0 : have;
  let res: Response;
  try {
    res = await doFetch(url, { headers: start > 0 ? { Range: `bytes=${start}-` } : {} });
  } catch (e) {
    throw new NetworkError(causeOf(e));
  }
  if (res.status === 416 && start > 0) return; // nothing left to fetch: verified next
  if (res.status !== 200 && res.status !== 206) throw new WeightsError(`downloading ${url} failed: HTTP ${res.status} ${res.statusText}`);
  const resumed = res.status === 206;
  let received = resumed ? start : 0;
  const len = Number(res.headers.get('content-length') ?? NaN);
  const size = total ?? (Number.isFinite(len) ? received + len : undefined);
  const fh = await open(part, resumed ? 'a' : 'w');
  try {
    if (!res.body) throw new NetworkError('empty response body');
    const reader = res.body.getReader();
    progress(received, size);
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new NetworkError(causeOf(e));
      }
      if (chunk.done) break;
      await fh.write(chunk.value);
      received += chunk.value.length;
      progress(received, size);
    }
  } finally {
    await fh.close();
  }
  if (size !== undefined && received < size) throw new NetworkError(`connection closed after ${received} of ${size} bytes`);
}

/**
 * Download the official `set` (default human) into `outDir` and convert it.
 * Files already present with the expected sha256 are skipped; interrupted
 * downloads resume from their `.part` file. Without network, throws a
 * WeightsError saying which files to put where by hand.
 */
export async function downloadWeights(outDir: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  // The folder is made (and checked for writing) first; a run that fails before writing anything removes it again.
  let created: string[];
  try {
    created = prepareOutputDir(outDir);
  } catch (e) {
    throw new WeightsError((e as Error).message.replace(/^output folder/, 'weights folder'));
  }
  try {
    return await downloadInto(outDir, opts);
  } catch (e) {
    removeCreatedDirs(created);
    throw e;
  }
}

async function downloadInto(outDir: string, opts: DownloadOptions): Promise<DownloadResult> {
  const set = opts.set ?? 'human';
  const modules = opts.modules ?? MODULES;
  const baseUrl = opts.baseUrl ?? process.env.HF_ENDPOINT ?? HF_BASE_URL;
  const doFetch = opts.fetch ?? globalThis.fetch;
  const retries = opts.retries ?? 3;
  const sums = readSha256Sums(outDir);

  // The expected sizes and hashes, one listing per folder.
  const listings = new Map<string, Map<string, RemoteFile>>();
  for (const m of modules) {
    const folder = dirname(officialPath(m, set));
    if (listings.has(folder)) continue;
    opts.onProgress?.({ module: m, file: officialPath(m, set), phase: 'listing', received: 0 });
    try {
      listings.set(folder, await listFolder(folder, baseUrl, doFetch));
    } catch (e) {
      if (e instanceof NetworkError) throw new WeightsError(offlineMessage(outDir, set, modules, e.message, baseUrl));
      throw e;
    }
  }

  const files: DownloadResult['files'] = [];
  const seen = new Set<string>();
  for (const module of modules) {
    const rel = officialPath(module, set);
    if (seen.has(rel)) continue;
    seen.add(rel);
    const remote = listings.get(dirname(rel))!.get(rel);
    if (!remote) throw new WeightsError(`${hfTreeUrl(dirname(rel), baseUrl)} does not list ${rel}; the repository layout changed, see weights/README.md`);
    const dest = join(outDir, rel);
    const report = (phase: DownloadProgress['phase'], received: number): void => opts.onProgress?.({ module, file: rel, phase, received, total: remote.size });

    // Already there: trust the recorded hash when the size matches, else hash it.
    const present = existsSync(dest) && remote.sha256 !== undefined && (remote.size === undefined || statSync(dest).size === remote.size);
    if (present && (sums[rel] === remote.sha256 || (await sha256File(dest)) === remote.sha256)) {
      if (sums[rel] !== remote.sha256) writeSha256Sums(outDir, { ...sums, [rel]: remote.sha256! });
      sums[rel] = remote.sha256!;
      report('skipped', statSync(dest).size);
      files.push({ module, path: dest, sha256: remote.sha256, bytes: statSync(dest).size, downloaded: false });
      continue;
    }
    ensureDir(dirname(dest));
    const part = `${dest}.part`;
    const url = hfFileUrl(rel, baseUrl);
    for (let attempt = 0; ; attempt++) {
      try {
        await fetchToPart(url, part, remote.size, doFetch, (r) => report('downloading', r));
        break;
      } catch (e) {
        if (!(e instanceof NetworkError)) throw e;
        if (attempt >= retries)
          throw new WeightsError(
            attempt === 0 && !existsSync(part)
              ? offlineMessage(outDir, set, modules, e.message, baseUrl)
              : `downloading ${url} was cut (${e.message}) ${attempt + 1} time(s); ${existsSync(part) ? statSync(part).size : 0} bytes kept in ${part}, run the download again to resume`,
          );
      }
    }
    const got = await sha256File(part);
    if (remote.sha256 && got !== remote.sha256) {
      rmSync(part, { force: true });
      throw new WeightsError(`${dest}: sha256 mismatch (expected ${remote.sha256}, got ${got}); the download was corrupt and has been deleted, run the download again`);
    }
    renameSync(part, dest);
    sums[rel] = got;
    writeSha256Sums(outDir, sums);
    const bytes = statSync(dest).size;
    report('verified', bytes);
    files.push({ module, path: dest, sha256: got, bytes, downloaded: true });
  }

  let converted: ConvertResult[] = [];
  if (opts.convert ?? true) {
    converted = convertWeights(outDir, outDir, {
      set,
      modules,
      onProgress: (p) => opts.onProgress?.({ module: p.module, file: relative(outDir, p.to ?? ''), phase: p.phase === 'start' ? 'converting' : 'converted', received: p.bytes ?? 0 }),
    });
    for (const c of converted) sums[relative(outDir, c.to)] = await sha256File(c.to);
    writeSha256Sums(outDir, sums);
  }
  return { dir: resolve(outDir), files, converted };
}

export interface ModuleCheck {
  module: ModuleName;
  /** The file checked, when one was found. */
  path?: string;
  ok: boolean;
  /** 'ok' / 'mismatch' where sha256sums.json records the file, else 'unrecorded'. */
  sha256?: 'ok' | 'mismatch' | 'unrecorded';
  tensors?: number;
  problems: string[];
}

export interface VerifyResult {
  dir: string;
  ok: boolean;
  modules: ModuleCheck[];
}

export interface VerifyOptions {
  set?: WeightSet;
  modules?: readonly ModuleName[];
  /**
   * Full parameter lists to check against (official keys and PyTorch shapes,
   * e.g. the models' paramSpecs()); without them only signature keys are checked.
   * Stitching keys as converted: `retarget_shoulder.mlp.0.weight`.
   */
  specs?: Partial<Record<ModuleName, readonly { key: string; shape: readonly number[] }[]>>;
}

function checkSpecs(sd: StateDict, specs: readonly { key: string; shape: readonly number[] }[]): string[] {
  const problems: string[] = [];
  for (const { key, shape } of specs) {
    if (key.endsWith('num_batches_tracked')) continue;
    const t = sd.get(key);
    if (!t) problems.push(`missing key '${key}'`);
    else if (t.shape.join() !== shape.join()) problems.push(`'${key}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
    if (problems.length >= 5) {
      problems.push('…');
      break;
    }
  }
  return problems;
}

/**
 * Check a local weights directory: every module present and parseable, with
 * the expected keys, and the sha256 recorded in sha256sums.json (if any).
 * Never throws for a bad module: problems are listed per module.
 */
export async function verifyWeights(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const set = opts.set ?? 'human';
  let sums: Record<string, string> = {};
  const global: string[] = [];
  try {
    sums = readSha256Sums(dir);
  } catch (e) {
    global.push((e as Error).message);
  }
  const modules: ModuleCheck[] = [];
  for (const module of opts.modules ?? MODULES) {
    const check: ModuleCheck = { module, ok: false, problems: [...global] };
    modules.push(check);
    const file = findModuleFile(dir, module, { set });
    if (!file) {
      check.problems.push(`not found (${safetensorsName(module)} or ${officialPath(module, set)})`);
      continue;
    }
    check.path = file.path;
    const rel = relative(dir, file.path).split('\\').join('/');
    if (sums[rel]) check.sha256 = (await sha256File(file.path)) === sums[rel] ? 'ok' : 'mismatch';
    else check.sha256 = 'unrecorded';
    if (check.sha256 === 'mismatch') check.problems.push(`sha256 differs from ${SHA256SUMS}; the file changed or is corrupt`);
    try {
      const sd = readWeightsFile(file);
      check.tensors = sd.size;
      checkSignature(sd, module, file.path);
      const specs = opts.specs?.[module];
      if (specs) check.problems.push(...checkSpecs(sd, specs));
    } catch (e) {
      check.problems.push((e as Error).message);
    }
    check.ok = check.problems.length === 0;
  }
  return { dir: resolve(dir), ok: modules.every((m) => m.ok), modules };
}
