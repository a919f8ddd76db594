/**
 * Downloading the official weights with `@huggingface/hub`: the revision's
 * commit (`modelInfo`), the folder listings with each file's LFS sha256
 * (`listFiles`), the `resolve` request and its redirect (`fileDownloadInfo`)
 * and the bytes (`downloadFile`, ranged). Around it what the library lacks:
 * resume of a cut download (from `<blob>.incomplete`, as the Python hub does),
 * the sha256 check against the LFS id (a wrong file is deleted, nothing is
 * left), and one-line errors. Into the HuggingFace cache by default (blobs/,
 * snapshots/<commit>/ symlinks, refs/main: what the Python tools read), or a
 * plain folder.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { HubApiError, downloadFile, fileDownloadInfo, listFiles, modelInfo } from '@huggingface/hub';
import { WeightsError } from '../errors.js';
import { HF_REPO, type WeightSet, hfFileUrl, officialPath } from '../models/checkpoints.js';
import { MODULES, type ModuleName } from '../models/registry.js';
import { HF_REVISION, type HubConfig, findInHfCache, hubConfig, repoCacheDir } from './hub.js';

export interface FetchProgress {
  module: ModuleName;
  /** The file's path in the repository. */
  file: string;
  phase: 'listing' | 'skipped' | 'downloading' | 'verified';
  /** Bytes on disk so far (resumed bytes included). */
  received: number;
  total?: number;
}

export interface FetchOptions {
  set?: WeightSet;
  modules?: readonly ModuleName[];
  /** A plain folder (the official nested layout under it) instead of the HuggingFace cache. */
  dir?: string;
  /** Files of `dir` already verified (relative path → sha256): trusted when the size matches. */
  known?: Record<string, string>;
  onProgress?: (p: FetchProgress) => void;
  /** Resumed attempts after a cut connection, per file (default 3). */
  retries?: number;
  /** The hub settings (default from the environment). */
  config?: Partial<HubConfig>;
  fetch?: typeof globalThis.fetch;
}

export interface FetchedFile {
  module: ModuleName;
  /** Path in the repository. */
  file: string;
  /** Where it is: the snapshot symlink in the cache, or the file in `dir`. */
  path: string;
  sha256: string;
  bytes: number;
  downloaded: boolean;
}

export interface FetchResult {
  /** The snapshot folder (cache) or `dir`: load the weights from here. */
  root: string;
  commit?: string;
  files: FetchedFile[];
}

class CutError extends Error {}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return [err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(': ');
}

const isFetchFailure = (e: unknown): boolean => e instanceof TypeError && /fetch failed|Failed to fetch|NetworkError/i.test((e as Error).message);

/** The one line for a failed request: unreachable, 401/403 (a token), 404, other. */
function hubError(e: unknown, what: string, cfg: HubConfig, set: WeightSet, dir?: { root: string; files: string[] }): WeightsError {
  const s = set === 'animal' ? ' --set animal' : '';
  if (isFetchFailure(e) && dir)
    return new WeightsError(
      `cannot reach ${cfg.endpoint} (${causeOf(e)}). Without network, download these files by hand: ` +
        dir.files.map((f) => `${hfFileUrl(f, cfg.endpoint)} → ${join(dir.root, f)}`).join('; ') +
        `; then convert them with \`liveportrait weights convert --from ${dir.root} --dir ${dir.root}${s}\` (see weights/README.md)`,
    );
  if (isFetchFailure(e))
    return new WeightsError(`cannot reach ${cfg.endpoint} (${causeOf(e)}) for ${what}; check the connection or HF_ENDPOINT, or put the files there by hand (${hfFileUrl(officialPath('motion_extractor', set), cfg.endpoint)} and the others, see weights/README.md) and pass --weights DIR`);
  if (e instanceof HubApiError) {
    const status = e.statusCode;
    if (status === 401 || status === 403)
      return new WeightsError(`${cfg.endpoint} refused ${what} (HTTP ${status}${cfg.token ? ', with the token given' : ', no token'}); set HF_TOKEN to a valid token (https://huggingface.co/settings/tokens) and run \`liveportrait weights download${s}\` again`);
    if (status === 404) return new WeightsError(`${what} not found on ${cfg.endpoint} (HTTP 404); check HF_ENDPOINT (a mirror must hold ${HF_REPO}) and run \`liveportrait weights download${s}\` again`);
    return new WeightsError(`${what} failed on ${cfg.endpoint} (HTTP ${status}: ${e.message.split('. URL:')[0]}); run \`liveportrait weights download${s}\` again later`);
  }
  return new WeightsError(`${what} failed (${causeOf(e)}); run \`liveportrait weights download${s}\` again`);
}

/** Make `dir`, recording the folders made, so a failure can take them away again. */
function mkdirs(dir: string, made: string[]): void {
  const first = mkdirSync(dir, { recursive: true });
  if (!first) return;
  for (let d = dir; ; d = dirname(d)) {
    made.push(d);
    if (d === first || d === dirname(d)) break;
  }
}

