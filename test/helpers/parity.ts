/**
 * Access to the PyTorch reference's golden tensors (`../shared/parity/seed1`
 * by default, or `LP_PARITY_DIR`). Without the directory, parity suites are
 * skipped with a printed reason; with CI=true a missing directory fails.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { describe, it } from 'vitest';
import { syntheticStateDict } from '../../src/models/synthetic.js';
import { ParamReader, type ParamSpec } from '../../src/layers/params.js';
import { type LivePortraitWeights, NETWORKS, type NetworkName, STITCHING } from '../../src/models/registry.js';
import { type HostTensor, type StateDict, toFloat32 } from '../../src/formats/host_tensor.js';
import { readSafetensors } from '../../src/node/files.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PARITY_DIR = resolve(process.env.LP_PARITY_DIR ?? join(ROOT, '..', 'shared', 'parity', 'seed1'));
export const MEDIA_DIR = resolve(process.env.LP_MEDIA_DIR ?? join(ROOT, '..', 'shared', 'media'));
export const HAVE_PARITY = existsSync(join(PARITY_DIR, 'weights_manifest.json'));

interface Manifest {
  seed: number;
  modules: Record<string, Record<string, { shape: number[]; lo: number; hi: number; explicit?: boolean }>>;
}

let manifestCache: Manifest | undefined;
export function manifest(): Manifest {
  manifestCache ??= JSON.parse(readFileSync(join(PARITY_DIR, 'weights_manifest.json'), 'utf8')) as Manifest;
  return manifestCache;
}

/** The seed the fixtures were made with. */
export function paritySeed(): number {
  return manifest().seed;
}

/** Parameter specs of a module as the manifest lists them. */
export function manifestSpecs(module: string): ParamSpec[] {
  const m = manifest().modules[module];
  if (!m) throw new Error(`weights_manifest.json has no module '${module}'`);
  return Object.entries(m).map(([key, v]) => ({ key, shape: v.shape }));
}

/** The fixture's weights for a module: the rule, plus the explicit tensors. */
export function fixtureStateDict(module: string): StateDict {
  const explicit = new Map<string, HostTensor>();
  const path = join(PARITY_DIR, 'explicit_weights.safetensors');
  if (existsSync(path))
    for (const [k, t] of readSafetensors(path).tensors) if (k.startsWith(`${module}/`)) explicit.set(k.slice(module.length + 1), t);
  return syntheticStateDict(module, manifestSpecs(module), paritySeed(), explicit);
}

/** All five networks' fixture weights, as a weights loader gives them. */
export function fixtureWeights(): LivePortraitWeights {
  const nets = Object.fromEntries((Object.keys(NETWORKS) as NetworkName[]).map((n) => [n, fixtureStateDict(n)])) as { [K in NetworkName]: StateDict };
  const parts = Object.fromEntries(
    (Object.keys(STITCHING.parts) as (keyof typeof STITCHING.parts)[]).map((p) => [p, fixtureStateDict(`stitching_retargeting_module/${STITCHING.parts[p]}`)]),
  ) as LivePortraitWeights['stitching_retargeting_module'];
  return { ...nets, stitching_retargeting_module: parts };
}

const cache = new Map<string, Map<string, HostTensor>>();
/** Tensors of a fixture file, e.g. fixture('camera'). */
export function fixture(name: string): Map<string, HostTensor> {
  let f = cache.get(name);
  if (!f) {
    f = readSafetensors(join(PARITY_DIR, `${name}.safetensors`)).tensors;
    cache.set(name, f);
  }
  return f;
}

export function fixtureMetadata(name: string): Record<string, string> {
  return readSafetensors(join(PARITY_DIR, `${name}.safetensors`)).metadata;
}

/** A fixture tensor as a tfjs tensor, optionally permuted (e.g. NCHW → NHWC). */
export function fixtureTensor(name: string, key: string, perm?: number[]): tf.Tensor {
  const t = fixture(name).get(key);
  if (!t) throw new Error(`${name}.safetensors has no tensor '${key}'`);
  return tf.tidy(() => {
    const x = t.dtype === 'U8' ? tf.tensor(Int32Array.from(t.data as Uint8Array), t.shape, 'int32') : tf.tensor(toFloat32(t), t.shape, 'float32');
    return perm ? tf.transpose(x, perm) : x;
  });
}

/**
 * The first value of a tensor made by `fn` (in a tidy), read asynchronously:
 * GPU backends (webgpu in Node) have no synchronous read.
 */
export async function readScalar(fn: () => tf.Tensor): Promise<number> {
  const t = tf.tidy(fn);
  try {
    return (await t.data())[0];
  } finally {
    t.dispose();
  }
}

