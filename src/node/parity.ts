/**
 * The parity kit's files (Node): a fixture directory as a ParityFixture
 * (each `<module>.safetensors` read when first needed), and the weights to
 * compare with: the manifest's rule (weights_manifest.json +
 * explicit_weights.safetensors) or a real weights directory.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { HostTensor } from '../formats/host_tensor.js';
import { type FixtureFile, FixtureError, type ParityFixture, type ParityWeights, type WeightsManifest, manifestWeights } from '../parity/fixture.js';
import { splitStitching } from '../models/registry.js';
import type { WeightSet } from '../models/checkpoints.js';
import { findModuleFile, loadModuleWeights } from './weights.js';
import { readSafetensors } from './files.js';

export const MANIFEST = 'weights_manifest.json';
export const EXPLICIT = 'explicit_weights.safetensors';
const DUMP_HINT = 'python3 tools/reference/dump.py --reference REF --synthetic 1 --modules all --out DIR';

/** A fixture directory: the `<module>.safetensors` files in it, parsed on first use and cached. */
export function openFixtureDir(dir: string): ParityFixture {
  const d = resolve(dir);
  if (!existsSync(d) || !statSync(d).isDirectory()) throw new FixtureError(`fixture directory ${d} not found; pass --fixtures DIR, the --out of ${DUMP_HINT}`);
  const stems = readdirSync(d)
    .filter((f) => f.endsWith('.safetensors') && f !== EXPLICIT)
    .map((f) => f.slice(0, -'.safetensors'.length))
    .sort();
  if (stems.length === 0) throw new FixtureError(`${d} holds no fixture files (<module>.safetensors); make them with ${DUMP_HINT}`);
  const cache = new Map<string, FixtureFile>();
  return {
    location: d,
    stems,
    file(stem) {
      let f = cache.get(stem);
      if (!f) {
        f = readSafetensors(join(d, `${stem}.safetensors`));
        cache.set(stem, f);
      }
      return f;
    },
    release(stem) {
      cache.delete(stem);
    },
  };
}

/** weights_manifest.json of a fixture directory; missing or malformed: one line with the fix. */
export function readFixtureManifest(dir: string): WeightsManifest {
  const path = join(resolve(dir), MANIFEST);
  if (!existsSync(path))
    throw new FixtureError(
      `${resolve(dir)} has no ${MANIFEST}, so the weights the dump used are unknown; copy the ${MANIFEST} that tools/reference/dump.py wrote next to the .safetensors files, or pass --weights DIR (the real weights the dump used)`,
    );
  let m: WeightsManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as WeightsManifest;
  } catch (e) {
    throw new FixtureError(`${path}: malformed (${(e as Error).message}); copy it again from the dump's output directory`);
  }
  if (typeof m !== 'object' || m === null || typeof m.modules !== 'object') throw new FixtureError(`${path}: not a weights manifest (no "modules"); copy it again from the dump's output directory`);
  return m;
}

/** The explicit tensors (G's spectral-norm vectors) of a fixture directory, empty if it has none. */
export function readExplicitWeights(dir: string): Map<string, HostTensor> {
  const path = join(resolve(dir), EXPLICIT);
  return existsSync(path) ? readSafetensors(path).tensors : new Map();
}

/** The fixture's own weights: the manifest's rule with its seed (or `seed`), plus the explicit tensors. */
export function fixtureWeights(dir: string, seed?: number): ParityWeights {
  return manifestWeights(readFixtureManifest(dir), readExplicitWeights(dir), seed);
}

/** Real weights from a weights directory (the loader of src/node/weights.ts), read per module when needed. */
export function directoryWeights(dir: string, set: WeightSet = 'human'): ParityWeights {
  const d = resolve(dir);
  if (!existsSync(d) || !statSync(d).isDirectory()) throw new FixtureError(`weights directory ${d} not found; pass --weights DIR (converted or official layout) or --weights synthetic`);
  return {
    source: d,
    network: (name) => loadModuleWeights(d, name, { set }),
    stitching: () => splitStitching(loadModuleWeights(d, 'stitching_retargeting_module', { set }), findModuleFile(d, 'stitching_retargeting_module', { set })?.path),
  };
}
