/**
 * Motion templates from the command line: a driving video (or image) →
 * its per-frame motion, written in this library's safetensors template
 * format (`.lpmotion.safetensors`), readable by `liveportrait animate -d`.
 */
import { extname, resolve } from 'node:path';
import type { DrivingFrameInput } from '../../pipeline/live_portrait.js';
import { fpsValue } from '../../pipeline/driving.js';
import { cliMessage, openDriving, progressBars } from './open.js';
import { type InputKind, classifyInput, prepareOutputFile } from './inputs.js';
import { type ModelOptions, ensureBackend, loadModel } from './model.js';
import { CliError, UsageError } from './errors.js';
import type { ProgressStream } from './progress.js';
import { removeCreatedDirs, withAtomicOutput } from '../output.js';
import { saveTemplate } from '../files.js';
import { smoothMotion } from '../../motion/smooth.js';

export interface TemplateRequest extends ModelOptions {
  driving: string;
  output: string;
  cropDriving?: boolean;
  maxFrames?: number;
  /** Save the motion smoothed (animate's --driving-smooth: the Kalman observation variance; 0 off, the default). */
  drivingSmooth?: number;
  /** Replace an existing output file (default false: stop before any work). */
  overwrite?: boolean;
  log?: (line: string) => void;
  progress?: ProgressStream | false;
}

export interface TemplateResult {
  output: string;
  frames: number;
  fps: number;
  seconds: number;
}

export async function makeTemplate(req: TemplateRequest): Promise<TemplateResult> {
  const t0 = Date.now();
  const { kind, created } = checkTemplate(req);
  try {
    return await templateInto(req, kind, t0);
  } catch (e) {
    removeCreatedDirs(created);
    throw e;
  }
}

/** What makeTemplate() checks before any work: the driving input, the options, the output name and folder (created; returned). */
export function checkTemplate(req: TemplateRequest): { kind: InputKind; created: string[] } {
  const kind = classifyInput(req.driving, 'driving');
  if (kind === 'template') throw new CliError(`driving ${req.driving} is already a motion template; give a video or an image`);
  const ext = extname(req.output).toLowerCase();
  if (ext === '.pkl') throw new UsageError(`output ${req.output}: writing the reference's .pkl is not supported; name it .lpmotion.safetensors (animate -d reads both)`);
  if (ext !== '.safetensors') throw new UsageError(`output ${req.output}: name the template *.lpmotion.safetensors`);
  if (req.drivingSmooth !== undefined && !(Number.isFinite(req.drivingSmooth) && req.drivingSmooth >= 0)) throw new UsageError(`--driving-smooth must be 0 (off) or a positive variance, got ${req.drivingSmooth}`);
  if (req.maxFrames !== undefined && !(Number.isInteger(req.maxFrames) && req.maxFrames > 0)) throw new UsageError(`--max-frames must be a positive integer, got ${req.maxFrames}`);
  return { kind, created: prepareOutputFile(req.output, req.overwrite) };
}

async function templateInto(req: TemplateRequest, kind: InputKind, t0: number): Promise<TemplateResult> {
  await ensureBackend(req, req.log);
  const lp = await loadModel(req);
  const bars = progressBars(req.progress ?? false);
  try {
    const { driving } = await openDriving(req.driving, kind, { crop: req.cropDriving, log: req.log });
    // Every frame's ratios where there is a face (a faceless input is only a warning).
    const plan = await lp.planDriving(driving, {}, { needRatios: true, ratiosOptional: true, limit: req.maxFrames, log: req.log, onProgress: bars.onProgress });
    let done = 0;
    async function* counted() {
      for await (const it of plan.frames()) {
        yield it.frame as DrivingFrameInput;
        bars.onProgress({ phase: 'Extracting motion', done: ++done, total: Number.isFinite(plan.count) ? plan.count : undefined });
      }
    }
    const fps = fpsValue(plan.fps);
    const tpl = await lp.makeTemplate(counted(), fps);
    if (req.drivingSmooth) {
      tpl.frames = smoothMotion(tpl.frames, { observationVariance: req.drivingSmooth });
      req.log?.(`motion smoothed (Kalman, observation variance ${req.drivingSmooth})`);
    }
    await withAtomicOutput(req.output, (tmp) => saveTemplate(tmp, tpl));
    return { output: resolve(req.output), frames: tpl.frames.length, fps, seconds: (Date.now() - t0) / 1000 };
  } catch (e) {
    throw cliMessage(e, { eyeRetargeting: true, lipRetargeting: true });
  } finally {
    bars.finish();
  }
}
