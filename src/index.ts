/**
 * LivePortrait in TypeScript on TensorFlow.js: the core, the same in Node
 * and in a web page. Data flows image → face crop → F and M → keypoint math
 * → W → G → paste-back.
 *
 * - Node adapters (weights from disk, ffmpeg video, image files, frame
 *   workers, the packaged face models): `liveportrait-tfjs/node`.
 * - Parity with a PyTorch dump: `liveportrait-tfjs/parity`.
 * - Building blocks with no LivePortrait knowledge: `liveportrait-tfjs/layers`.
 * - File formats (safetensors, .pth, numpy pickles, motion templates) on
 *   bytes: `liveportrait-tfjs/formats`.
 *
 * @example
 * import { initBackend, Driving } from 'liveportrait-tfjs';
 * import { loadLivePortrait, readImage, openVideo, writeVideo } from 'liveportrait-tfjs/node';
 * await initBackend();
 * const lp = await loadLivePortrait();                          // $LIVEPORTRAIT_WEIGHTS ('synthetic' works offline), else ./weights
 * const portrait = await lp.preparePortrait(await readImage('photo.jpg'));
 * const driving = Driving.video(await openVideo('driving.mp4'));
 * await writeVideo('animated.mp4', lp.animatePortrait(portrait, driving), { fps: driving.fps, audioFrom: 'driving.mp4' });
 * portrait.dispose();
 * await lp.dispose();
 */
export { initBackend, backendInfo, backendMemory, gpuAdapterInfo, isSoftwareAdapter, BACKEND_ENV, type BackendInfo, type BackendOptions, type BackendName, type GpuAdapterInfo } from './backend.js';
export { LivePortraitError, InputError, WeightsError, BackendError, LipArrayMissingError, NoFaceError, FaceIndexError } from './errors.js';

// The animation pipeline
export {
  LivePortrait,
  type LivePortraitOptions,
  type LoopOptions,
  type RenderOptions,
  type SourceInfo,
  type SourceRatios,
  type AnimatedFrame,
  type AnimatedFaces,
  type ImageInput,
  type RawImage,
  type DrivingFrameInput,
  type VideoRetargetOptions,
  type FaceDrivings,
  ReferenceControl,
  prepareImage,
  imageToUint8,
} from './pipeline/live_portrait.js';
export { Driving, fpsValue, type DrivingPlan, type DrivingItem, type DrivingCropOptions, type VideoFrames, type Fps, type ProgressInfo, type PlanContext } from './pipeline/driving.js';
export { Portrait, PortraitVideo, SOURCE_MAX_DIM, type PortraitFace, type SourceOptions, type SourceVideo, type VideoFace } from './pipeline/portrait.js';
export { type PortraitFrame, type PortraitAnimationOptions, type EditedPortrait, facesLeftToRight } from './pipeline/animate_portrait.js';
export { type MotionHook, type MotionHookContext, type SourceMotion, useFaceDetector } from './pipeline/hooks.js';
export { type Renderer, LocalRenderer, PoolRenderer } from './pipeline/renderer.js';
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
export { weightsFromFiles, stateDictFromBytes, moduleOfName, type NamedBytes } from './models/from_files.js';
export { officialPath, hfFileUrl, hfTreeUrl, type WeightSet } from './models/checkpoints.js';
export { downloadOfficialWeights, HubUnreachableError, type OfficialDownloadOptions, type OfficialFile } from './weights/hub_download.js';
export { AppearanceFeatureExtractor } from './models/appearance_feature_extractor.js';
export { MotionExtractor } from './models/motion_extractor.js';
export { WarpingModule } from './models/warping_module.js';
export { SpadeGenerator, G_STAGES, type SpadeGeneratorOptions } from './models/spade_generator.js';
export { StitchingRetargetingModule, type StitchingPart } from './models/stitching_retargeting_module.js';
export { NUM_KP, type MotionOutput, type WarpingOutput } from './models/types.js';

// Keypoints and motion
export { headposeBinsToDegree, getRotationMatrix, transformKeypoint, refineKpInfo, type KpInfo } from './motion/camera.js';
export { drivingKeypoints, motionMultiplier } from './motion/transfer.js';
export { TapRecorder, type TapFn } from './layers/taps.js';
export { animalDrivingKeypoints, animalMotionMultiplier, animalRawKeypoints, type AnimalTransferOptions } from './motion/animal.js';
export { type AnimationOptions, type AnimationRegion, type DrivingOption, DEFAULT_ANIMATION_OPTIONS, resolveOptions } from './motion/options.js';
export { applyExpressionEdits, type RetargetEdit } from './motion/edits.js';
export { kalmanSmooth } from './motion/kalman.js';
export { smoothMotion, CausalMotionSmoother, rotationToAngles, anglesToRotation, rotationToDegrees, type MotionSmoothing } from './motion/smooth.js';
export { mostNeutralFrame, neutralityScore, rotationAngle, type ReferenceFrame } from './motion/neutral.js';
export { motionSteps, prepareMotion, AUTO_REFERENCE_LIVE_SECONDS, type MotionStep } from './pipeline/motion_steps.js';
export { type MotionFrame, type MotionTemplate, parseAnyTemplate, templateToTensors, TemplateError } from './formats/template.js';

// Faces: detection, crop, ratios, paste-back
export { FaceDetector, type Face, type DetectOptions, type FaceModelSources } from './face/detector.js';
export { cropImage, cropImageByBbox, cropImageByBox, wholeImageCrop, parseCropBox, scaleCropBox, type CropBox, type CropResult, type CropOptions, SOURCE_CROP, DRIVING_CROP } from './face/crop.js';
export { calcEyeCloseRatio, calcLipCloseRatio } from './face/ratios.js';
export { preparePasteBack, pasteBack, type PasteBackMask } from './face/paste_back.js';

// Images in memory
export { type RgbImage, createImage, resizeImage, resizeSquare, resizeToLimit, imageToTensor } from './image/image.js';
export { concatFrame, panelRow } from './image/concat.js';
export { readImageHeader, checkImageSize, type ImageHeader } from './image/header.js';
export { maxPixels, maxFrames, maxInflateBytes } from './limits.js';
