/**
 * The synthetic weights of each network: its parameter list from its model
 * file, filled by the fixtures' rule (src/weights/synthetic.ts). G's
 * spectral-norm vectors, which the rule does not cover, come from
 * spadeGeneratorSyntheticExtras unless given.
 */
import type { LivePortraitWeights } from '../node/weights.js';
import { syntheticStateDict } from './synthetic.js';
import type { HostTensor, StateDict } from '../formats/host_tensor.js';
import { appearanceFeatureExtractorSpecs } from './appearance_feature_extractor.js';
import { motionExtractorSpecs } from './motion_extractor.js';
import { spadeGeneratorSpecs, spadeGeneratorSyntheticExtras } from './spade_generator.js';
import { STITCHING_CHECKPOINT_NAMES, stitchingRetargetingSpecs, type StitchingPart } from './stitching_retargeting_module.js';
import { warpingModuleSpecs } from './warping_module.js';

export type SyntheticModule = 'appearance_feature_extractor' | 'motion_extractor' | 'warping_module' | 'spade_generator';

export interface SyntheticOptions {
  /** G's weight_u / weight_v vectors (e.g. a fixture's explicit ones). */
  spadeExtras?: ReadonlyMap<string, HostTensor>;
}

/** One network's synthetic state dict under `seed`. */
export function syntheticModuleWeights(module: SyntheticModule, seed: number, opts: SyntheticOptions = {}): StateDict {
  switch (module) {
    case 'appearance_feature_extractor':
      return syntheticStateDict(module, appearanceFeatureExtractorSpecs(), seed);
    case 'motion_extractor':
      return syntheticStateDict(module, motionExtractorSpecs(), seed);
    case 'warping_module':
      return syntheticStateDict(module, warpingModuleSpecs(), seed);
    case 'spade_generator':
      return syntheticStateDict(module, spadeGeneratorSpecs(), seed, opts.spadeExtras ?? spadeGeneratorSyntheticExtras(seed));
  }
}

/** All five networks' synthetic weights under `seed`, as loadWeights returns real ones. */
export function syntheticWeights(seed: number, opts: SyntheticOptions = {}): LivePortraitWeights {
  const st = stitchingRetargetingSpecs();
  const part = (p: StitchingPart) => syntheticStateDict(`stitching_retargeting_module/${STITCHING_CHECKPOINT_NAMES[p]}`, st[p], seed);
  return {
    appearance_feature_extractor: syntheticModuleWeights('appearance_feature_extractor', seed),
    motion_extractor: syntheticModuleWeights('motion_extractor', seed),
    warping_module: syntheticModuleWeights('warping_module', seed),
    spade_generator: syntheticModuleWeights('spade_generator', seed, opts),
    stitching_retargeting_module: { stitching: part('stitching'), lip: part('lip'), eye: part('eye') },
  };
}
