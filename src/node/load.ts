/**
 * `loadLivePortrait`: the one way to get a LivePortrait in Node, from a
 * weights directory (converted or official layout), a parity fixture
 * directory (its exact weights: the manifest's rule and the explicit
 * spectral-norm vectors), or the synthetic weights, with any module taken
 * from elsewhere (another weight set, a file, a state dict in memory).
 */
import { existsSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { InputError, WeightsError } from '../errors.js';
import { LivePortrait } from '../pipeline/live_portrait.js';
import { type LivePortraitWeights, type ModuleName, MODULES, checkSignature, splitStitching, syntheticLoader, type WeightsLoader } from '../models/registry.js';
import type { StateDict } from '../formats/host_tensor.js';
import { type LoadOptions, checkWeightsPresent, findModuleFile, loadModuleWeights, loadStitchingWeights, readWeightsFile } from './weights.js';
import { fixtureWeights, MANIFEST } from './parity.js';
import { readBytes } from './files.js';
import { WEIGHTS_ENV, resolveWeightsSource } from './hub.js';
import type { WeightSet } from '../models/checkpoints.js';
import { loadFaceDetector } from './face_models.js';

export { WEIGHTS_ENV };

/** Where a module's weights can come from instead: a weights directory, a .pth or .safetensors file, or a state dict. */
export type ModuleWeights = string | StateDict;

export interface LoadLivePortraitOptions extends LoadOptions {
  /** Seed of the synthetic weights (default 1). */
  seed?: number;
  /**
   * The reference's neutral-lip expression for image-driven relative motion:
   * 63 numbers or the path of its lip_array.pkl (default: lip_array.pkl in
   * the weights directory, when there; zeros with synthetic weights).
   */
  lipArray?: ArrayLike<number> | string;
  /** Modules taken from elsewhere, e.g. `{ motion_extractor: 'weights-animal' }` (the rest from `weights`). */
  modules?: Partial<Record<ModuleName, ModuleWeights>>;
  /** Called as each module's weights are read (F, M and S at once; W and G when first rendered here). */
  onProgress?: (p: { module: ModuleName; source: string }) => void;
}

/**
 * The weights the arguments name: the given spec, else $LIVEPORTRAIT_WEIGHTS
 * (a folder, or 'synthetic'), else ./weights when it holds all five
 * modules, else the HuggingFace cache when complete (read in place); a
 * one-line WeightsError naming both places and how to get the weights
 * otherwise.
 */
export function weightsSpec(spec?: string, set?: WeightSet): string {
  const given = spec ?? process.env[WEIGHTS_ENV];
  if (given) return given;
  return resolveWeightsSource({ set }).dir;
}

/** The lip array option as the library takes it: numbers, or the bytes of a .pkl file. */
export function readLipArrayOption(v: ArrayLike<number> | string | undefined): ArrayLike<number> | Uint8Array | undefined {
  if (typeof v !== 'string') return v;
  return readBytes(v, (r) => new InputError(`lip array ${v}: ${r}; give the reference's src/utils/resources/lip_array.pkl`));
}

function moduleFrom(m: ModuleName, w: ModuleWeights, opts: LoadOptions): { sd: StateDict; source: string } {
  if (typeof w !== 'string') return { sd: w, source: `${m} (state dict)` };
  const p = resolve(w);
  if (!existsSync(p)) throw new WeightsError(`weights for ${m}: ${p} not found; give a weights directory, a .pth or .safetensors file`);
  if (statSync(p).isDirectory()) return { sd: loadModuleWeights(p, m, opts), source: p };
  const ext = extname(p).toLowerCase();
  if (ext !== '.pth' && ext !== '.safetensors') throw new WeightsError(`weights for ${m}: ${p} is neither a .pth nor a .safetensors file`);
  const sd = readWeightsFile({ path: p, format: ext === '.pth' ? 'pth' : 'safetensors' });
  checkSignature(sd, m, p);
  return { sd, source: p };
}

/**
 * A LivePortrait from `weights` (default: $LIVEPORTRAIT_WEIGHTS, else
 * ./weights, else the HuggingFace cache, see weightsSpec): a weights directory, a parity fixture directory (one holding
 * weights_manifest.json: its exact weights), or 'synthetic' (deterministic
 * made-up weights, `seed`: offline, meaningless output). F, M and S are read
 * now, W and G when first rendered in this thread (frame workers read their
 * own). Errors are one line naming the directory or file and the fix.
 *
 * @example
 * const lp = await loadLivePortrait();                                   // $LIVEPORTRAIT_WEIGHTS or ./weights
 * const mixed = await loadLivePortrait('weights', { modules: { motion_extractor: 'weights-animal' } });
 * await startFrameWorkers(lp);                                           // optional: frames in parallel
 */
export async function loadLivePortrait(weights?: string, opts: LoadLivePortraitOptions = {}): Promise<LivePortrait> {
  const spec = weightsSpec(weights, opts.set);
  const overrides = new Map<ModuleName, { sd: StateDict; source: string }>();
  for (const [m, w] of Object.entries(opts.modules ?? {}) as [ModuleName, ModuleWeights][]) {
    if (!MODULES.includes(m)) throw new InputError(`modules: unknown module '${m}'; known: ${MODULES.join(', ')}`);
    overrides.set(m, moduleFrom(m, w, opts));
  }
  const lipOpt = readLipArrayOption(opts.lipArray);
  let base: WeightsLoader;
  let label: string;
  let lipArray: ArrayLike<number> | Uint8Array | undefined = lipOpt;
  let workerBase: LivePortrait['workerWeights'];
  if (spec === 'synthetic') {
    const seed = opts.seed ?? 1;
    if (!Number.isInteger(seed) || seed < 0) throw new InputError(`seed must be a non-negative integer, got ${seed}`);
    base = syntheticLoader(seed);
    label = `synthetic seed ${seed}`;
    // Synthetic weights are meaningless anyway: a zero neutral-lip expression stands in for lip_array.pkl.
    lipArray ??= new Float32Array(63);
    workerBase = { seed };
  } else {
    const dir = resolve(spec);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new WeightsError(
        `weights directory ${dir} not found; get the weights with \`liveportrait weights download --dir ${dir}${opts.set === 'animal' ? ' --set animal' : ''}\`, or set ${WEIGHTS_ENV}=synthetic to try everything offline with meaningless weights`,
      );
    if (existsSync(join(dir, MANIFEST))) {
      // A parity fixture: the manifest's rule with its seed, G's spectral-norm vectors from explicit_weights.safetensors.
      const fw = fixtureWeights(dir, opts.seed);
      base = ((m: ModuleName) => (m === 'stitching_retargeting_module' ? fw.stitching() : fw.network(m))) as WeightsLoader;
      label = `${fw.source} of ${dir}`;
      lipArray ??= new Float32Array(63);
    } else {
      const present = MODULES.filter((m) => !overrides.has(m));
      if (present.length) checkWeightsPresent(dir, { ...opts }, present);
      base = ((m: ModuleName) => (m === 'stitching_retargeting_module' ? loadStitchingWeights(dir, opts) : loadModuleWeights(dir, m, opts))) as WeightsLoader;
      label = dir;
      const lip = join(dir, 'lip_array.pkl');
      lipArray ??= readLipArrayOption(existsSync(lip) ? lip : undefined);
      workerBase = { dir, set: opts.set };
    }
  }
  const load = ((m: ModuleName) => {
    const o = overrides.get(m);
    const w = o ? (m === 'stitching_retargeting_module' ? splitStitching(o.sd, o.source) : o.sd) : base(m);
    opts.onProgress?.({ module: m, source: o?.source ?? label });
    return w;
  }) as WeightsLoader;
  const lp = LivePortrait.fromLoader(load, label, { lipArray, faceDetector: loadFaceDetector });
  // Frame workers read W and G themselves where they can; else they are sent as state dicts.
  if (workerBase && !overrides.has('warping_module') && !overrides.has('spade_generator')) lp.workerWeights = workerBase;
  else {
    let sent: LivePortrait['workerWeights'];
    Object.defineProperty(lp, 'workerWeights', {
      get: () =>
        (sent ??= { stateDicts: { warping_module: load('warping_module') as LivePortraitWeights['warping_module'], spade_generator: load('spade_generator') as LivePortraitWeights['spade_generator'] } }),
    });
  }
  return lp;
}

/** One module's weights as `loadLivePortrait` would read them (for building networks one by one). */
export function moduleWeights(m: ModuleName, w: ModuleWeights, opts: LoadOptions = {}): StateDict {
  return moduleFrom(m, w, opts).sd;
}

export { findModuleFile };
