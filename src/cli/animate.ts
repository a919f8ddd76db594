/** `liveportrait animate`: thin over src/app/animate.ts. */
import type { Argv } from 'yargs';
import { type AnimateRequest, animate, checkAnimate } from '../node/app/animate.js';
import { supervised } from './supervise.js';
import { UsageError } from '../node/app/errors.js';
import type { AnimationRegion, DrivingOption } from '../motion/options.js';
import { type CommonArgs, logger, modelOptions, progressStream, say, withModelOptions } from './common.js';

const IN = 'Inputs and outputs:';
const ANIM = 'Animation:';
const CROP = 'Cropping and paste-back:';
const VIDEO = 'Video output:';

export const animateCommand = {
  command: 'animate',
  describe: 'Animate a portrait (image or video) with a driving video, image or motion template',
  builder: (y: Argv) =>
    withModelOptions(
      y
        .usage(
          [
            'liveportrait animate -s SOURCE -d DRIVING [-o OUTPUT_DIR] [options]',
            '',
            'Animate the face in SOURCE (a photo or a video) with the motion of DRIVING (a video, a single',
            'image, or a motion template: a .pkl of the reference implementation or a .lpmotion.safetensors',
            'from `liveportrait template`). The face is found and cropped, animated, and pasted back into',
            'the original picture. Written to OUTPUT_DIR:',
            '- <source>--<driving>.mp4: the animation, with the frame rate and audio of the driving video',
            '  (of the source video when the source is a video);',
            '- <source>--<driving>_concat.mp4: driving | source | result side by side;',
            '- <source>--<driving>.gif: with --gif.',
            'An image source with an image driving gives .jpg (or .png) files instead.',
            'A template driving keeps its kind in the names: <source>--<driving>_lpmotion.mp4 (.lpmotion.safetensors),',
            '<source>--<driving>_pkl.mp4 (.pkl). Existing files are not replaced without --overwrite.',
            'Outputs are written under temporary names and renamed when complete; the output folder is created',
            'and checked for writing before any work.',
          ].join('\n'),
        )
        .option('source', { alias: 's', type: 'string', demandOption: true, describe: 'Source portrait: an image (jpg, png, webp, bmp, tiff) or a video (mp4, mov, webm, ...); at most 100 MP a frame (LIVEPORTRAIT_MAX_PIXELS).', group: IN })
        .option('driving', { alias: 'd', type: 'string', describe: 'Driving input: a video, an image, or a motion template (.pkl, .lpmotion.safetensors); at most 100,000 frames (LIVEPORTRAIT_MAX_FRAMES). A .pkl runs no code: only numpy arrays are read. With --all-faces, give -d once per face: the faces left to right take them in order (faces past the last stay still).', group: IN })
        .option('face-drivings', { type: 'string', describe: 'With --all-faces: one driving per face by its position from the left (from 0), FACE:FILE,... e.g. 0:a.mp4,2:b.mp4; faces without one stay still. The output runs as long as the longest driving; a face whose driving has ended holds its last frame.', group: IN })
        .option('output-dir', { alias: 'o', type: 'string', default: 'animations', describe: 'Directory for the outputs (created if missing).', group: IN })
        .option('max-frames', { type: 'number', describe: 'Animate at most N frames (all by default).', group: IN })
        .option('animal', { type: 'boolean', default: false, describe: "The reference's animal mode: animate an animal photo (cat, dog, ...) with a human driving video or template. Uses the animal weights (--set animal) unless --set says otherwise; only --stitching and --multiplier apply. There is no animal face detector here: place the crop with --crop-box (or --no-crop for a face crop).", group: ANIM })
        .option('overwrite', { type: 'boolean', default: false, describe: 'Replace outputs that exist already (without it, a run that would replace a file stops before any work).', group: IN })
        .option('stitching', { type: 'boolean', default: true, describe: 'Stitch the animated face to the shoulders (--no-stitching: better for large head motion or animals; the crop is then written without paste-back, as the reference does).', group: ANIM })
        .option('relative', { type: 'boolean', default: true, describe: 'Motion relative to the first driving frame (--no-relative: absolute driving pose and expression).', group: ANIM })
        .option('region', { choices: ['all', 'exp', 'pose', 'lip', 'eyes'] as const, default: 'all' as const, describe: 'What the driving motion animates: everything, expression only, head pose only, lips only or eyes only.', group: ANIM })
        .option('multiplier', { type: 'number', default: 1, describe: 'Scale of the driving motion (x_d = x_s + (x_d - x_s) * m).', group: ANIM })
        .option('driving-option', { choices: ['expression-friendly', 'pose-friendly'] as const, default: 'expression-friendly' as const, describe: 'expression-friendly adapts the motion to the source face\'s size (source images with a driving video); pose-friendly keeps it as driven.', group: ANIM })
        .option('eye-retargeting', { type: 'boolean', default: false, describe: 'Transfer the eye opening of each driving frame (needs faces in the driving frames).', group: ANIM })
        .option('lip-retargeting', { type: 'boolean', default: false, describe: 'Transfer the lip opening of each driving frame.', group: ANIM })
        .option('normalize-lip', { type: 'boolean', default: false, describe: 'Close the source\'s lips before animating when they are open (relative motion, without eye/lip retargeting). --no-normalize-lip turns it off.', group: ANIM })
        .option('source-video-eye-retargeting', { type: 'boolean', default: false, describe: 'With a source video, hold every frame\'s eye opening at the first frame\'s.', group: ANIM })
        .option('driving-smooth', { type: 'number', default: 0, describe: 'Smooth the driving motion (head pose as angles, expression, translation, scale) with the reference\'s Kalman smoother: VARIANCE is its observation variance, larger is smoother; 1e-5 halves the jitter of the reference\'s laugh.pkl without lag; 0 is off.', group: ANIM })
        .option('reference-frame', { type: 'string', default: '0', describe: 'The driving frame relative motion is taken against: N (from 0), or auto: the most neutral frame (smallest expression and pose nearest the source\'s; printed).', group: ANIM })
        .option('smooth-variance', { type: 'number', default: 3e-7, describe: 'With a source video: Kalman smoothing of the motion (larger is smoother, less exact).', group: ANIM })
        .option('crop-driving', { type: 'boolean', describe: 'Crop the driving video to the face (one box averaged over the video). [default: when the driving video or image is not square]', group: CROP })
        .option('crop-box', { type: 'string', describe: 'Place the source crop yourself, for faces the detector misses (animals, drawings, statues, profiles, small faces): X,Y,SIZE[,ANGLE] in source pixels = top-left corner and side of the square crop, and the face\'s roll in degrees (clockwise). The square is the crop itself: like a detected crop, give it the whole head with a margin (about 2.3 times the face\'s width). Pasted back like a detected crop.', group: CROP })
        .option('crop', { type: 'boolean', default: true, describe: 'Find and crop the source face (--no-crop: the source is already a face crop; no paste-back).', group: CROP })
        .option('paste-back', { type: 'boolean', default: true, describe: 'Paste the animated face back into the full source picture (--no-paste-back: write the 512x512 face crop).', group: CROP })
        .option('face-index', { type: 'number', default: 0, describe: 'Which face to animate when there are several, largest first from 0.', group: CROP })
        .option('all-faces', { type: 'boolean', default: false, describe: 'Animate every face of a group photo with the same driving motion and paste them all back.', group: CROP })
        .option('scale', { type: 'number', default: 2.3, describe: 'Source crop size relative to the face (larger: smaller face in the crop).', group: CROP })
        .option('vx-ratio', { type: 'number', default: 0, describe: 'Move the source crop sideways (fraction of its size).', group: CROP })
        .option('vy-ratio', { type: 'number', default: -0.125, describe: 'Move the source crop up (negative) or down (fraction of its size).', group: CROP })
        .option('rot', { type: 'boolean', default: true, describe: 'Rotate the source crop upright (--no-rot: axis-aligned crop).', group: CROP })
        .option('source-max-dim', { type: 'number', default: 1280, describe: 'Shrink source images and videos so the longer side is at most this.', group: CROP })
        .option('crf', { type: 'number', default: 18, describe: 'H.264 quality (constant rate factor): 0 lossless … 51 worst.', group: VIDEO })
        .option('gif', { type: 'boolean', default: false, describe: 'Also write the animation as a GIF.', group: VIDEO })
        .option('concat', { type: 'boolean', default: true, describe: 'Write the side-by-side comparison video (--no-concat: skip it).', group: VIDEO })
        .option('audio-priority', { choices: ['driving', 'source'] as const, default: 'driving' as const, describe: 'Whose audio to copy when both the driving and the source video have some.', group: VIDEO })
        .example('liveportrait animate -s me.jpg -d talk.mp4', 'animate a photo; writes animations/me--talk.mp4 and animations/me--talk_concat.mp4')
        .check((a) => {
          if (a.driving === undefined && a['face-drivings'] === undefined) throw new UsageError('Missing required argument: driving (-d DRIVING, or --all-faces --face-drivings FACE:FILE,...) (see liveportrait --help)');
          return true;
        })
        .example('liveportrait animate -s me.jpg -d laugh.pkl --weights synthetic --max-frames 2', 'try the pipeline offline with synthetic weights')
        .example('liveportrait animate -s group.jpg -d talk.mp4 --all-faces --gif', 'animate every face of a group photo, also as a GIF')
        .example('liveportrait animate -s group.jpg --all-faces -d a.mp4 -d b.mp4', 'the left face by a.mp4, the next by b.mp4')
        .example('liveportrait animate -s me.jpg -d talk.mp4 --driving-smooth 1e-5 --reference-frame auto', 'steadier motion, taken against the most neutral driving frame')
        .example('liveportrait animate -s clip.mp4 -d talk.mp4 --region lip', 'video-to-video: move only the lips of the source video')
        .example('liveportrait animate -s me.jpg -d smile.jpg --no-relative', 'copy the expression of one picture onto another')
        .example('liveportrait animate --animal -s cat.jpg --crop-box 120,40,300 -d talk.mp4', 'animate a cat: the crop is the 300-pixel square at (120, 40)'),
    ),
  handler: async (a: CommonArgs & Record<string, unknown>) => {
    // The work runs in a child process; a signal here ends it at once (see supervise.ts).
    await supervised(
      () => {
        const { created, outputDir } = checkAnimate(animateRequest(a));
        return { outputDirs: [outputDir], created };
      },
      () => runAnimate(a),
    );
  },
};

