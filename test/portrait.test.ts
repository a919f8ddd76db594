// The portrait-level API (what the CLI and the page run): a photo prepared
// (face found, cropped, F and M), a Driving made by an explicit constructor,
// frames pasted back at the photo's size, the motion hook, cancelling,
// progress, and loadLivePortrait's sources. W and G are replaced by a cheap
// stand-in (a flat image whose grey follows x_d) where frames are rendered:
// their parity is the network tests'; here the orchestration is checked.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Driving } from '../src/pipeline/driving.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';
import { InputError } from '../src/errors.js';
import { syntheticModuleWeights } from '../src/models/registry.js';
import { loadLivePortrait } from '../src/node/load.js';
import { loadTemplate } from '../src/node/files.js';
import { readImage } from '../src/node/image_files.js';
import { preparePasteBack } from '../src/face/paste_back.js';
import type { RgbImage } from '../src/image/image.js';
import { MEDIA_DIR, PARITY_DIR } from './helpers/paths.js';

let lp: LivePortrait;
let photo: RgbImage;
const laugh = join(MEDIA_DIR, 'laugh.pkl');

/** The synthetic model with W+G replaced by a flat image whose grey level follows x_d. */
function fast(base: LivePortrait): LivePortrait {
  const m = Object.create(base) as LivePortrait;
  m.warpDecode = (_f, _xs, x_d) => tf.tidy(() => tf.add(tf.zeros([1, 512, 512, 3]), tf.sigmoid(tf.mul(tf.mean(x_d), 10))) as tf.Tensor4D);
  return m;
}

beforeAll(async () => {
  lp = await loadLivePortrait('synthetic', { seed: 1 });
  photo = await readImage(join(MEDIA_DIR, 's0.jpg'));
});

afterAll(async () => {
  await lp?.dispose();
});

describe('animatePortrait', () => {
  it.skipIf(!existsSync(laugh))('a photo by a template: every frame the photo with the face pasted back, in order, with progress', async () => {
    const portrait = await lp.preparePortrait(photo);
    try {
      expect([portrait.image.width, portrait.image.height, portrait.faces.length, portrait.facesFound]).toEqual([600, 704, 1, 1]);
      const tpl = loadTemplate(laugh);
      const events: string[] = [];
      const frames = [];
      for await (const f of fast(lp).animatePortrait(portrait, Driving.template({ fps: tpl.fps, frames: tpl.frames.slice(0, 3) }), { onProgress: (p) => events.push(`${p.phase} ${p.done}/${p.total}`) })) frames.push(f);
      expect(frames.map((f) => f.index)).toEqual([0, 1, 2]);
      expect(events).toEqual(['Animating 0/3', 'Animating 1/3', 'Animating 2/3', 'Animating 3/3']);
      const mask = preparePasteBack(portrait.faces[0].crop.M_c2o, photo.width, photo.height);
      for (const f of frames) {
        expect([f.image.width, f.image.height, f.drivingIsVideo, f.total, f.crops.length]).toEqual([600, 704, true, 3, 1]);
        // Outside the mask the photo's pixels, exactly; under it the stand-in's flat grey.
        let outside = 0;
        let same = 0;
        let inside = 0;
        let changed = 0;
        for (let y = 0; y < photo.height; y++)
          for (let x = 0; x < photo.width; x++) {
            const mx = x - mask.x0;
            const my = y - mask.y0;
            const a = mx >= 0 && my >= 0 && mx < mask.width && my < mask.height ? mask.alpha[my * mask.width + mx] : 0;
            const k = (y * photo.width + x) * 3;
            const diff = Math.abs(f.image.data[k] - photo.data[k]);
            if (a === 0) (outside++, diff === 0 && same++);
            else if (a === 1) (inside++, diff > 0 && changed++);
          }
        expect(same).toBe(outside);
        expect(changed).toBeGreaterThan(0.5 * inside);
        const c = f.concat();
        expect([c.width, c.height]).toEqual([512 * 2, 512]); // source | result (a template has no driving picture)
      }
      // The stand-in's grey follows x_d: the frames differ.
      expect(frames[0].x_d[0]).not.toEqual(frames[2].x_d[0]);
    } finally {
      portrait.dispose();
    }
  });

  it('the motion hook sees each frame and replaces its driving keypoints; maxFrames bounds the run', async () => {
    const portrait = await lp.preparePortrait(photo);
    try {
      const seen: { index: number; xs: number; R: number; first: boolean }[] = [];
      const crops = [0, 1, 2].map((i) => ({ image: portrait.faces[0].crop.imgCrop256, lipRatio: 0.1 * i }));
      const frames = [];
      for await (const f of fast(lp).animatePortrait(portrait, Driving.frames(crops), {
        maxFrames: 2,
        onMotion: ({ index, source, driving, first, x_d }) => {
          seen.push({ index, xs: source.x_s.length, R: driving.R.length, first: first === driving });
          expect(x_d.length).toBe(63);
          return source.x_s.map((v) => v * 1.1);
        },
      }))
        frames.push(f);
      expect(frames.length).toBe(2);
      expect(seen).toEqual([
        { index: 0, xs: 63, R: 9, first: true },
        { index: 1, xs: 63, R: 9, first: false },
      ]);
      // What is rendered is the hook's x_d.
      const xs = await portrait.faces[0].info.x_s.data();
      for (const f of frames) for (let i = 0; i < 63; i++) expect(f.x_d[0][i]).toBeCloseTo(xs[i] * 1.1, 6);
      await expect(async () => {
        for await (const _ of fast(lp).animatePortrait(portrait, Driving.frames(crops), { onMotion: () => [1, 2, 3] })) break;
      }).rejects.toThrow(/onMotion must return 63 finite numbers/);
    } finally {
      portrait.dispose();
    }
  });

  it('an AbortSignal stops the run between frames with the signal reason; nothing leaks', async () => {
    const portrait = await lp.preparePortrait(photo);
    const before = tf.memory().numTensors;
    try {
      const stop = new AbortController();
      const crops = Array.from({ length: 5 }, () => ({ image: portrait.faces[0].crop.imgCrop256 }));
      let n = 0;
      const run = async () => {
        for await (const _ of fast(lp).animatePortrait(portrait, Driving.frames(crops), { signal: stop.signal })) if (++n === 2) stop.abort(new Error('stopped by the test'));
      };
      await expect(run()).rejects.toThrow('stopped by the test');
      expect(n).toBe(2);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      portrait.dispose();
    }
  });

  it('explicit driving constructors: a wrong value is one line naming what was expected', async () => {
    expect(() => Driving.video(42 as never)).toThrow(InputError);
    expect(() => Driving.video(42 as never)).toThrow(/Driving.video: expected a video .* got number 42/);
    expect(() => Driving.image('d.jpg' as never)).toThrow(/Driving.image: expected an RGB image .* got string d.jpg/);
    expect(() => Driving.frames(undefined as never)).toThrow(/Driving.frames: expected an iterable of face crops/);
    await expect(lp.preparePortrait(Promise.resolve(photo) as never)).rejects.toThrow(/expected an RGB image .* got a Promise \(missing await\?\)/);
  });
});

