/** `liveportrait retarget`: edit one portrait. */
import type { Argv } from 'yargs';
import { dirname, resolve } from 'node:path';
import { supervised } from './supervise.js';
import { type RetargetRequest, checkRetarget, retarget } from '../node/app/retarget.js';
import { type CommonArgs, logger, modelOptions, say, withModelOptions } from './common.js';

const EDIT = 'Edits:';

export const retargetCommand = {
  command: 'retarget',
  describe: 'Edit one portrait: the reference app\'s 17 sliders (eye and lip opening, head pose, movement, lips, smile, wink, eyebrow, gaze)',
  builder: (y: Argv) =>
    withModelOptions(
      y
        .usage(
          [
            'liveportrait retarget -s IMAGE -o FILE [--eye-ratio R] [--lip-ratio R] [--pitch D] [--yaw D] [--roll D]',
            '',
            'Change how open the eyes and the mouth are and turn the head of the face in IMAGE, then paste',
            'the edited face back into the photo and write FILE (.jpg, .png or .bmp; written under a',
            'temporary name and renamed when complete). Edits left out keep the source as it is.',
          ].join('\n'),
        )
        .option('source', { alias: 's', type: 'string', demandOption: true, describe: 'The portrait to edit (jpg, png, webp, bmp, tiff); at most 100 MP (LIVEPORTRAIT_MAX_PIXELS).' })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'The edited image (.jpg, .png or .bmp).' })
        .option('overwrite', { type: 'boolean', default: false, describe: 'Replace the output if it exists (without it, the run stops before any work).' })
        .option('eye-ratio', { type: 'number', describe: 'Target eye-open ratio: 0 closed, about 0.3 normal, 0.8 wide open. [default: unchanged]', group: EDIT })
        .option('lip-ratio', { type: 'number', describe: 'Target lip-open ratio: 0 closed … 0.8 wide open. [default: unchanged]', group: EDIT })
        .option('pitch', { type: 'number', default: 0, describe: 'Degrees to nod the head (positive: down).', group: EDIT })
        .option('yaw', { type: 'number', default: 0, describe: 'Degrees to turn the head left or right.', group: EDIT })
        .option('roll', { type: 'number', default: 0, describe: 'Degrees to tilt the head sideways.', group: EDIT })
        .option('mov-x', { type: 'number', describe: 'x-axis movement (-0.19 … 0.19).', group: EDIT })
        .option('mov-y', { type: 'number', describe: 'y-axis movement (-0.19 … 0.19).', group: EDIT })
        .option('mov-z', { type: 'number', describe: 'z-axis movement, a zoom (0.9 … 1.2). [default: 1]', group: EDIT })
        .option('pouting', { type: 'number', describe: 'Pouting (-0.09 … 0.09).', group: EDIT })
        .option('pursing', { type: 'number', describe: 'Pursing (-20 … 15).', group: EDIT })
        .option('grin', { type: 'number', describe: 'Grin (0 … 15).', group: EDIT })
        .option('lip-close-open', { type: 'number', describe: 'Lip close <-> open (-90 … 120).', group: EDIT })
        .option('smile', { type: 'number', describe: 'Smile (-0.3 … 1.3).', group: EDIT })
        .option('wink', { type: 'number', describe: 'Wink (0 … 39).', group: EDIT })
        .option('eyebrow', { type: 'number', describe: 'Eyebrow (-30 … 30).', group: EDIT })
        .option('gaze-x', { type: 'number', describe: 'Eye gaze, horizontal (-30 … 30).', group: EDIT })
        .option('gaze-y', { type: 'number', describe: 'Eye gaze, vertical (-63 … 63).', group: EDIT })
        .option('scale', { type: 'number', describe: 'Source crop scale (1.8 … 3.2; the reference app uses 2.5). [default: 2.3]', group: EDIT })
        .option('stitching', { type: 'boolean', default: true, describe: 'Stitch the edited face to the shoulders.', group: EDIT })
        .option('paste-back', { type: 'boolean', default: true, describe: 'Paste the edited face back into the photo (--no-paste-back: write the 512x512 crop).', group: EDIT })
        .option('crop', { type: 'boolean', default: true, describe: 'Find and crop the face (--no-crop: the image is already a face crop).', group: EDIT })
        .option('face-index', { type: 'number', default: 0, describe: 'Which face, largest first from 0.', group: EDIT })
        .example('liveportrait retarget -s me.jpg --eye-ratio 0 -o blink.jpg', 'close the eyes')
        .example('liveportrait retarget -s me.jpg --lip-ratio 0.5 --yaw 15 -o talk.png', 'open the mouth and turn the head')
        .example('liveportrait retarget -s me.jpg --smile 1 --wink 20 -o wink.png', 'smile and wink'),
    ),
  handler: async (a: CommonArgs & Record<string, unknown>) => {
    await supervised(
      () => ({ outputDirs: [dirname(resolve(a.output as string))], created: checkRetarget(request(a)) }),
      () => work(a),
    );
  },
};

function request(a: CommonArgs & Record<string, unknown>): RetargetRequest {
  return {
    ...modelOptions(a),
    source: a.source as string,
    output: a.output as string,
    eyeRatio: a['eye-ratio'] as number | undefined,
    lipRatio: a['lip-ratio'] as number | undefined,
    pitch: a.pitch as number,
    yaw: a.yaw as number,
    roll: a.roll as number,
    stitching: a.stitching as boolean,
    pasteBack: a['paste-back'] as boolean,
    crop: a.crop as boolean,
    movX: a['mov-x'] as number | undefined,
    movY: a['mov-y'] as number | undefined,
    movZ: a['mov-z'] as number | undefined,
    pouting: a.pouting as number | undefined,
    pursing: a.pursing as number | undefined,
    grin: a.grin as number | undefined,
    lipCloseOpen: a['lip-close-open'] as number | undefined,
    smile: a.smile as number | undefined,
    wink: a.wink as number | undefined,
    eyebrow: a.eyebrow as number | undefined,
    gazeX: a['gaze-x'] as number | undefined,
    gazeY: a['gaze-y'] as number | undefined,
    scale: a.scale as number | undefined,
    faceIndex: a['face-index'] as number,
    overwrite: a.overwrite as boolean,
    log: logger(a),
  };
}

async function work(a: CommonArgs & Record<string, unknown>): Promise<void> {
  const res = await retarget(request(a));
  say(`liveportrait: ${res.width}x${res.height} image in ${res.seconds.toFixed(1)} s → ${res.output}`);
}
