/**
 * The networks and the backend for the file-to-file app: the backend started
 * once per process, the LivePortrait of a weights directory (or synthetic
 * weights) cached per process, and the frame workers the options ask for.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { backendInfo, initBackend } from '../../backend.js';
import '../dawn.js'; // registers Dawn's navigator.gpu for the webgpu backend
import type { LivePortrait } from '../../pipeline/live_portrait.js';
import { WEIGHTS_ENV, loadLivePortrait, weightsSpec as libraryWeightsSpec } from '../load.js';
import { defaultWorkerCount, startFrameWorkers } from '../workers.js';
import { CliError, UsageError, userMessage } from './errors.js';

export { WEIGHTS_ENV };

export interface ModelOptions {
  /** A weights directory, or 'synthetic' (default $LIVEPORTRAIT_WEIGHTS, else ./weights). */
  weights?: string;
  /** Seed of the synthetic weights (default 1). */
  seed?: number;
  /** Official weight set (default 'human'). */
  set?: 'human' | 'animal';
  /** tfjs backend (default auto / $LIVEPORTRAIT_BACKEND). */
  backend?: string;
  /**
   * Worker threads rendering frames, each with its own backend (the --workers
   * flag; default `defaultWorkerCount()`: one per core on wasm and cpu as memory allows, 0 on backends
   * that use the whole machine; an injected `model` renders in-process
   * unless this is set).
   */
  workers?: number;
  /**
   * The reference's neutral-lip expression (its src/utils/resources/lip_array.pkl)
   * for image-driven relative motion (default: lip_array.pkl in the weights
   * directory; zeros with synthetic weights).
   */
  lipArray?: string;
  /** Use this model instead of loading one (library callers, tests). */
  model?: LivePortrait;
}

const models = new Map<string, Promise<LivePortrait>>();
let backendReady: string | undefined;

/** Start the backend once per process (again only when another one is asked for). */
export async function ensureBackend(opts: ModelOptions, log?: (line: string) => void): Promise<void> {
  const key = opts.backend ?? '';
  if (backendReady === key) return;
  try {
    await initBackend({ backend: opts.backend, log: log ?? false });
  } catch (e) {
    throw new CliError(userMessage(e), { cause: e });
  }
  backendReady = key;
}

/** The weights the options point to: --weights, else $LIVEPORTRAIT_WEIGHTS, else ./weights ('synthetic' stays as is). */
export function weightsSpec(opts: ModelOptions): string {
  try {
    return libraryWeightsSpec(opts.weights, opts.set);
  } catch (e) {
    throw new CliError(userMessage(e), { cause: e });
  }
}

/**
 * The LivePortrait networks for the options (the library's loadLivePortrait),
 * cached per process (tests and repeated calls share one). Errors name the
 * directory, the file and the fix.
 */
export function loadModel(opts: ModelOptions): Promise<LivePortrait> {
  if (opts.model) return Promise.resolve(opts.model);
  const w = weightsSpec(opts);
  const seed = opts.seed ?? 1;
  if (w === 'synthetic' && !(Number.isInteger(seed) && seed >= 0)) throw new UsageError(`--seed must be a non-negative integer, got ${seed}`);
  const key = `${w === 'synthetic' ? `synthetic:${seed}` : `${resolve(w)}:${opts.set ?? 'human'}`}:${opts.lipArray ?? ''}`;
  if (opts.lipArray !== undefined && !existsSync(opts.lipArray))
    throw new CliError(`lip array ${opts.lipArray} not found; give --lip-array the reference's src/utils/resources/lip_array.pkl`);
  let hit = models.get(key);
  if (!hit) {
    hit = loadLivePortrait(w, { set: opts.set, seed, lipArray: opts.lipArray }).catch((e) => {
      models.delete(key);
      throw e instanceof CliError ? e : new CliError(userMessage(e).replace(`set ${WEIGHTS_ENV}=synthetic`, `pass --weights synthetic --seed 1 (or set ${WEIGHTS_ENV}=synthetic)`), { cause: e });
    });
    models.set(key, hit);
  }
  return hit;
}

/** Fail early when a weights directory is missing (the full load comes later). */
export async function loadModelCheck(opts: ModelOptions): Promise<void> {
  const dir = resolve(weightsSpec(opts));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) await loadModel(opts);
}

/** Start (or stop) the frame workers the options ask for; `log` gets a line when they start and when they are ready. */
export async function ensureWorkers(lp: LivePortrait, opts: ModelOptions, log?: (line: string) => void): Promise<void> {
  if (opts.model && opts.workers === undefined) return;
  const want = opts.workers ?? defaultWorkerCount(backendInfo()?.name);
  if (!Number.isInteger(want) || want < 0) throw new UsageError(`--workers must be a non-negative integer, got ${want}`);
  if (lp.workers === want) return;
  const t0 = Date.now();
  if (want > 0) log?.(`starting ${want} frame worker${want === 1 ? '' : 's'} (W and G${want > 1 ? ', split in pairs' : ''}) beside the input preparation`);
  try {
    await startFrameWorkers(lp, want, { backend: opts.backend });
  } catch (e) {
    throw new CliError(`could not start ${want} frame worker(s): ${userMessage(e)}; try --workers 0`, { cause: e });
  }
  if (want > 0) log?.(`frame workers ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
