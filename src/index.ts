/**
 * LivePortrait in TypeScript on TensorFlow.js: the core, the same in Node
 * and in a web page. Data flows image → face crop → F and M → keypoint math
 * → W → G → paste-back.
 *
 * - Node adapters (weights from disk, download, ffmpeg video, frame workers,
 *   the file-to-file app): `liveportrait-tfjs/node`.
 * - Building blocks with no LivePortrait knowledge: `liveportrait-tfjs/layers`.
 * - File formats (safetensors, .pth, numpy pickles, motion templates) on
 *   bytes: `liveportrait-tfjs/formats`.
 *
 * @example
 * import { initBackend, LivePortrait } from 'liveportrait-tfjs';
 * await initBackend();
 * const lp = LivePortrait.synthetic(1);          // or loadLivePortrait('weights') from 'liveportrait-tfjs/node'
 * const source = lp.prepareSource(image256);     // { data, width, height } RGB, or a tensor
 * for await (const frame of lp.animate(source, drivingFrames)) use(frame.rgb);
 * lp.disposeSource(source);
 * await lp.dispose();
 */
export { initBackend, backendInfo, backendMemory, gpuAdapterInfo, BACKEND_ENV, type BackendInfo, type BackendOptions, type BackendName, type GpuAdapterInfo } from './backend.js';
export { LivePortraitError, InputError, WeightsError, BackendError, LipArrayMissingError } from './errors.js';

// The animation pipeline
export {
  LivePortrait,
  type LivePortraitOptions,
  type RenderOptions,
  type SourceInfo,
  type SourceRatios,
  type AnimatedFrame,
  type ImageInput,
  type RawImage,
  type DrivingInput,
  type DrivingFrameInput,
  type VideoRetargetOptions,
} from './pipeline/live_portrait.js';
export { type FramePool, type PoolFrame, type WorkerWeights } from './pipeline/frame_pool.js';

// Networks and their registry
export {
  NETWORKS,
  STITCHING,
  MODULES,
  createNetwork,
  createNetworks,
  createNetworksLazily,
  syntheticWeights,
  syntheticModuleWeights,
  syntheticLoader,
  type NetworkName,
  type ModuleName,
  type LivePortraitWeights,
  type LivePortraitNets,
  type LivePortraitParts,
  type WeightsLoader,
  type Lazy,
} from './models/registry.js';
export { AppearanceFeatureExtractor } from './models/appearance_feature_extractor.js';
export { MotionExtractor } from './models/motion_extractor.js';
export { WarpingModule } from './models/warping_module.js';
export { SpadeGenerator, G_STAGES, type SpadeGeneratorOptions } from './models/spade_generator.js';
export { StitchingRetargetingModule, type StitchingPart } from './models/stitching_retargeting_module.js';
export { NUM_KP, type MotionOutput, type WarpingOutput } from './models/types.js';

// Keypoints and motion
export { headposeBinsToDegree, getRotationMatrix, transformKeypoint, refineKpInfo, type KpInfo } from './motion/camera.js';
export { drivingKeypoints, motionMultiplier } from './motion/transfer.js';
export { compareParity, manifestWeights, formatParityTable, TOLERANCES, type ParityFixture, type ParityWeights, type ParityReport, type ParityRow } from './parity/index.js';
export { TapRecorder, type TapFn } from './layers/taps.js';
export { animalDrivingKeypoints, animalMotionMultiplier, animalRawKeypoints, type AnimalTransferOptions } from './motion/animal.js';
export { type AnimationOptions, type AnimationRegion, type DrivingOption, DEFAULT_ANIMATION_OPTIONS, resolveOptions } from './motion/options.js';
export { applyExpressionEdits, type RetargetEdit } from './motion/edits.js';
export { kalmanSmooth } from './motion/kalman.js';
export { type MotionFrame, type MotionTemplate, parseAnyTemplate, templateToTensors, TemplateError } from './formats/template.js';

// Faces: detection, crop, ratios, paste-back
export { FaceDetector, type Face, type DetectOptions, type FaceModelSources } from './face/detector.js';
export { cropImage, cropImageByBbox, cropImageByBox, wholeImageCrop, parseCropBox, scaleCropBox, type CropBox, type CropResult, type CropOptions, SOURCE_CROP, DRIVING_CROP } from './face/crop.js';
export { calcEyeCloseRatio, calcLipCloseRatio } from './face/ratios.js';
export { preparePasteBack, pasteBack, type PasteBackMask } from './face/paste_back.js';

// Images in memory
export { type RgbImage, createImage, resizeImage, resizeSquare, resizeToLimit, imageToTensor } from './image/image.js';
export { concatFrame } from './image/concat.js';
