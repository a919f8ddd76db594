/**
 * The five networks in one place: for each, its official name (the
 * checkpoint's file name), the paper's symbol, its configuration (the
 * reference's models.yaml), its parameter list (official keys, PyTorch
 * shapes) and its constructor. Everything that needs "all networks" derives
 * from here: synthetic weights, the shape checks of a weights file, loading
 * in frame workers, conversion and download.
 */
import type { HostTensor, StateDict } from '../formats/host_tensor.js';
import { ParamReader, type ParamSpec } from '../layers/params.js';
import { WeightsError } from '../errors.js';
import { APPEARANCE_FEATURE_EXTRACTOR_CONFIG, AppearanceFeatureExtractor, appearanceFeatureExtractorSpecs } from './appearance_feature_extractor.js';
import { MOTION_EXTRACTOR_CONFIG, MotionExtractor, motionExtractorSpecs } from './motion_extractor.js';
import { SPADE_GENERATOR_CONFIG, SpadeGenerator, spadeGeneratorSpecs, spadeGeneratorSyntheticExtras } from './spade_generator.js';
import { STITCHING_CHECKPOINT_NAMES, STITCHING_SIZES, StitchingRetargetingModule, type StitchingPart, stitchingRetargetingSpecs } from './stitching_retargeting_module.js';
import { syntheticStateDict } from './synthetic.js';
import type { AppearanceFeatureExtractorNet, MotionExtractorNet, SpadeGeneratorNet, WarpingModuleNet } from './types.js';
import { WARPING_MODULE_CONFIG, WarpingModule, warpingModuleSpecs } from './warping_module.js';

/** A network with one state dict (F, M, W, G). */
export interface NetworkEntry<Net> {
  /** The paper's symbol. */
  symbol: 'F' | 'M' | 'W' | 'G';
  /** models.yaml's parameters, as the constructor uses them. */
  config: object;
  /** Official keys and PyTorch shapes, in checkpoint order. */
  specs(): ParamSpec[];
  /** The network from a reader over its state dict. */
  create(p: ParamReader): Net;
  /** Parameters the synthetic rule does not cover (G's spectral-norm vectors). */
  syntheticExtras?(seed: number): Map<string, HostTensor>;
}

export const NETWORKS = {
  appearance_feature_extractor: {
    symbol: 'F',
    config: APPEARANCE_FEATURE_EXTRACTOR_CONFIG,
    specs: () => appearanceFeatureExtractorSpecs(),
    create: (p) => new AppearanceFeatureExtractor(p),
  } as NetworkEntry<AppearanceFeatureExtractorNet>,
  motion_extractor: {
    symbol: 'M',
    config: MOTION_EXTRACTOR_CONFIG,
    specs: () => motionExtractorSpecs(),
    create: (p) => new MotionExtractor(p),
  } as NetworkEntry<MotionExtractorNet>,
  warping_module: {
    symbol: 'W',
    config: WARPING_MODULE_CONFIG,
    specs: () => warpingModuleSpecs(),
    create: (p) => new WarpingModule(p),
  } as NetworkEntry<WarpingModuleNet>,
  spade_generator: {
    symbol: 'G',
    config: SPADE_GENERATOR_CONFIG,
    specs: () => spadeGeneratorSpecs(),
    create: (p) => new SpadeGenerator(p),
    syntheticExtras: spadeGeneratorSyntheticExtras,
  } as NetworkEntry<SpadeGeneratorNet>,
} as const;

/** S: three MLPs in one checkpoint, each under its own key ('retarget_shoulder', ...). */
export const STITCHING = {
  symbol: 'S',
  config: STITCHING_SIZES,
  /** Our part name → the checkpoint's key. */
  parts: STITCHING_CHECKPOINT_NAMES,
  specs: stitchingRetargetingSpecs,
  create: (readers: Record<StitchingPart, ParamReader>) => new StitchingRetargetingModule(readers),
} as const;

export type NetworkName = keyof typeof NETWORKS;
/** The five checkpoints, in the reference's order. */
export const MODULES = [...(Object.keys(NETWORKS) as NetworkName[]), 'stitching_retargeting_module'] as const;
export type ModuleName = NetworkName | 'stitching_retargeting_module';

