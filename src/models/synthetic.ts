/**
 * Deterministic synthetic weights: the rule of the parity fixtures
 * (`shared/parity/README.md`), so that tests and offline runs need no
 * download. With the same seed they reproduce the fixtures' weights bit for bit.
 */
import type { ParamSpec } from '../layers/params.js';
import { type HostTensor, type StateDict, f32, numel } from '../formats/host_tensor.js';


/** FNV-1a, 32 bit, over the UTF-8 bytes of `s`. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The n uniform values in [0, 1) of tensor `name` under `seed` (float64). */
export function uniforms(name: string, seed: number, n: number): Float64Array {
  const key = fnv1a32(`${seed}:${name}`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b1) + key) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b) >>> 0;
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35) >>> 0;
    x ^= x >>> 16;
    out[i] = (x >>> 0) / 4294967296;
  }
  return out;
}

/** The range [lo, hi) the rule gives a parameter from its key and shape. */
export function ruleRange(key: string, shape: readonly number[]): [number, number] {
  if (key.endsWith('running_mean')) return [-0.1, 0.1];
  if (key.endsWith('running_var')) return [0.5, 1.5];
  if (key.endsWith('grn.gamma') || key.endsWith('grn.beta')) return [-0.3, 0.3];
  if (shape.length >= 2) {
    const b = Math.sqrt(3 / numel(shape.slice(1)));
    return [-b, b];
  }
  if (key.endsWith('weight')) return [0.8, 1.2];
  if (key.endsWith('bias')) return [-0.1, 0.1];
  throw new Error(`synthetic weights: no rule for parameter '${key}' of shape ${JSON.stringify(shape)}`);
}

/** One synthetic tensor: float32(lo + (hi - lo) * u), computed in float64. */
export function syntheticTensor(name: string, shape: number[], lo: number, hi: number, seed: number): HostTensor {
  const n = numel(shape);
  const u = uniforms(name, seed, n);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * u[i];
  return f32(shape, data);
}

/**
 * A whole synthetic state dict for `module` (e.g. 'warping_module', or
 * 'stitching_retargeting_module/retarget_eye'), keyed by the official keys.
 * `explicit` supplies tensors the rule does not cover (the spectral-norm
 * vectors `*.weight_u`, `*.weight_v`), by key.
 */
export function syntheticStateDict(module: string, specs: readonly ParamSpec[], seed: number, explicit?: ReadonlyMap<string, HostTensor>): StateDict {
  const sd: StateDict = new Map();
  for (const { key, shape } of specs) {
    const given = explicit?.get(key);
    if (given) {
      sd.set(key, given);
      continue;
    }
    if (key.endsWith('num_batches_tracked')) continue;
    const [lo, hi] = ruleRange(key, shape);
    sd.set(key, syntheticTensor(`${module}/${key}`, shape, lo, hi, seed));
  }
  return sd;
}