/** Max |a - b| over two tensors of the same shape. */
export async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape mismatch: ${JSON.stringify(a.shape)} vs ${JSON.stringify(b.shape)}`);
  return readScalar(() => tf.max(tf.abs(tf.sub(tf.cast(a, 'float32'), tf.cast(b, 'float32')))));
}

/** Max |t| of a tensor. */
export function maxAbs(t: tf.Tensor): Promise<number> {
  return readScalar(() => tf.max(tf.abs(t)));
}

/** NCHW → NHWC and NCDHW → NDHWC permutations, and back. */
export const TO_NHWC = [0, 2, 3, 1];
export const TO_NCHW = [0, 3, 1, 2];
export const TO_NDHWC = [0, 2, 3, 4, 1];
export const TO_NCDHW = [0, 4, 1, 2, 3];

/**
 * describe() for suites that need the parity fixtures: skipped with a printed
 * reason when the directory is missing, failing instead under CI=true.
 */
export function describeParity(name: string, fn: () => void): void {
  const backendError = (globalThis as { __lpBackendError?: string }).__lpBackendError;
  const reason = backendError ?? (HAVE_PARITY ? undefined : `parity fixtures not found at ${PARITY_DIR} (set LP_PARITY_DIR)`);
  if (!reason) {
    describe(name, fn);
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(backendError ? 'has its backend' : 'has its fixture directory', () => {
        throw new Error(`${reason}; CI=true requires it`);
      });
    });
  } else {
    console.warn(`skipping '${name}': ${reason}`);
    describe.skip(name, fn);
  }
}

/** describe() for suites that need the chosen backend only: skipped (or, with CI=true, failed) when it could not start. */
export function describeBackend(name: string, fn: () => void): void {
  const backendError = (globalThis as { __lpBackendError?: string }).__lpBackendError;
  if (!backendError) describe(name, fn);
  else if (process.env.CI === 'true')
    describe(name, () => {
      it('has its backend', () => {
        throw new Error(`${backendError}; CI=true requires it`);
      });
    });
  else {
    console.warn(`skipping '${name}': ${backendError}`);
    describe.skip(name, fn);
  }
}

/** A network of the registry built from the fixture's weights, with its reader (to check every weight was read). */
export function fixtureNetwork<K extends NetworkName>(name: K): { net: ReturnType<(typeof NETWORKS)[K]['create']>; reader: ParamReader } {
  const reader = new ParamReader(fixtureStateDict(name), name, 'parity fixture');
  return { net: NETWORKS[name].create(reader) as ReturnType<(typeof NETWORKS)[K]['create']>, reader };
}

/** One output or tap of ours, compared with a fixture tensor (PyTorch layout). */
export interface FixtureCheck {
  /** Ours, channel-last. */
  actual: tf.Tensor;
  /** Permutation to the fixture's layout (e.g. TO_NCHW), if any. */
  perm?: number[];
  /** Strides taken after the permutation (the fixtures' `_sub` taps, e.g. [1, 1, 4, 4, 4]). */
  strides?: number[];
  /** Largest max |ours - reference| accepted. */
  tol: number;
}

/**
 * Compare outputs and taps with the fixture file's tensors of the same
 * names: returns each max abs error and the names over their tolerance, so
 * a layer test is `expect(compareToFixture(file, checks).failed).toEqual([])`.
 */
export async function compareToFixture(file: string, checks: Record<string, FixtureCheck>): Promise<{ errors: Record<string, number>; failed: string[] }> {
  const errors: Record<string, number> = {};
  const failed: string[] = [];
  for (const [key, c] of Object.entries(checks)) {
    const expected = fixtureTensor(file, key);
    const ours = tf.tidy(() => {
      let a = c.perm ? tf.transpose(c.actual, c.perm) : c.actual;
      if (c.strides) a = stridedLeadingBatch(a, c.strides);
      return a === c.actual ? a.clone() : a;
    });
    errors[key] = await maxAbsDiff(ours, expected);
    if (!(errors[key] <= c.tol)) failed.push(`${key}: ${errors[key]} > ${c.tol}`);
    tf.dispose([ours, expected]);
  }
  return { errors, failed };
}

/**
 * x[::s0, ::s1, ...] for any rank, as rank-4-or-less strided slices per
 * leading item where the rank is 5 (webgpu's rank-5 strided slice does not
 * compile).
 */
function stridedLeadingBatch(x: tf.Tensor, strides: number[]): tf.Tensor {
  if (x.rank < 5) return tf.stridedSlice(x, x.shape.map(() => 0), x.shape, strides);
  const items = tf.unstack(x).filter((_, i) => i % strides[0] === 0);
  return tf.stack(items.map((t) => stridedLeadingBatch(t, strides.slice(1))));
}
