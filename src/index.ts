/**
 * LivePortrait in TypeScript on TensorFlow.js: the public API.
 *
 * The networks (F, M, W, G, S) each take their official state dict; the
 * LivePortrait class runs the animation pipeline; the app layer turns files
 * into files (what the `liveportrait` command uses).
 */
export { initBackend, backendInfo, gpuAdapterInfo, BACKEND_ENV, type BackendInfo, type BackendOptions, type BackendName, type GpuAdapterInfo } from './backend.js';

// Networks
export { AppearanceFeatureExtractor, appearanceFeatureExtractorSpecs } from './models/appearance_feature_extractor.js';
export { MotionExtractor, motionExtractorSpecs } from './models/motion_extractor.js';
export { WarpingModule, warpingModuleSpecs } from './models/warping_module.js';
export { DenseMotionNetwork } from './models/dense_motion.js';
export { SpadeGenerator, spadeGeneratorSpecs, spadeGeneratorSyntheticExtras } from './models/spade_generator.js';
export { StitchingRetargetingModule, stitchingRetargetingSpecs, STITCHING_CHECKPOINT_NAMES, type StitchingPart } from './models/stitching_retargeting_module.js';
export type * from './models/types.js';
export { syntheticWeights, syntheticModuleWeights, type SyntheticModule } from './models/synthetic.js';

// Layers (building blocks with no LivePortrait knowledge)
export { Conv2d, Conv3d, BatchNorm, Linear } from './layers/core.js';
export { gridSample3d } from './layers/grid_sample3d.js';
export { pixelShuffle } from './layers/pixel_shuffle.js';
export { SPADE, SPADEResnetBlock, InstanceNorm2d } from './layers/spade.js';

// Pipeline
export { LivePortrait, type SourceInfo, type AnimatedFrame, type RetargetEdit, type ImageInput, type DrivingInput, type DrivingFrameInput, imageToUint8 } from './pipeline/live_portrait.js';
export { type AnimationOptions, type AnimationRegion, type DrivingOption, DEFAULT_ANIMATION_OPTIONS, resolveOptions } from './pipeline/options.js';
export { headposeBinsToDegree, headposeBinsToDegreeAsync, getRotationMatrix, transformKeypoint, refineKpInfo, type KpInfo } from './pipeline/camera.js';
export { drivingKeypoints, motionMultiplier, convexHullVolume } from './pipeline/motion.js';
export { kalmanSmooth } from './pipeline/kalman.js';
export { type MotionFrame, type MotionTemplate, saveTemplate, loadTemplate, TemplateError } from './pipeline/template.js';
export { WarpDecodePool, defaultWorkerCount, mapOrdered, type WorkerWeights } from './pipeline/workers.js';
export { detectFaces, cropSourceImage, cropSourceImageAll, cropDrivingVideo, type Face } from './pipeline/faces.js';
export { cropImage, type CropResult, type CropOptions } from './pipeline/crop.js';
export { calcEyeCloseRatio, calcLipCloseRatio } from './pipeline/ratios.js';
export { preparePasteBack, pasteBack } from './pipeline/paste_back.js';

// Weights
export { syntheticStateDict, syntheticTensor, ruleRange, fnv1a32, type ParamSpec } from './weights/synthetic.js';
export { ParamReader, WeightsError } from './weights/params.js';
export { loadWeights, loadModuleWeights, convertWeights, type LivePortraitWeights } from './weights/load.js';
export { downloadWeights, verifyWeights } from './weights/download.js';
export type { HostTensor, StateDict, DType } from './weights/types.js';

// Files
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors, SafetensorsError } from './io/safetensors.js';
export { readPth, readPthStateDict, PthError } from './io/pth.js';
export { readImage, writeImage, resizeImage, resizeSquare, imageToTensor, type RgbImage } from './io/image.js';
export { readVideoFrames, openVideoWriter, probeVideo, type VideoInfo } from './io/video.js';

// Files in, files out (the CLI's layer)
export { animate, type AnimateRequest, type AnimateResult } from './app/animate.js';
export { retarget, type RetargetRequest } from './app/retarget.js';
export { makeTemplate, type TemplateRequest } from './app/template.js';