/** The stitching checkpoint's three state dicts, keys like `mlp.0.weight`. */
export type StitchingWeights = Record<StitchingPart, StateDict>;

/** All five networks' state dicts (S split in its three parts). */
export type LivePortraitWeights = { [K in NetworkName]: StateDict } & { stitching_retargeting_module: StitchingWeights };

export interface LivePortraitNets {
  F: AppearanceFeatureExtractorNet;
  M: MotionExtractorNet;
  W: WarpingModuleNet;
  G: SpadeGeneratorNet;
  S: StitchingRetargetingModule;
}

/** A network, or how to build it when it is first used. */
export type Lazy<T> = T | (() => T);

/**
 * The five networks, W and G possibly as builders: where frame workers
 * render, they hold their own W and G and this thread never builds them
 * (about 700 MB of tensors on wasm).
 */
export type LivePortraitParts = Omit<LivePortraitNets, 'W' | 'G'> & { W: Lazy<WarpingModuleNet>; G: Lazy<SpadeGeneratorNet> };

/** One module's weights on demand: a file read, a synthetic draw, or state dicts at hand. */
export type WeightsLoader = <K extends ModuleName>(module: K) => LivePortraitWeights[K];

/**
 * A module's parameters as stored in its file: S's keys carry their part
 * (`retarget_shoulder.mlp.0.weight`), as the official checkpoint flattened.
 */
export function moduleSpecs(module: ModuleName): ParamSpec[] {
  if (module !== 'stitching_retargeting_module') return NETWORKS[module].specs();
  const st = STITCHING.specs();
  return (Object.keys(st) as StitchingPart[]).flatMap((p) => st[p].map((s) => ({ key: `${STITCHING.parts[p]}.${s.key}`, shape: s.shape })));
}

/**
 * A few keys and shapes that tell a module's file apart from any other (and
 * from a file of another configuration): the first and last weights of each
 * state dict, from the module's parameter list.
 */
function signatureOf(module: ModuleName): Record<string, number[]> {
  const weights = moduleSpecs(module).filter((s) => s.shape.length >= 2);
  const groups = new Map<string, ParamSpec[]>();
  for (const s of weights) {
    const g = module === 'stitching_retargeting_module' ? s.key.split('.')[0] : '';
    groups.set(g, [...(groups.get(g) ?? []), s]);
  }
  const out: Record<string, number[]> = {};
  for (const list of groups.values()) for (const s of [list[0], list[list.length - 1]]) out[s.key] = s.shape;
  return out;
}

export const SIGNATURE_KEYS = Object.fromEntries(MODULES.map((m) => [m, signatureOf(m)])) as Record<ModuleName, Record<string, number[]>>;

/** Check that a state dict has the module's signature keys and shapes. */
export function checkSignature(sd: StateDict, module: ModuleName, source: string): void {
  for (const [key, shape] of Object.entries(SIGNATURE_KEYS[module])) {
    const t = sd.get(key);
    if (!t) throw new WeightsError(`${source}: not ${/^[aeiou]/i.test(module) ? 'an' : 'a'} ${module} checkpoint (no '${key}'); the file is for another module or corrupt`);
    if (t.shape.join() !== shape.join())
      throw new WeightsError(`${source}: ${module} weight '${key}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}; the file is for another model or configuration`);
  }
}

/** Split the flat stitching state dict into its three networks (stitching, lip, eye). */
export function splitStitching(sd: StateDict, source = 'stitching_retargeting_module'): StitchingWeights {
  const out = { stitching: new Map(), lip: new Map(), eye: new Map() } as StitchingWeights;
  for (const [part, dictKey] of Object.entries(STITCHING.parts) as [StitchingPart, string][]) {
    const prefix = `${dictKey}.`;
    for (const [k, t] of sd) if (k.startsWith(prefix)) out[part].set(k.slice(prefix.length), t);
    if (out[part].size === 0) throw new WeightsError(`${source}: the stitching checkpoint has no '${dictKey}' entry (its ${part} network)`);
  }
  return out;
}

/** One network from its state dict; `source` names the weights in errors. */
export function createNetwork<K extends NetworkName>(name: K, sd: StateDict, source: string): ReturnType<(typeof NETWORKS)[K]['create']> {
  return NETWORKS[name].create(new ParamReader(sd, name, source)) as ReturnType<(typeof NETWORKS)[K]['create']>;
}