function removeEmpty(made: string[]): void {
  for (const d of [...new Set(made)].sort((a, b) => b.length - a.length)) {
    try {
      if (!readdirSync(d).length) rmdirSync(d);
    } catch {
      // not empty or gone
    }
  }
}

/** A snapshot entry pointing at its blob, relative as the Python hub makes it (a copy where links are refused). */
function linkBlob(blob: string, pointer: string, made: string[]): void {
  mkdirs(dirname(pointer), made);
  rmSync(pointer, { force: true });
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch {
    copyFileSync(blob, pointer);
  }
}

/**
 * Fetch one file into `part` from what `part` holds (a ranged request through
 * the library's blob), reporting bytes; throws CutError when the body ends short.
 */
async function fetchPart(blob: Blob, part: string, size: number, report: (n: number) => void): Promise<void> {
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > size) {
    truncateSync(part, 0);
    have = 0;
  }
  if (have === size) return;
  const fh = await open(part, have > 0 ? 'a' : 'w');
  let received = have;
  try {
    const reader = (have > 0 ? blob.slice(have) : blob).stream().getReader();
    report(received);
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new CutError(typeof e === 'string' ? e : causeOf(e));
      }
      if (chunk.done) break;
      await fh.write(chunk.value);
      received += chunk.value.length;
      report(received);
    }
  } finally {
    await fh.close();
  }
  if (received < size) throw new CutError(`connection closed after ${received} of ${size} bytes`);
}

/**
 * Download the official `set` (default human, all five modules) into the
 * HuggingFace cache, or into `opts.dir`. Present files are not fetched again;
 * a cut download resumes (the next call resumes too); each file's sha256 is
 * checked against the LFS id of the listing. With HF_HUB_OFFLINE set no
 * request is made: a complete cache is returned, else the missing files are named.
 */
export async function fetchOfficialWeights(opts: FetchOptions = {}): Promise<FetchResult> {
  const set = opts.set ?? 'human';
  const cfg = { ...hubConfig(), ...opts.config };
  const s = set === 'animal' ? ' --set animal' : '';
  const wanted = new Map<string, ModuleName>();
  for (const m of opts.modules ?? MODULES) if (!wanted.has(officialPath(m, set))) wanted.set(officialPath(m, set), m);
  const repoDir = repoCacheDir(cfg);

  if (cfg.offline) return offlineResult(opts, cfg, set, wanted, repoDir);

  // The token goes to the hub's own origin only (a CDN on another origin gets none).
  const origin = new URL(cfg.endpoint).origin;
  const base = opts.fetch ?? globalThis.fetch;
  const hubFetch: typeof fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!cfg.token || new URL(url).origin !== origin) return base(input, init);
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${cfg.token}`);
    return base(input, { ...init, headers });
  };
  const lib = { repo: { type: 'model' as const, name: HF_REPO }, hubUrl: cfg.endpoint, fetch: hubFetch };

  const byHand = opts.dir ? { root: resolve(opts.dir), files: [...wanted.keys()] } : undefined;
  let commit: string;
  try {
    commit = (await modelInfo({ name: HF_REPO, hubUrl: cfg.endpoint, fetch: hubFetch, revision: HF_REVISION, additionalFields: ['sha'] })).sha;
  } catch (e) {
    throw hubError(e, `${HF_REPO} (revision ${HF_REVISION})`, cfg, set, byHand);
  }

  // The sizes and sha256 ids, one listing per folder.
  const remote = new Map<string, { size: number; sha256?: string }>();
  for (const folder of new Set([...wanted.keys()].map((f) => dirname(f)))) {
    opts.onProgress?.({ module: wanted.get([...wanted.keys()].find((f) => dirname(f) === folder)!)!, file: folder, phase: 'listing', received: 0 });
    try {
      for await (const e of listFiles({ ...lib, path: folder, revision: commit })) if (e.type === 'file') remote.set(e.path, { size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid });
    } catch (e) {
      throw hubError(e, `the listing of ${HF_REPO}/${folder}`, cfg, set, byHand);
    }
  }

  const made: string[] = [];
  const files: FetchedFile[] = [];
  const root = opts.dir ? resolve(opts.dir) : join(repoDir, 'snapshots', commit);
  for (const [file, module] of wanted) {
    const r = remote.get(file);
    if (!r) throw new WeightsError(`${cfg.endpoint} does not list ${file} in ${HF_REPO}@${commit.slice(0, 12)}; the repository layout changed or the mirror is incomplete, see weights/README.md`);
    if (!r.sha256) throw new WeightsError(`${cfg.endpoint} lists ${file} without an LFS sha256; cannot verify it, use the official hub (unset HF_ENDPOINT)`);
    const report = (phase: FetchProgress['phase'], received: number): void => opts.onProgress?.({ module, file, phase, received, total: r.size });
    const dest = join(root, file);
    const blobPath = opts.dir ? dest : join(repoDir, 'blobs', r.sha256);
    const part = opts.dir ? `${dest}.part` : `${blobPath}.incomplete`;

    // Already there: the cache's blob is named by its sha256; a folder's file is trusted when recorded, else hashed.
    const sized = (p: string): boolean => existsSync(p) && statSync(p).size === r.size;
    if (sized(blobPath) && (!opts.dir || opts.known?.[file] === r.sha256 || (await sha256File(blobPath)) === r.sha256)) {
      if (!opts.dir && !sized(dest)) linkBlob(blobPath, dest, made);
      if (!opts.dir) writeRef(repoDir, commit);
      report('skipped', r.size);
      files.push({ module, file, path: dest, sha256: r.sha256, bytes: r.size, downloaded: false });
      continue;
    }

    let blob: Blob | null;
    try {
      const info = await fileDownloadInfo({ ...lib, path: file, revision: commit });
      blob = info && (await downloadFile({ ...lib, path: file, revision: commit, downloadInfo: info }));
    } catch (e) {
      removeEmpty(made);
      throw hubError(e, `${HF_REPO}/${file}`, cfg, set, byHand);
    }
    if (!blob) throw new WeightsError(`${HF_REPO}/${file} not found on ${cfg.endpoint} (HTTP 404, though listed); run \`liveportrait weights download${s}\` again later`);
    mkdirs(dirname(part), made);
    for (let attempt = 0; ; attempt++) {
      try {
        await fetchPart(blob, part, r.size, (n) => report('downloading', n));
        break;
      } catch (e) {
        if (!(e instanceof CutError) || attempt >= (opts.retries ?? 3)) {
          const kept = existsSync(part) ? statSync(part).size : 0;
          if (!kept) rmSync(part, { force: true });
          if (!kept) removeEmpty(made);
          throw new WeightsError(`downloading ${HF_REPO}/${file} from ${cfg.endpoint} was cut (${(e as Error).message}) ${attempt + 1} time(s); ${kept} bytes kept in ${part}, run \`liveportrait weights download${opts.dir ? ` --dir ${root}` : ''}${s}\` again to resume`);
        }
      }
    }
    const got = await sha256File(part);
    if (got !== r.sha256) {
      rmSync(part, { force: true });
      removeEmpty(made);
      throw new WeightsError(`${file} from ${cfg.endpoint}: sha256 mismatch (expected ${r.sha256}, got ${got}); the download was corrupt and has been deleted, run \`liveportrait weights download${s}\` again`);
    }
    renameSync(part, blobPath);
    if (!opts.dir) {
      linkBlob(blobPath, dest, made);
      writeRef(repoDir, commit);
    }
    report('verified', r.size);
    files.push({ module, file, path: dest, sha256: got, bytes: r.size, downloaded: true });
  }
  return { root, commit, files };
}

