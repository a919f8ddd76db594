/**
 * Checking a local weights folder: every module present, readable, with the
 * expected keys and shapes, and the sha256 recorded in `sha256sums.json`
 * (relative path → hex sha256, written by `downloadWeights`) where there is one.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { WeightsError } from '../errors.js';
import { type WeightSet, officialPath, safetensorsName } from '../models/checkpoints.js';
import type { StateDict } from '../formats/host_tensor.js';
import { MODULES, checkSignature, type ModuleName } from '../models/registry.js';
import { sha256File } from './hub_fetch.js';
import { findModuleFile, readWeightsFile } from './weights.js';

export const SHA256SUMS = 'sha256sums.json';

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

export function writeSha256Sums(dir: string, sums: Record<string, string>): void {
  const p = join(dir, SHA256SUMS);
  const tmp = `${p}.tmp-${process.pid}`;
  const sorted = Object.fromEntries(Object.entries(sums).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(tmp, JSON.stringify(sorted, null, 2) + '\n');
  renameSync(tmp, p);
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
