/**
 * Node adapters around the core: weights from disk and HuggingFace, files
 * (safetensors, .pth, templates, images), video through ffmpeg, frame
 * workers (worker_threads), the face models from the installed package, and
 * the file-to-file app the `liveportrait` command runs.
 *
 * @example
 * import { initBackend, Driving } from 'liveportrait-tfjs';
 * import { loadLivePortrait, startFrameWorkers, readImage, openVideo, writeVideo } from 'liveportrait-tfjs/node';
 * await initBackend();
 * const lp = await loadLivePortrait();          // $LIVEPORTRAIT_WEIGHTS ('synthetic' works offline), else ./weights
 * await startFrameWorkers(lp);                  // optional: frames in parallel
 * const portrait = await lp.preparePortrait(await readImage('photo.jpg'));
 * await writeVideo('animated.mp4', lp.animatePortrait(portrait, Driving.video(await openVideo('driving.mp4'))));
 */
import './dawn.js'; // navigator.gpu from Dawn's binding for the webgpu backend
import './face_models.js'; // registers the packaged face models as the core's face detector
export { loadLivePortrait, moduleWeights, weightsSpec, WEIGHTS_ENV, type LoadLivePortraitOptions, type ModuleWeights } from './load.js';
export { loadWeights, loadModuleWeights, convertWeights, type LoadOptions } from './weights.js';
export { downloadWeights, verifyWeights } from './download.js';
export { readSafetensors, writeSafetensors, readPth, readPthStateDict, loadTemplate, saveTemplate } from './files.js';
export { readImage, writeImage } from './image_files.js';
export { readVideoFrames, openVideo, openVideoWriter, writeVideo, probeVideo, type VideoFile, type VideoInfo, type VideoWriter } from './video.js';
export { startFrameWorkers, defaultWorkerCount } from './workers.js';
export { loadFaceDetector } from './face_models.js';
export { openFixtureDir, fixtureWeights, directoryWeights } from './parity.js';
export { animate, type AnimateRequest, type AnimateResult } from './app/animate.js';
export { retarget, type RetargetRequest } from './app/retarget.js';
export { makeTemplate, type TemplateRequest } from './app/template.js';
export { CliError, UsageError } from './app/errors.js';
export { resolveWeightsSource, describeWeightsSource, describeWeightsSourceInFull, findInHfCache, hubConfig, repoCacheDir, type WeightsSource, type HubConfig } from './hub.js';
export { fetchOfficialWeights, type FetchOptions, type FetchResult } from './hub_fetch.js';