/** S from its three state dicts. */
export function createStitching(w: StitchingWeights, source: string): StitchingRetargetingModule {
  const readers = Object.fromEntries(
    (Object.keys(STITCHING.parts) as StitchingPart[]).map((p) => [p, new ParamReader(w[p], `stitching_retargeting_module/${STITCHING.parts[p]}`, source)]),
  ) as Record<StitchingPart, ParamReader>;
  return STITCHING.create(readers);
}

/** All five networks; what was built is disposed again if one fails. */
export function createNetworks(w: LivePortraitWeights, source: string): LivePortraitNets {
  const made: Partial<LivePortraitNets> = {};
  try {
    made.F = createNetwork('appearance_feature_extractor', w.appearance_feature_extractor, source);
    made.M = createNetwork('motion_extractor', w.motion_extractor, source);
    made.W = createNetwork('warping_module', w.warping_module, source);
    made.G = createNetwork('spade_generator', w.spade_generator, source);
    made.S = createStitching(w.stitching_retargeting_module, source);
  } catch (e) {
    for (const n of Object.values(made)) n?.dispose();
    throw e;
  }
  return made as LivePortraitNets;
}

/**
 * F, M and S from `load` now (their errors come at once); W and G as
 * builders that load their weights when first called.
 */
export function createNetworksLazily(load: WeightsLoader, source: string): LivePortraitParts {
  const made: Partial<LivePortraitNets> = {};
  try {
    made.F = createNetwork('appearance_feature_extractor', load('appearance_feature_extractor'), source);
    made.M = createNetwork('motion_extractor', load('motion_extractor'), source);
    made.S = createStitching(load('stitching_retargeting_module'), source);
  } catch (e) {
    for (const n of Object.values(made)) n?.dispose();
    throw e;
  }
  return {
    ...(made as Omit<LivePortraitNets, 'W' | 'G'>),
    W: () => createNetwork('warping_module', load('warping_module'), source),
    G: () => createNetwork('spade_generator', load('spade_generator'), source),
  };
}

export interface SyntheticOptions {
  /** G's weight_u / weight_v vectors (e.g. a fixture's explicit ones). */
  spadeExtras?: ReadonlyMap<string, HostTensor>;
}

/** One network's synthetic state dict under `seed` (the fixtures' rule). */
export function syntheticModuleWeights(name: NetworkName, seed: number, opts: SyntheticOptions = {}): StateDict {
  const n: NetworkEntry<unknown> = NETWORKS[name];
  const extras = name === 'spade_generator' ? (opts.spadeExtras ?? n.syntheticExtras?.(seed)) : n.syntheticExtras?.(seed);
  return syntheticStateDict(name, n.specs(), seed, extras);
}

/** S's three synthetic state dicts under `seed`. */
export function syntheticStitchingWeights(seed: number): StitchingWeights {
  const st = STITCHING.specs();
  const part = (p: StitchingPart) => syntheticStateDict(`stitching_retargeting_module/${STITCHING.parts[p]}`, st[p], seed);
  return { stitching: part('stitching'), lip: part('lip'), eye: part('eye') };
}

/** All five networks' synthetic weights under `seed`, as a weights loader returns real ones. */
export function syntheticWeights(seed: number, opts: SyntheticOptions = {}): LivePortraitWeights {
  const w = Object.fromEntries((Object.keys(NETWORKS) as NetworkName[]).map((n) => [n, syntheticModuleWeights(n, seed, opts)])) as { [K in NetworkName]: StateDict };
  return { ...w, stitching_retargeting_module: syntheticStitchingWeights(seed) };
}

/** Synthetic weights under `seed`, one module at a time (nothing is drawn until asked for). */
export function syntheticLoader(seed: number, opts: SyntheticOptions = {}): WeightsLoader {
  return (<K extends ModuleName>(module: K) =>
    (module === 'stitching_retargeting_module' ? syntheticStitchingWeights(seed) : syntheticModuleWeights(module as NetworkName, seed, opts)) as LivePortraitWeights[K]) as WeightsLoader;
}
