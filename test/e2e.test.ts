// Photo / video in, video out, end to end. One real run through the bin
// script with synthetic weights (every network, one frame: the slow part);
// the other runs go through src/app in-process with the synthetic model
// whose W+G step is replaced by a cheap stand-in, so cropping, motion,
// paste-back, the writers, fps, audio and frame counts are all exercised
// without paying ~1 minute per frame on a wasm core.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { animate } from '../src/node/app/animate.js';
import { retarget } from '../src/node/app/retarget.js';
import { makeTemplate } from '../src/node/app/template.js';
import { cropRect as cropImageRegion, resizeImage, resizeToLimit } from '../src/image/image.js';
import { probeVideo, readVideo } from '../src/node/video.js';
import { hstackImages } from '../src/image/concat.js';
import { cropImage } from '../src/face/crop.js';
import { loadFaceDetector } from '../src/node/face_models.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';
import { preparePasteBack } from '../src/face/paste_back.js';
import { filesIn as files, media } from './helpers/paths.js';
import { cli } from './helpers/cli.js';
import { loadTemplate } from '../src/node/files.js';
import { readImage, writeImage } from '../src/node/image_files.js';
import { type RgbImage } from '../src/image/image.js';


let tmp: string;
let lp: LivePortrait;

/** The synthetic model with W+G replaced by a flat image whose grey level follows x_d. */
function fastModel(failAtCall?: number): LivePortrait {
  const m = Object.create(lp) as LivePortrait;
  let calls = 0;
  m.warpDecode = (_f, _xs, x_d) => {
    calls++;
    if (failAtCall !== undefined && calls >= failAtCall) throw new Error('stand-in failure in warpDecode');
    return tf.tidy(() => tf.add(tf.zeros([1, 512, 512, 3]), tf.sigmoid(tf.mul(tf.mean(x_d), 10))) as tf.Tensor4D);
  };
  return m;
}


/** Source pixels where no paste-back mask reaches are unchanged; some under the masks changed. */
async function expectPastedOnlyOnFaces(result: RgbImage, source: RgbImage, faces: number) {
  expect([result.width, result.height]).toEqual([source.width, source.height]);
  const found = await (await loadFaceDetector()).detect(source);
  expect(found.length).toBe(faces);
  const covered = new Uint8Array(source.width * source.height);
  for (const f of found) {
    const m = preparePasteBack(cropImage(source, f.landmarks).M_c2o, source.width, source.height);
    for (let j = 0; j < m.height; j++) for (let i = 0; i < m.width; i++) if (m.alpha[j * m.width + i] > 0) covered[(m.y0 + j) * source.width + m.x0 + i] = 1;
  }
  let far = 0;
  let farDiff = 0;
  let nearDiff = 0;
  for (let p = 0; p < covered.length; p++) {
    const same = result.data[3 * p] === source.data[3 * p] && result.data[3 * p + 1] === source.data[3 * p + 1] && result.data[3 * p + 2] === source.data[3 * p + 2];
    if (covered[p]) nearDiff += same ? 0 : 1;
    else {
      far++;
      farDiff += same ? 0 : 1;
    }
  }
  expect(far).toBeGreaterThan(0);
  expect(farDiff).toBe(0);
  expect(nearDiff).toBeGreaterThan(1000);
  return found;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lp-e2e-'));
  lp = LivePortrait.synthetic(1, { lipArray: new Float32Array(63) });
  // lossless sources, so paste-back can be checked pixel for pixel
  const s0 = await readImage(media('s0.jpg'));
  await writeImage(join(tmp, 's0.png'), s0);
  const s9 = await readImage(media('s9.jpg'));
  const h = 512;
  const a = resizeImage(s0, Math.round((s0.width * h) / s0.height / 2) * 2, h, 'area');
  const b = resizeImage(s9, Math.round((s9.width * h) / s9.height / 2) * 2, h, 'area');
  await writeImage(join(tmp, 'group.png'), hstackImages([a, b]));
});

