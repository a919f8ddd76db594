/**
 * Building blocks with no LivePortrait knowledge, channel-last (NHWC,
 * NDHWC), each taking its weights from a ParamReader by PyTorch key.
 */
export { ParamReader, type ParamSpec } from './params.js';
export { Conv2d, Conv3d, BatchNorm, Linear } from './core.js';
export { SameBlock2d, DownBlock2d, ResBlock3d, DownBlock3d, UpBlock3d } from './blocks.js';
export { gridSample3d } from './grid_sample3d.js';
export { pixelShuffle } from './pixel_shuffle.js';
export { SPADE, SPADEResnetBlock, InstanceNorm2d } from './spade.js';
export { TapRecorder, scopedTap, joinTapPath, type TapFn, type TapLayout } from './taps.js';
