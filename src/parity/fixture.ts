/**
 * A dump of the PyTorch reference (tools/reference/dump.py, or
 * shared/parity/seed1) as the comparer sees it: parsed files by module, the
 * weights manifest, and the tap naming `tap/<path>[#<call>][/<item>...]`.
 * Reading from disk is the Node side's job (src/node/parity.ts).
 */
import type { HostTensor, StateDict } from '../formats/host_tensor.js';
import { InputError } from '../errors.js';
import { syntheticTensor } from '../models/synthetic.js';
import { type NetworkName, type StitchingWeights, STITCHING } from '../models/registry.js';
import type { StitchingPart } from '../models/stitching_retargeting_module.js';

/** One parsed fixture file. */
export interface FixtureFile {
  tensors: Map<string, HostTensor>;
  /** The safetensors header's `__metadata__`. */
  metadata: Record<string, string>;
}

/** A fixture directory: which module files it has, and each file on demand. */
export interface ParityFixture {
  /** Where it is (for messages). */
  location: string;
  /** File stems present, e.g. 'warping_module', 'camera'. */
  stems: string[];
  /** A file by stem, parsed (the implementation may cache it). */
  file(stem: string): FixtureFile;
  /** Done with a file: its data may be freed. */
  release?(stem: string): void;
}

/** A fixture error with its fix, one line. */
export class FixtureError extends InputError {}

/** weights_manifest.json: synthetic (seed + per-key ranges) or real (files and shapes). */
export interface WeightsManifest {
  seed?: number;
  source?: string;
  modules: Record<string, Record<string, unknown>>;
}

interface RuleEntry {
  shape: number[];
  lo?: number;
  hi?: number;
  explicit?: boolean;
}

/** The weights the comparer builds networks from. */
export interface ParityWeights {
  /** For messages: 'synthetic seed 1 (fixture manifest)', a directory, ... */
  source: string;
  network(name: NetworkName): StateDict;
  stitching(): StitchingWeights;
}

/**
 * Weights by the manifest's rule: every key with its shape and range, drawn
 * with `seed` (the manifest's unless given); `explicit` holds the tensors
 * marked explicit (G's spectral-norm vectors) under their full names
 * `<module>/<key>`.
 */
export function manifestWeights(manifest: WeightsManifest, explicit: ReadonlyMap<string, HostTensor>, seed = manifest.seed): ParityWeights {
  if (seed === undefined) throw new FixtureError('weights_manifest.json has no seed: the fixture was made with real weights; pass --weights DIR with those weights');
  const stateDict = (module: string): StateDict => {
    const entries = manifest.modules[module] as Record<string, RuleEntry> | undefined;
    if (!entries) throw new FixtureError(`weights_manifest.json lists no module '${module}'; dump it again with the module's weights (tools/reference/dump.py --synthetic SEED)`);
    const sd: StateDict = new Map();
    for (const [key, e] of Object.entries(entries)) {
      if (e.explicit) {
        const t = explicit.get(`${module}/${key}`);
        if (!t) throw new FixtureError(`explicit_weights.safetensors has no '${module}/${key}' (marked explicit in weights_manifest.json); copy the explicit_weights.safetensors the dump wrote`);
        sd.set(key, t);
      } else if (e.lo !== undefined && e.hi !== undefined) {
        sd.set(key, syntheticTensor(`${module}/${key}`, e.shape, e.lo, e.hi, seed));
      } else {
        throw new FixtureError(`weights_manifest.json: '${module}/${key}' has neither a range nor "explicit"; the manifest lists real weights, pass --weights DIR`);
      }
    }
    return sd;
  };
  return {
    source: `synthetic seed ${seed}${seed === manifest.seed ? ' (fixture manifest)' : ` (manifest says ${manifest.seed})`}`,
    network: (name) => stateDict(name),
    stitching: () => {
      const parts = Object.entries(STITCHING.parts) as [StitchingPart, string][];
      return Object.fromEntries(parts.map(([p, key]) => [p, stateDict(`stitching_retargeting_module/${key}`)])) as StitchingWeights;
    },
  };
}

/** A dump's tap name, split: `tap/<path>[#<call>][/<item>...]`. */
export interface TapName {
  /** The submodule path ('' for the network itself). */
  path: string;
  /** Which call (0 when the module ran once). */
  call: number;
  /** Whether the name carried `#<call>` (the module ran more than once). */
  multiCall: boolean;
  /** List/dict items, with their leading slashes ('/0', '/mask'), or ''. */
  item: string;
}

/** Parse `tap/...`; undefined for other names. */
export function parseTapName(name: string): TapName | undefined {
  const m = /^tap\/([^#/]*)(?:#(\d+))?((?:\/[^/]+)*)$/.exec(name);
  if (!m) return undefined;
  return { path: m[1], call: m[2] ? Number(m[2]) : 0, multiCall: m[2] !== undefined, item: m[3] };
}

/** Strides of a tap's `slice` metadata ('[:, :, ::4, ::4, ::4]' → [1, 1, 4, 4, 4]); undefined for none. */
export function parseSlice(slice: string | undefined): number[] | undefined {
  if (!slice) return undefined;
  const body = slice.trim().replace(/^\[/, '').replace(/\]$/, '');
  const strides = body.split(',').map((s) => {
    const m = /^\s*:\s*(?::\s*(\d+))?\s*$/.exec(s);
    if (!m) throw new FixtureError(`unsupported tap slice '${slice}' (only [:, :, ::s, ...] strides)`);
    return m[1] ? Number(m[1]) : 1;
  });
  return strides;
}

/** A tap's `__metadata__` entry: {module, path, full_shape[, slice]}. */
export function tapMetadata(file: FixtureFile, name: string): { path?: string; full_shape?: number[]; slice?: string } | undefined {
  const raw = file.metadata[name];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as { path?: string; full_shape?: number[]; slice?: string };
  } catch {
    return undefined;
  }
}