async function runAnimate(a: CommonArgs & Record<string, unknown>): Promise<void> {
  const res = await animate(animateRequest(a));
  say(res.summary);
}

function animateRequest(a: CommonArgs & Record<string, unknown>): AnimateRequest {
  return { ...modelOptions(a), ...jobRequest(a), log: logger(a), progress: progressStream(a) };
}

/** What one animation is (inputs, output folder, animation options) from the parsed arguments, without the per-machine options. */
export function jobRequest(a: Record<string, unknown>): AnimateRequest {
  return {
    source: a.source as string,
    driving: a.driving as string | string[],
    faceDrivings: a['face-drivings'] as string | undefined,
    drivingSmooth: a['driving-smooth'] as number,
    referenceFrame: a['reference-frame'] as string,
    outputDir: a['output-dir'] as string,
    maxFrames: a['max-frames'] as number | undefined,
    overwrite: a.overwrite as boolean,
    stitching: a.stitching as boolean,
    relative: a.relative as boolean,
    region: a.region as AnimationRegion,
    multiplier: a.multiplier as number,
    drivingOption: a['driving-option'] as DrivingOption,
    eyeRetargeting: a['eye-retargeting'] as boolean,
    lipRetargeting: a['lip-retargeting'] as boolean,
    normalizeLip: a['normalize-lip'] as boolean,
    sourceVideoEyeRetargeting: a['source-video-eye-retargeting'] as boolean,
    smoothVariance: a['smooth-variance'] as number,
    cropDriving: a['crop-driving'] as boolean | undefined,
    crop: a.crop as boolean,
    cropBox: a['crop-box'] as string | undefined,
    animal: a.animal as boolean,
    pasteBack: a['paste-back'] as boolean,
    faceIndex: a['face-index'] as number,
    allFaces: a['all-faces'] as boolean,
    scale: a.scale as number,
    vxRatio: a['vx-ratio'] as number,
    vyRatio: a['vy-ratio'] as number,
    doRot: a.rot as boolean,
    sourceMaxDim: a['source-max-dim'] as number,
    crf: a.crf as number,
    gif: a.gif as boolean,
    concat: a.concat as boolean,
    audioPriority: a['audio-priority'] as 'driving' | 'source',
  };
}
