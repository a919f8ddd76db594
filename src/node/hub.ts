/**
 * Where the weights come from: `--weights DIR` / $LIVEPORTRAIT_WEIGHTS when
 * given, else `./weights` when it holds a complete set, else the HuggingFace
 * cache the Python tools share ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub: `models--KwaiVGI--LivePortrait/snapshots/<commit>/…`,
 * read in place, no copy), else one line saying how to get them. The hub's
 * environment (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN)
 * is read here as the Python `huggingface_hub` reads it. Nothing here touches
 * the network; downloading is hub_fetch.ts.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';
import { WeightsError } from '../errors.js';
import { HF_BASE_URL, HF_REPO, type WeightSet } from '../models/checkpoints.js';
import { MODULES, type ModuleName } from '../models/registry.js';
import { type ModuleFile, findModuleFile } from './weights.js';

export const WEIGHTS_ENV = 'LIVEPORTRAIT_WEIGHTS';
/** The revision the weights are taken from (the branch the Python tools default to). */
export const HF_REVISION = 'main';
const SHORT: Record<ModuleName, string> = { appearance_feature_extractor: 'F', motion_extractor: 'M', warping_module: 'W', spade_generator: 'G', stitching_retargeting_module: 'S' };

export interface HubConfig {
  /** $HF_ENDPOINT, else https://huggingface.co (no trailing slash). */
  endpoint: string;
  /** The hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir: string;
  /** $HF_HUB_OFFLINE is 1/ON/YES/TRUE: no request at all. */
  offline: boolean;
  /** $HF_TOKEN, else the token file ($HF_TOKEN_PATH, else $HF_HOME/token) the Python login writes. */
  token?: string;
}

/** The hub settings from the environment, as `huggingface_hub` reads them. */
export function hubConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  // The library's rule (getHFHubCachePath: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME),
  // on `env`, with a variable set empty taken as unset.
  const v = (k: string): string | undefined => env[k]?.trim() || undefined;
  const hfHome = v('HF_HOME') ?? join(v('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'huggingface');
  const cacheDir = v('HF_HUB_CACHE') ?? v('HUGGINGFACE_HUB_CACHE') ?? join(hfHome, 'hub');
  let token = v('HF_TOKEN') ?? v('HUGGING_FACE_HUB_TOKEN');
  if (!token) {
    const file = v('HF_TOKEN_PATH') ?? join(hfHome, 'token');
    try {
      token = readFileSync(file, 'utf8').trim() || undefined;
    } catch {
      // no saved token
    }
  }
  return {
    endpoint: (v('HF_ENDPOINT') ?? HF_BASE_URL).replace(/\/+$/, ''),
    cacheDir: resolve(cacheDir),
    offline: ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE ?? '').trim().toUpperCase()),
    token,
  };
}

/** The repository's folder in the cache: `<cache>/models--KwaiVGI--LivePortrait`. */
export function repoCacheDir(cfg: HubConfig = hubConfig()): string {
  return join(cfg.cacheDir, getRepoFolderName({ name: HF_REPO, type: 'model' }));
}

export interface CacheLookup {
  repoDir: string;
  /** The commit `refs/main` names, when the cache has one. */
  commit?: string;
  /** The snapshot folder chosen (complete if `missing` is empty). */
  snapshot?: string;
  files: Partial<Record<ModuleName, ModuleFile>>;
  missing: ModuleName[];
}

function lookIn(dir: string, set: WeightSet, modules: readonly ModuleName[]): Pick<CacheLookup, 'files' | 'missing'> {
  const files: CacheLookup['files'] = {};
  const missing: ModuleName[] = [];
  for (const m of modules) {
    const f = findModuleFile(dir, m, { set });
    if (f) files[m] = f;
    else missing.push(m);
  }
  return { files, missing };
}

/**
 * The weights of `set` in the HuggingFace cache: the snapshot `refs/main`
 * names first, else any complete snapshot (newest first). Reads only.
 */
export function findInHfCache(set: WeightSet = 'human', cfg: HubConfig = hubConfig(), modules: readonly ModuleName[] = MODULES): CacheLookup {
  const repoDir = repoCacheDir(cfg);
  let commit: string | undefined;
  try {
    commit = readFileSync(join(repoDir, 'refs', HF_REVISION), 'utf8').trim() || undefined;
  } catch {
    // no refs/main
  }
  const snaps = join(repoDir, 'snapshots');
  let others: string[] = [];
  try {
    others = readdirSync(snaps)
      .filter((d) => d !== commit && statSync(join(snaps, d)).isDirectory())
      .sort((a, b) => statSync(join(snaps, b)).mtimeMs - statSync(join(snaps, a)).mtimeMs);
  } catch {
    // no snapshots yet
  }
  let best: CacheLookup = { repoDir, commit, files: {}, missing: [...modules] };
  for (const c of [...(commit ? [commit] : []), ...others]) {
    const snapshot = join(snaps, c);
    if (!existsSync(snapshot)) continue;
    const found = { repoDir, commit, snapshot, ...lookIn(snapshot, set, modules) };
    if (!found.missing.length) return found;
    if (found.missing.length < best.missing.length) best = found;
  }
  return best;
}

