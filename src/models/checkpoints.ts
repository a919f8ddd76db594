/**
 * Where the official LivePortrait weights live: the five modules, their files
 * in the HuggingFace repository KwaiVGI/LivePortrait (the same layout as the
 * reference's `pretrained_weights/`), and the converted names.
 */

import type { ModuleName } from './registry.js';

export type WeightSet = 'human' | 'animal';

export const HF_REPO = 'KwaiVGI/LivePortrait';
export const HF_BASE_URL = 'https://huggingface.co';


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