describe('loadLivePortrait', () => {
  it('reads LIVEPORTRAIT_WEIGHTS when no weights are given, and takes modules from elsewhere', async () => {
    const saved = process.env.LIVEPORTRAIT_WEIGHTS;
    process.env.LIVEPORTRAIT_WEIGHTS = 'synthetic';
    const sources: string[] = [];
    try {
      const m = await loadLivePortrait(undefined, { seed: 3, modules: { motion_extractor: syntheticModuleWeights('motion_extractor', 2) }, onProgress: ({ module, source }) => sources.push(`${module}: ${source}`) });
      expect(m.source).toBe('synthetic seed 3');
      expect(sources).toEqual(['appearance_feature_extractor: synthetic seed 3', 'motion_extractor: motion_extractor (state dict)', 'stitching_retargeting_module: synthetic seed 3']);
      // M is seed 2's: the same as a seed-2 model's M on the same input, not seed 3's.
      const two = LivePortrait.synthetic(2);
      const three = LivePortrait.synthetic(3);
      const x = tf.randomUniform([1, 256, 256, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const [a, b, c] = [m, two, three].map((n) => n.M.apply(x).exp);
      expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
      expect(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]).toBeGreaterThan(0);
      tf.dispose([x, a, b, c]);
      await Promise.all([m.dispose(), two.dispose(), three.dispose()]);
    } finally {
      if (saved === undefined) delete process.env.LIVEPORTRAIT_WEIGHTS;
      else process.env.LIVEPORTRAIT_WEIGHTS = saved;
    }
  });

  it('a missing folder or an unknown module is one line with the fix', async () => {
    await expect(loadLivePortrait('/nonexistent/weights')).rejects.toThrow(/weights directory \/nonexistent\/weights not found; get the weights with `liveportrait weights download --dir \/nonexistent\/weights`, or set LIVEPORTRAIT_WEIGHTS=synthetic/);
    await expect(loadLivePortrait('synthetic', { modules: { motion: 'x' } as never })).rejects.toThrow(/modules: unknown module 'motion'/);
  });

  it.skipIf(!existsSync(join(PARITY_DIR, 'weights_manifest.json')))('a parity fixture folder gives its exact weights (the manifest seed)', async () => {
    const m = await loadLivePortrait(PARITY_DIR);
    expect(m.source).toMatch(/^synthetic seed \d+ \(fixture manifest\) of /);
    expect(m.workerWeights).toHaveProperty('stateDicts');
    await m.dispose();
  });
});