export interface WeightsSource {
  kind: 'dir' | 'hf-cache';
  /** Why this one: the option, the environment variable, ./weights, or the cache. */
  origin: '--weights' | typeof WEIGHTS_ENV | './weights' | 'hf-cache';
  /** The folder to load from (a snapshot folder for the cache): `loadLivePortrait(dir)` works on it. */
  dir: string;
  set: WeightSet;
  /** The file of each module found. */
  files: Partial<Record<ModuleName, ModuleFile>>;
  /** Modules without a file (only possible for a folder given explicitly). */
  missing: ModuleName[];
  /** The commit of the cache's snapshot. */
  commit?: string;
}

export interface ResolveOptions {
  /** --weights (wins over everything; 'synthetic' is not resolved here). */
  weights?: string;
  set?: WeightSet;
  /** Where ./weights is looked for (default the working directory). */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** How to get the weights, for the end of an error line. */
export function howToGet(set: WeightSet): string {
  const s = set === 'animal' ? ' --set animal' : '';
  return `get them with \`liveportrait weights download${s}\` (into the HuggingFace cache, shared with the Python tools) or \`liveportrait weights download --dir weights${s}\`, or pass --weights DIR (--weights synthetic tries everything offline with meaningless weights)`;
}

/**
 * The weights the options point to, in this order: `opts.weights`, then
 * $LIVEPORTRAIT_WEIGHTS (both taken as given, even when incomplete: the
 * loader names what is missing), then `./weights` when it holds all five
 * modules, then the HuggingFace cache when complete. Throws a one-line
 * WeightsError naming both places and how to get the weights otherwise.
 */
export function resolveWeightsSource(opts: ResolveOptions = {}): WeightsSource {
  const env = opts.env ?? process.env;
  const set = opts.set ?? 'human';
  const given = opts.weights ?? env[WEIGHTS_ENV];
  if (given !== undefined && given !== '') {
    const dir = resolve(opts.cwd ?? process.cwd(), given);
    return { kind: 'dir', origin: opts.weights !== undefined ? '--weights' : WEIGHTS_ENV, dir, set, ...lookIn(dir, set, MODULES) };
  }
  const local = resolve(opts.cwd ?? process.cwd(), 'weights');
  const localFound = existsSync(local) ? lookIn(local, set, MODULES) : undefined;
  if (localFound && !localFound.missing.length) return { kind: 'dir', origin: './weights', dir: local, set, ...localFound };
  const cfg = hubConfig(env);
  const cache = findInHfCache(set, cfg);
  if (cache.snapshot && !cache.missing.length) return { kind: 'hf-cache', origin: 'hf-cache', dir: cache.snapshot, set, files: cache.files, missing: [], commit: relative(join(cache.repoDir, 'snapshots'), cache.snapshot) };
  const here = localFound ? `${local} lacks ${localFound.missing.join(', ')}` : `${local} does not exist`;
  const there = cache.snapshot ? `lacks ${cache.missing.join(', ')}` : 'has none';
  throw new WeightsError(`no ${set} weights found: ${here}, and the HuggingFace cache ${cache.repoDir} ${there}; ${howToGet(set)}`);
}

function formatOf(files: Partial<Record<ModuleName, ModuleFile>>): string {
  const by = new Map<string, string[]>();
  for (const m of MODULES) {
    const f = files[m];
    if (f) by.set(f.format, [...(by.get(f.format) ?? []), SHORT[m]]);
  }
  return [...by].map(([fmt, ms]) => `${ms.join(',')} .${fmt}`).join(', ');
}

/** One line for start-up: where each module's weights come from. */
export function describeWeightsSource(src: WeightsSource): string {
  const where =
    src.kind === 'hf-cache'
      ? `the HuggingFace cache (${HF_REPO}@${src.commit?.slice(0, 12) ?? '?'}, read in place) ${src.dir}`
      : `${src.dir} (${src.origin === './weights' ? 'the default ./weights' : src.origin})`;
  const missing = src.missing.length ? `; missing ${src.missing.map((m) => SHORT[m]).join(',')}` : '';
  return `weights: ${src.set} set from ${where}: ${formatOf(src.files)}${missing}`;
}

/** The full report of `liveportrait weights where`: one line per module with its file, the blob it links to, and its size. */
export function describeWeightsSourceInFull(src: WeightsSource): string[] {
  const lines = [describeWeightsSource(src)];
  for (const m of MODULES) {
    const f = src.files[m];
    if (!f) {
      lines.push(`  ${SHORT[m]} ${m}: not found in ${src.dir}`);
      continue;
    }
    const real = realpathSync(f.path);
    const size = (statSync(real).size / 2 ** 20).toFixed(1);
    lines.push(`  ${SHORT[m]} ${m}: ${f.path}${real !== f.path ? ` -> ${real}` : ''} (${f.format}, ${size} MiB)`);
  }
  return lines;
}
