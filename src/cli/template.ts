/** `liveportrait template`: a driving video's motion, saved for reuse. */
import type { Argv } from 'yargs';
import { dirname, resolve } from 'node:path';
import { supervised } from './supervise.js';
import { type TemplateRequest, checkTemplate, makeTemplate } from '../node/app/template.js';
import { type CommonArgs, logger, modelOptions, progressStream, say, withModelOptions } from './common.js';

export const templateCommand = {
  command: 'template',
  describe: 'Extract the motion of a driving video into a reusable motion template',
  builder: (y: Argv) =>
    withModelOptions(
      y
        .usage(
          [
            'liveportrait template -d VIDEO -o FILE.lpmotion.safetensors [--crop-driving] [--max-frames N] [--driving-smooth VARIANCE]',
            '',
            'Save the per-frame motion (head pose, expression, eye and lip opening) of VIDEO. Pass the',
            'template to `liveportrait animate -d FILE` to animate without the driving video: faster,',
            'and the driving person\'s face is not kept. The reference\'s .pkl templates are read too.',
          ].join('\n'),
        )
        .option('driving', { alias: 'd', type: 'string', demandOption: true, describe: 'The driving video (or a single image); at most 100,000 frames of 100 MP (LIVEPORTRAIT_MAX_FRAMES, LIVEPORTRAIT_MAX_PIXELS).' })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'The template file, named *.lpmotion.safetensors.' })
        .option('crop-driving', { type: 'boolean', describe: 'Crop the video to the face first. [default: when the video is not square]' })
        .option('driving-smooth', { type: 'number', default: 0, describe: 'Save the motion smoothed with the reference\'s Kalman smoother (as animate --driving-smooth): VARIANCE is its observation variance, larger is smoother; 0 is off.' })
        .option('max-frames', { type: 'number', describe: 'At most N frames. [default: all]' })
        .option('overwrite', { type: 'boolean', default: false, describe: 'Replace the output if it exists (without it, the run stops before any work).' })
        .example('liveportrait template -d talk.mp4 -o talk.lpmotion.safetensors', 'then: liveportrait animate -s me.jpg -d talk.lpmotion.safetensors'),
    ),
  handler: async (a: CommonArgs & Record<string, unknown>) => {
    await supervised(
      () => ({ outputDirs: [dirname(resolve(a.output as string))], created: checkTemplate(request(a)).created }),
      () => work(a),
    );
  },
};

function request(a: CommonArgs & Record<string, unknown>): TemplateRequest {
  return {
    ...modelOptions(a),
    driving: a.driving as string,
    output: a.output as string,
    cropDriving: a['crop-driving'] as boolean | undefined,
    maxFrames: a['max-frames'] as number | undefined,
    drivingSmooth: a['driving-smooth'] as number,
    overwrite: a.overwrite as boolean,
    log: logger(a),
    progress: progressStream(a),
  };
}

async function work(a: CommonArgs & Record<string, unknown>): Promise<void> {
  const res = await makeTemplate(request(a));
  say(`liveportrait: ${res.frames} frames (${res.fps} fps) in ${res.seconds.toFixed(1)} s → ${res.output}`);
}
