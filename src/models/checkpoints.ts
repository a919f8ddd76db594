/**
 * Where the official LivePortrait weights live: the five modules, their files
 * in the HuggingFace repository KwaiVGI/LivePortrait (the same layout as the
 * reference's `pretrained_weights/`), and the converted names.
 */

export const MODULES = ['appearance_feature_extractor', 'motion_extractor', 'warping_module', 'spade_generator', 'stitching_retargeting_module'] as const;
export type ModuleName = (typeof MODULES)[number];

export type WeightSet = 'human' | 'animal';

export const HF_REPO = 'KwaiVGI/LivePortrait';
export const HF_BASE_URL = 'https://huggingface.co';

/** The stitching checkpoint's three networks: our name → its dict key. */
export const STITCHING_PARTS = { stitching: 'retarget_shoulder', lip: 'retarget_mouth', eye: 'retarget_eye' } as const;
export type StitchingPart = keyof typeof STITCHING_PARTS;

/**
 * Path of a module's .pth in the HF repository (and in the reference's
 * `pretrained_weights/`). The animal set uses `base_models_v1.1` (the
 * reference's current animal models) and, like the reference, the human
 * stitching/retargeting module.
 */
export function officialPath(module: ModuleName, set: WeightSet = 'human'): string {
  if (module === 'stitching_retargeting_module') return 'liveportrait/retargeting_models/stitching_retargeting_module.pth';
  return set === 'human' ? `liveportrait/base_models/${module}.pth` : `liveportrait_animals/base_models_v1.1/${module}.pth`;
}

/** Every relative path where the loader looks for a module's .pth, best first. */
export function pthCandidates(module: ModuleName, set: WeightSet = 'human'): string[] {
  const nested =
    module === 'stitching_retargeting_module'
      ? set === 'human'
        ? ['liveportrait/retargeting_models/stitching_retargeting_module.pth']
        : ['liveportrait_animals/retargeting_models/stitching_retargeting_module.pth', 'liveportrait/retargeting_models/stitching_retargeting_module.pth']
      : set === 'human'
        ? [`liveportrait/base_models/${module}.pth`]
        : [`liveportrait_animals/base_models_v1.1/${module}.pth`, `liveportrait_animals/base_models/${module}.pth`];
  const sub = module === 'stitching_retargeting_module' ? 'retargeting_models' : 'base_models';
  // Flat, then the nested official layout, then the nested layout without the set folder.
  return [`${module}.pth`, ...nested, `${sub}/${module}.pth`];
}

/** The converted file's name (flat in the weights directory). */
export function safetensorsName(module: ModuleName): string {
  return `${module}.safetensors`;
}

/** The HTTP URL of a file of the HF repository. */
export function hfFileUrl(path: string, baseUrl = HF_BASE_URL): string {
  return `${baseUrl.replace(/\/+$/, '')}/${HF_REPO}/resolve/main/${path}`;
}

/** The HF API URL listing a folder of the repository (entries carry `lfs.oid`, the sha256). */
export function hfTreeUrl(folder: string, baseUrl = HF_BASE_URL): string {
  return `${baseUrl.replace(/\/+$/, '')}/api/models/${HF_REPO}/tree/main/${folder}`;
}

/**
 * A few keys and shapes each module's state dict must have (official names,
 * PyTorch shapes): enough to tell the modules, and a wrong file, apart.
 * Stitching keys are as converted: `<dict key>.<key>`.
 */
export const SIGNATURE_KEYS: Record<ModuleName, Record<string, number[]>> = {
  appearance_feature_extractor: { 'first.conv.weight': [64, 3, 3, 3] },
  motion_extractor: { 'detector.downsample_layers.0.0.weight': [96, 3, 4, 4], 'detector.fc_kp.weight': [63, 768], 'detector.fc_exp.weight': [63, 768] },
  warping_module: { 'fourth.weight': [256, 256, 1, 1], 'dense_motion_network.occlusion.weight': [1, 2272, 7, 7] },
  spade_generator: { 'fc.weight': [512, 256, 3, 3] },
  stitching_retargeting_module: {
    'retarget_shoulder.mlp.0.weight': [128, 126],
    'retarget_shoulder.mlp.6.weight': [65, 64],
    'retarget_mouth.mlp.0.weight': [128, 65],
    'retarget_mouth.mlp.6.weight': [63, 64],
    'retarget_eye.mlp.0.weight': [256, 66],
    'retarget_eye.mlp.10.weight': [63, 64],
  },
};