/** refs/main → the commit, written once a file of that snapshot is in place (so the ref never names an empty snapshot). */
function writeRef(repoDir: string, commit: string): void {
  const p = join(repoDir, 'refs', HF_REVISION);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, commit);
}

/** HF_HUB_OFFLINE: what is there, with no request; else one line naming what is missing and how to get it. */
function offlineResult(opts: FetchOptions, cfg: HubConfig, set: WeightSet, wanted: Map<string, ModuleName>, repoDir: string): FetchResult {
  const modules = [...new Set(wanted.values())];
  let root: string | undefined;
  let commit: string | undefined;
  let missing: string[];
  if (opts.dir) {
    root = resolve(opts.dir);
    missing = [...wanted.keys()].filter((f) => !existsSync(join(root!, f)));
  } else {
    const found = findInHfCache(set, cfg, modules);
    root = found.snapshot;
    commit = found.snapshot && relative(join(repoDir, 'snapshots'), found.snapshot);
    missing = [...wanted.keys()].filter((f) => !root || !existsSync(join(root, f)));
  }
  if (missing.length)
    throw new WeightsError(
      `HF_HUB_OFFLINE is set and ${opts.dir ? root : `the HuggingFace cache ${repoDir}`} lacks ${missing.join(', ')}; ` +
        `unset HF_HUB_OFFLINE and run \`liveportrait weights download${opts.dir ? ` --dir ${root}` : ''}${set === 'animal' ? ' --set animal' : ''}\`, ` +
        `or fetch them elsewhere (\`huggingface-cli download ${HF_REPO} ${missing.join(' ')}\`) and copy them in`,
    );
  const files = [...wanted].map(([file, module]) => {
    const path = join(root!, file);
    return { module, file, path, sha256: '', bytes: statSync(path).size, downloaded: false };
  });
  for (const f of files) opts.onProgress?.({ module: f.module, file: f.file, phase: 'skipped', received: f.bytes, total: f.bytes });
  return { root: root!, commit, files };
}
