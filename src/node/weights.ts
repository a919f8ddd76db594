/**
 * Finding, reading and converting the official weights in a directory.
 *
 * A module is found as the converted `<module>.safetensors` (flat, what
 * `convertWeights` writes), else as `.pth` in the flat layout
 * (`<module>.pth`) or the official nested one
 * (`liveportrait/base_models/<module>.pth`, ...; see layout.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WeightsError } from '../errors.js';
import { type WeightSet, officialPath, pthCandidates, safetensorsName } from '../models/checkpoints.js';
import { type LivePortraitWeights, MODULES, type ModuleName, checkSignature, splitStitching } from '../models/registry.js';
import type { StateDict } from '../formats/host_tensor.js';
import { readPthStateDict, readSafetensors, writeSafetensors } from './files.js';
import { ensureDir } from './output.js';

export { WeightsError };

export interface LoadOptions {
  /** Which official set the directory holds (default 'human'). */
  set?: WeightSet;
}

export interface ModuleFile {
  path: string;
  format: 'safetensors' | 'pth';
}

/** Where a module's weights are in `dir`, or undefined. */
export function findModuleFile(dir: string, module: ModuleName, opts: LoadOptions = {}): ModuleFile | undefined {
  const st = join(dir, safetensorsName(module));
  if (existsSync(st)) return { path: st, format: 'safetensors' };
  for (const rel of pthCandidates(module, opts.set ?? 'human')) {
    const p = join(dir, rel);
    if (existsSync(p) && statSync(p).isFile()) return { path: p, format: 'pth' };
  }
  return undefined;
}

/** The one-line message for a module missing from `dir`. */
export function missingMessage(dir: string, module: ModuleName, set: WeightSet = 'human', pthOnly = false): string {
  const d = resolve(dir);
  const looked = [...(pthOnly ? [] : [safetensorsName(module)]), ...pthCandidates(module, set)];
  return (
    `${module} weights not found in ${d}: looked for ${looked.join(', ')}; ` +
    `get the official ${set} weights with \`liveportrait weights download --dir ${d}${set === 'animal' ? ' --set animal' : ''}\` ` +
    `or put https://huggingface.co/KwaiVGI/LivePortrait/resolve/main/${officialPath(module, set)} at ${join(d, officialPath(module, set))} (see weights/README.md)`
  );
}

/** Read one weights file (safetensors or .pth) as a flat state dict; errors name the file. */
export function readWeightsFile(file: ModuleFile): StateDict {
  try {
    return file.format === 'safetensors' ? readSafetensors(file.path).tensors : readPthStateDict(file.path);
  } catch (e) {
    const msg = (e as Error).message;
    throw new WeightsError(msg.includes(file.path) ? `corrupt weights file: ${msg}` : `corrupt weights file ${file.path}: ${msg}`);
  }
}

/**
 * One module's flat state dict from `dir`, checked against its signature.
 * The stitching module's keys carry their part: `retarget_shoulder.mlp.0.weight`.
 */
export function loadModuleWeights(dir: string, module: ModuleName, opts: LoadOptions = {}): StateDict {
  const file = findModuleFile(dir, module, opts);
  if (!file) throw new WeightsError(missingMessage(dir, module, opts.set ?? 'human'));
  const sd = readWeightsFile(file);
  checkSignature(sd, module, file.path);
  return sd;
}

/** Throws, naming every missing module and the fix, unless all five modules' files are in `dir`. */
export function checkWeightsPresent(dir: string, opts: LoadOptions, modules: readonly ModuleName[] = MODULES): void {
  const missing = modules.filter((m) => !findModuleFile(dir, m, opts));
  if (missing.length) throw new WeightsError(missing.length === 1 ? missingMessage(dir, missing[0], opts.set) : `${missing.length} modules missing (${missing.join(', ')}). ${missingMessage(dir, missing[0], opts.set)}`);
}

/** The stitching module's weights from `dir`, split in its three parts. */
export function loadStitchingWeights(dir: string, opts: LoadOptions): LivePortraitWeights['stitching_retargeting_module'] {
  const file = findModuleFile(dir, 'stitching_retargeting_module', opts);
  if (!file) throw new WeightsError(missingMessage(dir, 'stitching_retargeting_module', opts.set ?? 'human'));
  return splitStitching(loadModuleWeights(dir, 'stitching_retargeting_module', opts), file.path);
}

/** All five modules' weights from `dir` (the stitching one split in three). */
export function loadWeights(dir: string, opts: LoadOptions = {}): LivePortraitWeights {
  checkWeightsPresent(dir, opts);
  return {
    appearance_feature_extractor: loadModuleWeights(dir, 'appearance_feature_extractor', opts),
    motion_extractor: loadModuleWeights(dir, 'motion_extractor', opts),
    warping_module: loadModuleWeights(dir, 'warping_module', opts),
    spade_generator: loadModuleWeights(dir, 'spade_generator', opts),
    stitching_retargeting_module: loadStitchingWeights(dir, opts),
  };
}

export interface ConvertProgress {
  module: ModuleName;
  index: number;
  total: number;
  phase: 'start' | 'done';
  from?: string;
  to?: string;
  tensors?: number;
  bytes?: number;
}

export interface ConvertOptions extends LoadOptions {
  /** Only these modules (default all five). */
  modules?: readonly ModuleName[];
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertResult {
  module: ModuleName;
  from: string;
  to: string;
  tensors: number;
  bytes: number;
}

/**
 * Convert the .pth checkpoints of `srcDir` (flat or official nested layout)
 * into `<outDir>/<module>.safetensors`, keys as in the checkpoints (without
 * `module.`; stitching keys `retarget_shoulder.mlp.0.weight` etc.), dtypes
 * kept. Each file is written atomically. Throws before writing anything when
 * an input is missing; a corrupt input throws naming the file.
 */
export function convertWeights(srcDir: string, outDir: string, opts: ConvertOptions = {}): ConvertResult[] {
  const set = opts.set ?? 'human';
  const modules = opts.modules ?? MODULES;
  const sources = modules.map((module) => {
    const file = pthCandidates(module, set)
      .map((rel) => join(srcDir, rel))
      .find((p) => existsSync(p) && statSync(p).isFile());
    if (!file) throw new WeightsError(missingMessage(srcDir, module, set, true));
    return { module, file };
  });
  ensureDir(outDir);
  const results: ConvertResult[] = [];
  sources.forEach(({ module, file }, index) => {
    const to = join(outDir, safetensorsName(module));
    opts.onProgress?.({ module, index, total: sources.length, phase: 'start', from: file, to });
    const sd = readWeightsFile({ path: file, format: 'pth' });
    checkSignature(sd, module, file);
    writeSafetensors(to, sd, { format: 'pt', module, source: officialPath(module, set), converter: 'liveportrait-tfjs' });
    const bytes = statSync(to).size;
    results.push({ module, from: file, to, tensors: sd.size, bytes });
    opts.onProgress?.({ module, index, total: sources.length, phase: 'done', from: file, to, tensors: sd.size, bytes });
  });
  return results;
}
