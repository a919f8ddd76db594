/**
 * Node adapters around the core: weights from disk and HuggingFace, files
 * (safetensors, .pth, templates, images), video through ffmpeg, frame
 * workers (worker_threads), the face models from the installed package, and
 * the file-to-file app the `liveportrait` command runs.
 *
 * @example
 * import { initBackend } from 'liveportrait-tfjs';
 * import { loadLivePortrait, startFrameWorkers, readImage, readVideoFrames } from 'liveportrait-tfjs/node';
 * await initBackend();
 * const lp = loadLivePortrait('weights');
 * await startFrameWorkers(lp);
 */
import './dawn.js'; // navigator.gpu from Dawn's binding for the webgpu backend
export { loadLivePortrait, loadWeights, loadModuleWeights, convertWeights, type LoadOptions, type LoadLivePortraitOptions } from './weights.js';
export { downloadWeights, verifyWeights } from './download.js';
export { readSafetensors, writeSafetensors, readPth, readPthStateDict, loadTemplate, saveTemplate } from './files.js';
export { readImage, writeImage } from './image_files.js';
export { readVideoFrames, openVideoWriter, probeVideo, type VideoInfo, type VideoWriter } from './video.js';
export { startFrameWorkers, defaultWorkerCount } from './workers.js';
export { loadFaceDetector } from './face_models.js';
export { openFixtureDir, fixtureWeights, directoryWeights } from './parity.js';
export { animate, type AnimateRequest, type AnimateResult } from './app/animate.js';
export { retarget, type RetargetRequest } from './app/retarget.js';
export { makeTemplate, type TemplateRequest } from './app/template.js';
export { CliError, UsageError } from './app/errors.js';
export { loadFixtureLivePortrait, fixtureStateDicts } from './parity.js';
