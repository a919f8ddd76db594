/**
 * The parity fixture directory (`LP_PARITY_DIR`, test/helpers/paths.ts) as
 * the network tests use it: a thin layer over the parity kit (src/parity:
 * the cases, the judging, the tolerance table) and its directory reader
 * (src/node/parity.ts), the same code `liveportrait parity` runs. Without
 * the directory, parity suites are skipped with a printed reason; with
 * CI=true a missing directory fails.
 */
import type * as tf from '@tensorflow/tfjs';
import { describe, it } from 'vitest';
import type { ParamSpec } from '../../src/layers/params.js';
import { ParamReader } from '../../src/layers/params.js';
import { NETWORKS, type NetworkName, STITCHING } from '../../src/models/registry.js';
import type { HostTensor, StateDict } from '../../src/formats/host_tensor.js';
import { fixtureWeights, openFixtureDir, readFixtureManifest } from '../../src/node/parity.js';
import { checkTensor, FIXED_OUTPUTS, hostToTensor, type ParityFixture, type ParityRow, type ParityWeights } from '../../src/parity/index.js';
import { HAVE_PARITY, PARITY_DIR } from './paths.js';

export { TO_NCDHW, TO_NCHW, TO_NDHWC, TO_NHWC } from '../../src/parity/index.js';

/** weights_manifest.json as the tests read it: the rule's entries. */
interface Manifest {
  seed: number;
  modules: Record<string, Record<string, { shape: number[]; lo: number; hi: number; explicit?: boolean }>>;
}

let dir: ParityFixture | undefined;
let weights: ParityWeights | undefined;
let manifestCache: Manifest | undefined;
const stateDicts = new Map<string, StateDict>();

/** The fixture directory (src/node/parity.ts openFixtureDir: files parsed on first use, cached). */
export function fixtureDir(): ParityFixture {
  return (dir ??= openFixtureDir(PARITY_DIR));
}

export function manifest(): Manifest {
  return (manifestCache ??= readFixtureManifest(PARITY_DIR) as Manifest);
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

/**
 * The fixture's weights for a network, or a part of S by its manifest name
 * ('stitching_retargeting_module/retarget_eye'): src/node/parity.ts
 * fixtureWeights (the manifest's rule and seed, plus the explicit tensors).
 */
export function fixtureStateDict(module: string): StateDict {
  let sd = stateDicts.get(module);
  if (sd) return sd;
  weights ??= fixtureWeights(PARITY_DIR);
  if (module in NETWORKS) sd = weights.network(module as NetworkName);
  else {
    const part = (Object.keys(STITCHING.parts) as (keyof typeof STITCHING.parts)[]).find((p) => module === `stitching_retargeting_module/${STITCHING.parts[p]}`);
    if (!part) throw new Error(`no fixture weights for '${module}'`);
    sd = weights.stitching()[part];
  }
  stateDicts.set(module, sd);
  return sd;
}

/** Tensors of a fixture file, e.g. fixture('camera'). */
export function fixture(name: string): Map<string, HostTensor> {
  return fixtureDir().file(name).tensors;
}

export function fixtureMetadata(name: string): Record<string, string> {
  return fixtureDir().file(name).metadata;
}

function stored(name: string, key: string): HostTensor {
  const t = fixture(name).get(key);
  if (!t) throw new Error(`${name}.safetensors has no tensor '${key}'`);
  return t;
}

/** A fixture tensor as a tfjs tensor, optionally permuted (e.g. NCHW → NHWC). */
export function fixtureTensor(name: string, key: string, perm?: number[]): tf.Tensor {
  return hostToTensor(stored(name, key), perm);
}

/** A network of the registry built from the fixture's weights, with its reader (to check every weight was read). */
export function fixtureNetwork<K extends NetworkName>(name: K): { net: ReturnType<(typeof NETWORKS)[K]['create']>; reader: ParamReader } {
  const reader = new ParamReader(fixtureStateDict(name), name, 'parity fixture');
  return { net: NETWORKS[name].create(reader) as ReturnType<(typeof NETWORKS)[K]['create']>, reader };
}

/** Ours for one fixture tensor: in the fixture's (PyTorch) layout, or channel-last with the permutation to it. */
export type Ours = tf.Tensor | { actual: tf.Tensor; perm: number[] };

/**
 * Compare ours with the fixture file's tensors of the same names, as
 * `liveportrait parity` does: strided as the dump's `_sub` tensors are
 * (src/parity/cases.ts), judged by the tolerance table
 * (src/parity/tolerances.ts). Returns each max abs error, the rows and the
 * failures as lines, so a test is `expect((await checkFixture(...)).failed).toEqual([])`.
 */
export async function checkFixture(file: string, ours: Record<string, Ours>): Promise<{ errors: Record<string, number>; rows: ParityRow[]; failed: string[] }> {
  const errors: Record<string, number> = {};
  const rows: ParityRow[] = [];
  for (const [name, o] of Object.entries(ours)) {
    const perm = 'perm' in o ? o.perm : undefined;
    const actual = 'perm' in o ? o.actual : o;
    const t = perm ? actual.transpose(perm) : actual;
    try {
      const row = await checkTensor(file, name, t, stored(file, name), FIXED_OUTPUTS[file]?.[name]?.strides);
      rows.push(row);
      errors[name] = row.maxAbs ?? NaN;
    } finally {
      if (t !== actual) t.dispose();
    }
  }
  const failed = rows.filter((r) => r.status !== 'pass').map((r) => `${r.tensor}: ${r.status}, max abs ${r.maxAbs}, tolerance ${r.tolerance ?? 'none'}${r.note ? ` (${r.note})` : ''}`);
  return { errors, rows, failed };
}

function backendError(): string | undefined {
  return (globalThis as { __lpBackendError?: string }).__lpBackendError;
}

/** describe() that fails under CI=true and is skipped (with the reason printed) otherwise when `reason` is set. */
function describeIf(name: string, reason: string | undefined, what: string, fn: () => void): void {
  if (!reason) describe(name, fn);
  else if (process.env.CI === 'true')
    describe(name, () => {
      it(what, () => {
        throw new Error(`${reason}; CI=true requires it`);
      });
    });
  else {
    console.warn(`skipping '${name}': ${reason}`);
    describe.skip(name, fn);
  }
}

/**
 * describe() for suites that need the parity fixtures: skipped with a printed
 * reason when the directory is missing, failing instead under CI=true.
 */
export function describeParity(name: string, fn: () => void): void {
  const be = backendError();
  describeIf(name, be ?? (HAVE_PARITY ? undefined : `parity fixtures not found at ${PARITY_DIR} (set LP_PARITY_DIR)`), be ? 'has its backend' : 'has its fixture directory', fn);
}

/** describe() for suites that need the chosen backend only: skipped (or, with CI=true, failed) when it could not start. */
export function describeBackend(name: string, fn: () => void): void {
  describeIf(name, backendError(), 'has its backend', fn);
}