afterAll(() => {
  lp?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('liveportrait animate, the real thing (synthetic weights, all networks)', () => {
  it('photo + driving video with audio → mp4 with its fps and audio, comparison video, gif, summary', async () => {
    const out = join(tmp, 'real');
    const r = cli(['animate', '-s', media('s0.jpg'), '-d', media('d11.mp4'), '-o', out, '--weights', 'synthetic', '--seed', '1', '--max-frames', '1', '--gif'], { timeoutMs: 590_000 });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(files(out)).toEqual(['s0--d11.gif', 's0--d11.mp4', 's0--d11_concat.mp4']);
    expect(r.stdout).toMatch(/^liveportrait: 1 frame in [\d.]+ s \([\d.]+ fps\) → .*s0--d11\.mp4, .*s0--d11_concat\.mp4, .*s0--d11\.gif\n$/);
    const driving = await probeVideo(media('d11.mp4'));
    const main = await probeVideo(join(out, 's0--d11.mp4'));
    expect(main.fps).toBe(driving.fps);
    expect(main.hasAudio).toBe(true);
    expect(main.frameCount).toBe(1);
    const src = resizeToLimit(await readImage(media('s0.jpg')), 1280, 2);
    expect([main.width, main.height]).toEqual([src.width, src.height]);
    const concat = await probeVideo(join(out, 's0--d11_concat.mp4'));
    expect([concat.width, concat.height, concat.frameCount, concat.hasAudio]).toEqual([1536, 512, 1, true]);
  });
});

describe('end to end with a stand-in for W+G', () => {
  it('photo + driving image → png, pasted back only over the face; the crop holds the face', async () => {
    const out = join(tmp, 'img');
    const res = await animate({ model: fastModel(), source: join(tmp, 's0.png'), driving: media('d12.jpg'), outputDir: out });
    expect(files(out)).toEqual(['s0--d12.png', 's0--d12_concat.png']);
    expect(res.frames).toBe(1);
    const source = resizeToLimit(await readImage(join(tmp, 's0.png')), 1280, 2);
    await expectPastedOnlyOnFaces(await readImage(res.output), source, 1);
    // comparison: driving | source crop | result, 512 each; the source crop shows the whole face
    const concat = await readImage(res.concat!);
    expect([concat.width, concat.height]).toEqual([1536, 512]);
    const panel = cropImageRegion(concat, 512, 0, 512, 512);
    const [face] = await (await loadFaceDetector()).detect(panel);
    expect(face).toBeDefined();
    const [x0, y0, x1, y1] = face.box;
    expect(x0).toBeGreaterThan(0);
    expect(y0).toBeGreaterThan(0);
    expect(x1).toBeLessThan(512);
    expect(y1).toBeLessThan(512);
    expect(x1 - x0).toBeGreaterThan(120); // the face fills a good part of the crop (scale 2.3)
  });

  it('group photo with --all-faces: every face animated and stitched back', async () => {
    const out = join(tmp, 'group');
    const res = await animate({ model: fastModel(), source: join(tmp, 'group.png'), driving: media('d12.jpg'), outputDir: out, allFaces: true });
    expect(res.faces).toBe(2);
    const source = resizeToLimit(await readImage(join(tmp, 'group.png')), 1280, 2);
    const result = await readImage(res.output);
    const faces = await expectPastedOnlyOnFaces(result, source, 2);
    // each face changed, not just one
    for (const f of faces) {
      const [x0, y0, x1, y1] = f.box.map(Math.round);
      let diff = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (result.data[3 * (y * source.width + x)] !== source.data[3 * (y * source.width + x)]) diff++;
      expect(diff).toBeGreaterThan(0.5 * (x1 - x0) * (y1 - y0));
    }
  });

  it('photo + the reference\'s .pkl template: frames = min(template, max-frames), the template\'s fps, no audio', async () => {
    const out = join(tmp, 'tpl');
    const tpl = loadTemplate(media('laugh.pkl'));
    const res = await animate({ model: fastModel(), source: media('s0.jpg'), driving: media('laugh.pkl'), outputDir: out, maxFrames: 3 });
    const n = Math.min(tpl.frames.length, 3);
    expect(res.frames).toBe(n);
    const v = await probeVideo(res.output);
    expect([v.frameCount, v.fps, v.hasAudio]).toEqual([n, tpl.fps, false]);
    const c = await probeVideo(res.concat!);
    expect([c.width, c.height]).toEqual([1024, 512]); // source | result: a template has no pictures
  });

  it('source video + driving video: the source\'s fps and audio, frames = min(source, driving, max-frames)', async () => {
    const out = join(tmp, 'vid');
    const res = await animate({ model: fastModel(), source: media('s13.mp4'), driving: media('d0.mp4'), outputDir: out, maxFrames: 2 });
    const s = await probeVideo(media('s13.mp4'));
    const v = await probeVideo(res.output);
    expect([v.frameCount, v.fps, v.hasAudio, v.width, v.height]).toEqual([2, s.fps, true, s.width, s.height]);
    expect(res.audioFrom).toBe(media('s13.mp4')); // d0 has no audio
    expect(files(out)).toEqual(['s13--d0.mp4', 's13--d0_concat.mp4']);
    // far from the face, the frames are the source's (up to video coding)
    const [first] = await readVideo(res.output, { maxFrames: 1 });
    const [orig] = await readVideo(media('s13.mp4'), { maxFrames: 1 });
    let err = 0;
    for (let y = 1000; y < 1080; y++) for (let x = 0; x < 720; x++) err = Math.max(err, Math.abs(first.data[3 * (y * 720 + x)] - orig.data[3 * (y * 720 + x)]));
    expect(err).toBeLessThan(40);
  });

  it('source video + a driving image, and + a motion template: one frame per source frame, streamed', async () => {
    const out = join(tmp, 'vid2');
    const img = await animate({ model: fastModel(), source: media('s13.mp4'), driving: media('d12.jpg'), outputDir: out, maxFrames: 3 });
    expect((await probeVideo(img.output)).frameCount).toBe(3);
    expect((await probeVideo(img.concat!)).frameCount).toBe(3);
    const tpl = await animate({ model: fastModel(), source: media('s13.mp4'), driving: media('laugh.pkl'), outputDir: out, maxFrames: 2, concat: false });
    expect((await probeVideo(tpl.output)).frameCount).toBe(2);
  });

  it('a driving video that is not square is cropped to its face (one averaged box)', async () => {
    const out = join(tmp, 'dcrop');
    const res = await animate({ model: fastModel(), source: media('s0.jpg'), driving: media('s13.mp4'), outputDir: out, maxFrames: 2 });
    const v = await probeVideo(res.output);
    expect([v.frameCount, v.fps, v.hasAudio]).toEqual([2, 25, true]); // s13 has audio
    const [c] = await readVideo(res.concat!, { maxFrames: 1 });
    const [face] = await (await loadFaceDetector()).detect(cropImageRegion(c, 0, 0, 512, 512));
    expect(face).toBeDefined(); // the driving panel is a face crop, not the whole 720x1080 frame squashed
    expect(face.box[2] - face.box[0]).toBeGreaterThan(120);
  });

  it('--no-crop takes the source as a face crop; eye and lip retargeting read the driving faces', async () => {
    const out = join(tmp, 'nocrop');
    const a = await animate({ model: fastModel(), source: join(tmp, 's0.png'), driving: media('d12.jpg'), outputDir: out, crop: false, concat: false });
    const img = await readImage(a.output);
    expect([img.width, img.height]).toEqual([512, 512]); // the network output, no paste-back
    const b = await animate({ model: fastModel(), source: media('s0.jpg'), driving: media('d0.mp4'), outputDir: out, maxFrames: 1, eyeRetargeting: true, lipRetargeting: true, concat: false });
    expect(b.frames).toBe(1);
    expect(files(out)).toEqual(['s0--d0.mp4', 's0--d12.png']);
  });

  it('a failure half-way leaves no output file behind', async () => {
    const out = join(tmp, 'fail');
    await expect(animate({ model: fastModel(2), source: media('s0.jpg'), driving: media('d0.mp4'), outputDir: out, maxFrames: 3 })).rejects.toThrow(/stand-in failure/);
    expect(files(out)).toEqual([]);
  });

  it('template command, then animate with our template', async () => {
    const file = join(tmp, 'd0.lpmotion.safetensors');
    const t = await makeTemplate({ model: fastModel(), driving: media('d0.mp4'), output: file, maxFrames: 2 });
    expect(t.frames).toBe(2);
    const tpl = loadTemplate(file);
    expect(tpl.frames).toHaveLength(2);
    expect(tpl.fps).toBe(25);
    expect(tpl.frames[0].eyeRatio).toHaveLength(2);
    const res = await animate({ model: fastModel(), source: media('s0.jpg'), driving: file, outputDir: join(tmp, 'ours'), concat: false });
    expect(files(join(tmp, 'ours'))).toEqual(['s0--d0_lpmotion.mp4']); // not the name d0.mp4 itself would give
    expect((await probeVideo(res.output)).frameCount).toBe(2);
  });

  it('retarget edits one photo and pastes it back', async () => {
    const file = join(tmp, 'edited.png');
    const res = await retarget({ model: fastModel(), source: join(tmp, 's0.png'), output: file, eyeRatio: 0.1, lipRatio: 0.4, yaw: 10 });
    expect(res.output).toBe(file);
    const source = resizeToLimit(await readImage(join(tmp, 's0.png')), 1280, 2);
    await expectPastedOnlyOnFaces(await readImage(file), source, 1);
  });
});
