/**
 * `downloadWeights(dir)`: the official weights into a plain folder (the
 * official nested layout), through `@huggingface/hub` (hub_fetch.ts: resume,
 * sha256 against the LFS ids), each verified hash recorded in
 * `sha256sums.json`, then converted to safetensors unless told not to.
 * Without a folder, `fetchOfficialWeights()` fills the HuggingFace cache instead.
 */
import { relative, resolve } from 'node:path';
import { WeightsError } from '../errors.js';
import type { WeightSet } from '../models/checkpoints.js';
import type { ModuleName } from '../models/registry.js';
import { type FetchProgress, type FetchedFile, fetchOfficialWeights, sha256File } from './hub_fetch.js';
import { prepareOutputDir, removeCreatedDirs } from './output.js';
import { readSha256Sums, writeSha256Sums } from './verify.js';
import { type ConvertResult, convertWeights } from './weights.js';

export { SHA256SUMS, readSha256Sums, verifyWeights, type ModuleCheck, type VerifyOptions, type VerifyResult } from './verify.js';
export { sha256File };

export interface DownloadProgress extends Omit<FetchProgress, 'phase'> {
  phase: FetchProgress['phase'] | 'converting' | 'converted';
}

export interface DownloadOptions {
  set?: WeightSet;
  /** Only these modules (default all five). */
  modules?: readonly ModuleName[];
  onProgress?: (p: DownloadProgress) => void;
  /** Server root (default $HF_ENDPOINT, else https://huggingface.co). */
  baseUrl?: string;
  fetch?: typeof globalThis.fetch;
  /** Convert to safetensors afterwards (default true). */
  convert?: boolean;
  /** Resumed attempts after a cut connection, per file (default 3). */
  retries?: number;
}

export interface DownloadResult {
  dir: string;
  files: (Omit<FetchedFile, 'file'> & { file: string })[];
  converted: ConvertResult[];
}

/**
 * Download the official `set` (default human) into `outDir` and convert it.
 * A run that fails before writing anything removes the folder it made.
 */
export async function downloadWeights(outDir: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  let created: string[];
  try {
    created = prepareOutputDir(outDir);
  } catch (e) {
    throw new WeightsError((e as Error).message.replace(/^output folder/, 'weights folder'));
  }
  const sums = readSha256Sums(outDir);
  let res;
  try {
    res = await fetchOfficialWeights({ ...opts, dir: outDir, known: sums, config: opts.baseUrl ? { endpoint: opts.baseUrl.replace(/\/+$/, '') } : undefined });
  } catch (e) {
    removeCreatedDirs(created);
    throw e;
  }
  for (const f of res.files) if (f.sha256) sums[f.file] = f.sha256;
  writeSha256Sums(outDir, sums);
  let converted: ConvertResult[] = [];
  if (opts.convert ?? true) {
    converted = convertWeights(outDir, outDir, {
      set: opts.set,
      modules: opts.modules,
      onProgress: (p) => opts.onProgress?.({ module: p.module, file: relative(outDir, p.to ?? ''), phase: p.phase === 'start' ? 'converting' : 'converted', received: p.bytes ?? 0 }),
    });
    for (const c of converted) sums[relative(outDir, c.to)] = await sha256File(c.to);
    writeSha256Sums(outDir, sums);
  }
  return { dir: resolve(outDir), files: res.files, converted };
}
