/**
 * Weights from file bytes (a page's file picker or download): each file's
 * module recognised by its name, parsed (.pth or this library's
 * .safetensors), checked against its network's signature, and the
 * stitching module split in its three parts. No file system: the same in
 * Node and in a page.
 */
import { WeightsError } from '../errors.js';
import type { StateDict } from '../formats/host_tensor.js';
import { flattenStateDict, parsePth } from '../formats/pth.js';
import { parseSafetensors } from '../formats/safetensors.js';
import { type LivePortraitWeights, MODULES, type ModuleName, checkSignature, splitStitching } from './registry.js';

/** A weights file in memory. */
export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** The module a file name is for (it contains the module's name), if any. */
export function moduleOfName(name: string): ModuleName | undefined {
  const n = name.toLowerCase();
  return MODULES.find((m) => n.includes(m));
}

/** One file's flat state dict; errors name the file. */
export function stateDictFromBytes(bytes: Uint8Array, name: string): StateDict {
  const n = name.toLowerCase();
  try {
    if (n.endsWith('.safetensors')) return parseSafetensors(bytes, name).tensors;
    if (n.endsWith('.pth')) return flattenStateDict(parsePth(bytes, name), name);
  } catch (e) {
    throw new WeightsError(`${name} is not a readable weights file: ${(e as Error).message}`);
  }
  throw new WeightsError(`${name}: give the official .pth files or this library's .safetensors`);
}

/**
 * The five modules' weights from files (their names contain the module
 * names, as the official files' do), and lip_array.pkl's bytes if among
 * them. Errors are one line naming the file or the missing modules.
 */
export function weightsFromFiles(files: NamedBytes[]): { weights: LivePortraitWeights; lipArray?: Uint8Array } {
  const dicts = new Map<ModuleName, { sd: StateDict; name: string }>();
  let lipArray: Uint8Array | undefined;
  for (const f of files) {
    if (f.name.toLowerCase().endsWith('lip_array.pkl')) {
      lipArray = f.bytes;
      continue;
    }
    const m = moduleOfName(f.name);
    if (!m) throw new WeightsError(`${f.name}: not one of the five LivePortrait modules (the file name must contain ${MODULES.join(', ')})`);
    dicts.set(m, { sd: stateDictFromBytes(f.bytes, f.name), name: f.name });
  }
  const missing = MODULES.filter((m) => !dicts.has(m));
  if (missing.length) throw new WeightsError(`weights missing for ${missing.join(', ')}: give all five files (${MODULES.map((m) => `${m}.pth`).join(', ')})`);
  for (const [m, { sd, name }] of dicts) checkSignature(sd, m, name);
  const get = (m: ModuleName) => dicts.get(m)!.sd;
  return {
    weights: {
      appearance_feature_extractor: get('appearance_feature_extractor'),
      motion_extractor: get('motion_extractor'),
      warping_module: get('warping_module'),
      spade_generator: get('spade_generator'),
      stitching_retargeting_module: splitStitching(get('stitching_retargeting_module'), dicts.get('stitching_retargeting_module')!.name),
    },
    lipArray,
  };
}
