/**
 * Animal mode and crops placed by the user.
 *
 * - The animal pipeline's driving keypoints against the reference
 *   (LivePortraitPipelineAnimal.execute, tools/reference/dump.py --modules
 *   pipeline_animal): test/fixtures/animal_x_d.json (committed, a few KB)
 *   holds x_s, the motion multiplier and x_d of its frames for two option
 *   sets, and names what it was made from: the weights' seed (M and S, made
 *   here by the rule: src/models/synthetic.ts), the frame count, and the
 *   inputs (source_rgb256, driving_rgb256 of a shared fixture directory, by
 *   sha256). The inputs are taken from LP_PARITY_DIR when they are those,
 *   else from the directory the golden names (../shared/parity/<name>, next
 *   to LP_PARITY_DIR or in ../shared): the test checks the golden on its
 *   own configuration whatever LP_PARITY_DIR is.
 * - With the full fixture (LP_ANIMAL_FIXTURE=dir with
 *   pipeline_animal.safetensors, or ../shared/parity/animal), the frames too:
 *   ±1 on ≥ 99.9% of values. Skipped with a printed reason when absent (also
 *   under CI=true: CI has only the shared seed1 files).
 * - --crop-box: the crop math (the same CropResult as a detected crop), its
 *   parsing, and the app's one-line errors (no face: names --crop-box).
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetwork, createStitching, syntheticModuleWeights, syntheticStitchingWeights } from '../src/models/registry.js';
import { Driving } from '../src/pipeline/driving.js';
import { LivePortrait, type SourceInfo } from '../src/pipeline/live_portrait.js';
import type { SourceKeypoints } from '../src/motion/transfer.js';
import { animalDrivingKeypoints, animalMotionMultiplier, animalRawKeypoints } from '../src/motion/animal.js';
import type { MotionFrame } from '../src/formats/template.js';
import { cropImageByBbox, cropImageByBox, parseCropBox, rectFromCropBox, scaleCropBox } from '../src/face/crop.js';
import { transformPoints } from '../src/image/affine.js';
import { readSafetensors } from '../src/node/files.js';
import { writeImage } from '../src/node/image_files.js';
import { animate } from '../src/node/app/animate.js';
import { loadLivePortrait } from '../src/node/load.js';
import { bound, hostToTensor, toleranceFor } from '../src/parity/index.js';
import type { HostTensor } from '../src/formats/host_tensor.js';
import { describeParity } from './helpers/parity.js';
import { MEDIA_DIR, PARITY_DIR, SHARED_DIR } from './helpers/paths.js';
import { flatImage, gradientImage } from './helpers/images.js';
import { maxDiff } from './helpers/tensors.js';
import { startFrameWorkers } from '../src/node/workers.js';

const GOLDEN = join(import.meta.dirname, 'fixtures', 'animal_x_d.json');
const ANIMAL_DIR = resolve(process.env.LP_ANIMAL_FIXTURE ?? join(SHARED_DIR, 'parity', 'animal'));
const ANIMAL_FILE = join(ANIMAL_DIR, 'pipeline_animal.safetensors');

interface InputDigest {
  shape: number[];
  sha256: string;
}

/** test/fixtures/animal_x_d.json: the reference's numbers and what they were made from. */
interface Golden {
  /** The synthetic weights' seed. */
  seed: number;
  /** Driving frames. */
  frames: number;
  /** The inputs: `file` of the fixture directory named `fixture`, identified by their digests. */
  inputs: { fixture: string; file: string; source_rgb256: InputDigest; driving_rgb256: InputDigest };
  options: Record<string, { stitching: boolean; multiplier: number }>;
  x_s: number[];
  motion_multiplier: Record<string, number>;
  x_d: Record<string, number[]>;
}

const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Golden;

/** The bound of the tolerance table (src/parity/tolerances.ts, pipeline_animal) for `tensor` of reference scale `scale`. */
const tol = (tensor: string, scale = 0): number => bound(toleranceFor('pipeline_animal', tensor)!, scale);

const digest = (t: HostTensor): InputDigest => ({ shape: t.shape, sha256: createHash('sha256').update(t.data).digest('hex') });

/**
 * The golden's inputs, wherever they are: LP_PARITY_DIR if it holds them,
 * else the directory the golden names, next to LP_PARITY_DIR or in
 * ../shared/parity. Undefined (with where it looked) when none does.
 */
function goldenInputs(): { dir: string; source: HostTensor; driving: HostTensor } | { looked: string[] } {
  const dirs = [...new Set([PARITY_DIR, join(dirname(PARITY_DIR), golden.inputs.fixture), join(SHARED_DIR, 'parity', golden.inputs.fixture)])];
  for (const dir of dirs) {
    const path = join(dir, golden.inputs.file);
    if (!existsSync(path)) continue;
    const t = readSafetensors(path).tensors;
    const [source, driving] = [t.get('source_rgb256'), t.get('driving_rgb256')];
    if (!source || !driving) continue;
    if (JSON.stringify([digest(source), digest(driving)]) === JSON.stringify([golden.inputs.source_rgb256, golden.inputs.driving_rgb256])) return { dir, source, driving };
  }
  return { looked: dirs };
}

/** M and S by the rule with the golden's seed in a LivePortrait (F, W, G are not needed for keypoints). */
function keypointModel(seed: number): LivePortrait {
  const none = { dispose() {}, apply() { throw new Error('not loaded in this test'); } } as never;
  const source = `synthetic seed ${seed}`;
  return new LivePortrait({
    F: none,
    M: createNetwork('motion_extractor', syntheticModuleWeights('motion_extractor', seed), source),
    W: none,
    G: none,
    S: createStitching(syntheticStitchingWeights(seed), source),
  });
}

const inputs = goldenInputs();
const missing = 'looked' in inputs ? `the golden's inputs (${golden.inputs.file} of ${golden.inputs.fixture}, by sha256) are in none of ${inputs.looked.join(', ')}` : undefined;
if (missing && process.env.CI !== 'true') console.warn(`skipping 'animal mode: x_d against the reference (committed golden)': ${missing}`);
(missing && process.env.CI !== 'true' ? describe.skip : describe)('animal mode: x_d against the reference (committed golden)', () => {
  let lp: LivePortrait;
  let src: SourceKeypoints;
  let motion: MotionFrame[];

  beforeAll(async () => {
    if ('looked' in inputs) throw new Error(`${missing}; CI=true requires them`);
    console.log(`animal golden: seed ${golden.seed}, ${golden.frames} frames, inputs from ${inputs.dir} (LP_PARITY_DIR ${PARITY_DIR})`);
    lp = keypointModel(golden.seed);
    const s = hostToTensor(inputs.source);
    const d = hostToTensor(inputs.driving);
    const frames = tf.unstack(d);
    src = await lp.prepareSourceKeypoints(s);
    motion = await lp.extractMotion(frames);
    tf.dispose([s, d, ...frames]);
  });
  afterAll(() => {
    if (src) tf.dispose([src.x_s, src.R_s, ...Object.values(src.x_s_info)]);
    void lp?.dispose();
  });

  it('names a configuration it matches: frame count from the inputs, x_d of every frame', () => {
    expect(motion.length).toBe(golden.frames);
    for (const x of Object.values(golden.x_d)) expect(x.length).toBe(golden.frames * 63);
  });

  it('x_s and the motion multiplier', async () => {
    expect(maxDiff(src.x_s.dataSync(), golden.x_s)).toBeLessThanOrEqual(tol('x_s'));
    const mm = await animalMotionMultiplier(src, motion[0]);
    for (const v of Object.values(golden.motion_multiplier)) expect(Math.abs(mm - v)).toBeLessThan(tol('motion_multiplier', Math.abs(v)));
  });

  it('x_d of every option set and frame within the table\'s tolerance (pure function and LivePortrait with animal: true)', async () => {
    for (const [name, o] of Object.entries(golden.options)) {
      const opts = { stitching: o.stitching, drivingMultiplier: o.multiplier };
      const mm = await animalMotionMultiplier(src, motion[0]);
      const pure = motion.map((f) => animalDrivingKeypoints(lp.S, src, f, motion[0], opts, mm));
      const viaLp: tf.Tensor3D[] = [];
      for (const f of motion) viaLp.push(await lp.drivingKeypoints(src, f, motion[0], { ...opts, animal: true }));
      const a = tf.concat(pure);
      const b = tf.concat(viaLp);
      const err = maxDiff(a.dataSync(), golden.x_d[name]);
      console.log(`animal x_d ${name}: max abs err ${err.toExponential(3)}`);
      expect(err).toBeLessThanOrEqual(tol(`${name}/x_d`));
      expect(maxDiff(b.dataSync(), a.dataSync())).toBe(0);
      tf.dispose([...pure, ...viaLp, a, b]);
    }
  });

  it('the formula: frame 0 gives x_s before stitching; t_z is zeroed; the human transfer differs', async () => {
    const x0 = animalDrivingKeypoints(lp.S, src, motion[0], motion[0], { stitching: false, drivingMultiplier: 1 }, await animalMotionMultiplier(src, motion[0]));
    expect(maxDiff(x0.dataSync(), src.x_s.dataSync())).toBeLessThan(1e-6);
    const withTz = { ...motion[1], t: Float32Array.of(motion[1].t[0], motion[1].t[1], 5) };
    const a = animalRawKeypoints(src, motion[1]);
    const b = animalRawKeypoints(src, withTz);
    expect(maxDiff(a.dataSync(), b.dataSync())).toBe(0);
    const human = await lp.drivingKeypoints(src, motion[1], motion[0], { stitching: true });
    const animal = await lp.drivingKeypoints(src, motion[1], motion[0], { stitching: true, animal: true });
    expect(maxDiff(human.dataSync(), animal.dataSync())).toBeGreaterThan(1e-3);
    tf.dispose([x0, a, b, human, animal]);
  });
});

// The full fixture (frames): local only.
const haveAnimal = existsSync(ANIMAL_FILE);
if (!haveAnimal) console.warn(`skipping 'animal mode: frames': no ${ANIMAL_FILE} (set LP_ANIMAL_FIXTURE to the dir of tools/reference/dump.py --modules pipeline_animal)`);
(haveAnimal ? describeParity : describe.skip)('animal mode: frames against the reference (full fixture)', () => {
  let lp: LivePortrait;
  let src: SourceInfo;
  let motion: MotionFrame[];
  let fx: ReturnType<typeof readSafetensors>;

  beforeAll(async () => {
    fx = readSafetensors(ANIMAL_FILE);
    // The weights the full fixture was dumped with: its own manifest and explicit tensors.
    lp = await loadLivePortrait(ANIMAL_DIR);
    const t = (k: string) => fx.tensors.get(k)!;
    const s = tf.tensor(Int32Array.from(t('source_rgb256').data as Uint8Array), t('source_rgb256').shape, 'int32');
    const d = tf.tensor(Int32Array.from(t('driving_rgb256').data as Uint8Array), t('driving_rgb256').shape, 'int32');
    const frames = tf.unstack(d);
    src = await lp.prepareSource(s);
    motion = await lp.extractMotion(frames);
    tf.dispose([s, d, ...frames]);
    // Frame workers on request (each holds its own W and G: memory); in this thread by default.
    const workers = Number(process.env.LP_ANIMAL_WORKERS ?? 0);
    if (workers > 0) await startFrameWorkers(lp, workers);
  });
  afterAll(async () => {
    if (src) lp.disposeSource(src);
    await lp?.dispose();
  });

  it('x_d and the frames (±1 on ≥ 99.9% of values) within the table\'s tolerances', async () => {
    const names = [...fx.tensors.keys()].filter((k) => k.endsWith('/x_d')).map((k) => k.slice(0, -4));
    expect(names.length).toBeGreaterThan(0);
    const frameTol = toleranceFor('pipeline_animal', `${names[0]}/frames`) as { u8Within: number; share: number };
    let total = 0;
    let within = 0;
    let worst = 0;
    for (const name of names) {
      const o = JSON.parse(fx.metadata[name]) as { stitching: boolean; multiplier: number };
      const opts = { animal: true, stitching: o.stitching, drivingMultiplier: o.multiplier };
      const refFrames = fx.tensors.get(`${name}/frames`)!;
      const ref = refFrames.data as Uint8Array;
      const refXd = fx.tensors.get(`${name}/x_d`)!;
      const frameLen = refFrames.shape.slice(1).reduce((a, b) => a * b, 1);
      let i = 0;
      for await (const f of lp.animate(src, Driving.frames(motion), opts)) {
        const xe = maxDiff(f.x_d, (refXd.data as Float32Array).subarray(i * 63, i * 63 + 63));
        expect(xe).toBeLessThanOrEqual(tol(`${name}/x_d`));
        let ok = 0;
        for (let k = 0; k < frameLen; k++) {
          const e = Math.abs(f.rgb[k] - ref[i * frameLen + k]);
          if (e <= frameTol.u8Within) ok++;
          worst = Math.max(worst, e);
        }
        console.log(`animal ${name} frame ${i}: x_d err ${xe.toExponential(3)}, ±${frameTol.u8Within} on ${((100 * ok) / frameLen).toFixed(4)}%`);
        total += frameLen;
        within += ok;
        i++;
      }
      expect(i).toBe(refFrames.shape[0]);
    }
    console.log(`animal frames: ±${frameTol.u8Within} on ${((100 * within) / total).toFixed(4)}% of ${total} values, max abs err ${worst}`);
    expect(within / total).toBeGreaterThanOrEqual(frameTol.share);
  }, 1_800_000);
});

// ------------------------------------------------------------ placed crops

describe('--crop-box: a crop the user places', () => {
  it('parses X,Y,SIZE[,ANGLE] and rejects anything else in one line', () => {
    expect(parseCropBox('10,20,300')).toEqual({ x: 10, y: 20, size: 300 });
    expect(parseCropBox(' 10.5, 20 ,300,-15')).toEqual({ x: 10.5, y: 20, size: 300, angle: -15 });
    for (const bad of ['10,20', '10,20,300,1,2', 'a,b,c', '10,,300', '10,20,0', '10,20,-5'])
      expect(() => parseCropBox(bad)).toThrow(/--crop-box/);
  });

  it('maps the box corners onto the 512 crop; the same crop as an equal detected bbox', () => {
    const img = gradientImage(400, 300);
    const box = { x: 50, y: 40, size: 200 };
    const c = cropImageByBox(img, box);
    const corners = transformPoints([[50, 40], [250, 240], [150, 140]], c.M_o2c);
    expect(corners[0][0]).toBeCloseTo(0, 9);
    expect(corners[0][1]).toBeCloseTo(0, 9);
    expect(corners[1][0]).toBeCloseTo(512, 9);
    expect(corners[2][1]).toBeCloseTo(256, 9);
    const back = transformPoints([[0, 0], [512, 512]], c.M_c2o);
    expect(back[0]).toEqual([expect.closeTo(50, 9), expect.closeTo(40, 9)]);
    expect(back[1]).toEqual([expect.closeTo(250, 9), expect.closeTo(240, 9)]);
    const d = cropImageByBbox(img, [50, 40, 250, 240]);
    expect(c.imgCrop.width).toBe(512);
    expect(c.imgCrop256.width).toBe(256);
    expect(Buffer.from(c.imgCrop.data).equals(Buffer.from(d.imgCrop.data))).toBe(true);
    expect(Buffer.from(c.imgCrop256.data).equals(Buffer.from(d.imgCrop256.data))).toBe(true);
    expect(c.lmkCrop).toEqual([]);
  });

  it('an angle turns the square about its centre (clockwise, like a detected crop of a tilted face)', () => {
    const img = gradientImage(400, 400);
    const c = cropImageByBox(img, { x: 100, y: 100, size: 200, angle: 30 });
    const [centre] = transformPoints([[200, 200]], c.M_o2c);
    expect(centre[0]).toBeCloseTo(256, 9);
    expect(centre[1]).toBeCloseTo(256, 9);
    // The crop's x axis is (cos 30°, sin 30°) in the image: down to the right.
    const [o, ex] = transformPoints([[0, 0], [512, 0]], c.M_c2o);
    const a = (Math.atan2(ex[1] - o[1], ex[0] - o[0]) * 180) / Math.PI;
    expect(a).toBeCloseTo(30, 9);
    expect(rectFromCropBox({ x: 0, y: 0, size: 10, angle: 90 }).ux[1]).toBeCloseTo(1, 12);
    expect(scaleCropBox({ x: 10, y: 20, size: 30, angle: 5 }, 0.5)).toEqual({ x: 5, y: 10, size: 15, angle: 5 });
  });

  it('rejects a box outside the image', () => {
    expect(() => cropImageByBox(gradientImage(100, 100), { x: 100, y: 0, size: 50 })).toThrow(/outside the 100x100/);
  });
});

describe('animate: --animal and --crop-box in the app (errors before any frame)', () => {
  let dir: string;
  let flat: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lp-animal-'));
    flat = join(dir, 'flat.png');
    await writeImage(flat, flatImage(64, 64));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = () => ({ weights: 'synthetic', workers: 0, outputDir: join(dir, 'out') });

  it('no face found: one line naming --crop-box (and the animal wording with --animal)', async () => {
    const d = join(MEDIA_DIR, 'd0.mp4');
    if (!existsSync(d)) return console.warn(`skipping: no ${d}`);
    await expect(animate({ ...base(), source: flat, driving: d, maxFrames: 1 })).rejects.toThrow(/no face found in the source .*flat\.png; place the crop yourself with --crop-box X,Y,SIZE\[,ANGLE\]/);
    await expect(animate({ ...base(), source: flat, driving: d, maxFrames: 1, animal: true })).rejects.toThrow(/animal mode has no animal face detector: place the crop with --crop-box/);
  });

  it('usage errors: a bad box, --crop-box with --no-crop, --animal with a driving image or a source video', async () => {
    await expect(animate({ ...base(), source: flat, driving: flat, cropBox: '1,2' })).rejects.toThrow(/--crop-box must be X,Y,SIZE/);
    await expect(animate({ ...base(), source: flat, driving: flat, cropBox: '1,2,30', crop: false })).rejects.toThrow(/--no-crop/);
    await expect(animate({ ...base(), source: flat, driving: flat, animal: true })).rejects.toThrow(/--animal is driven by a video or a motion template/);
    const v = join(MEDIA_DIR, 'd0.mp4');
    if (existsSync(v)) await expect(animate({ ...base(), source: v, driving: v, animal: true })).rejects.toThrow(/--animal animates a source image/);
    await expect(animate({ ...base(), source: flat, driving: join(MEDIA_DIR, 'd0.mp4'), cropBox: '500,0,30' })).rejects.toThrow(/lies outside the 64x64 source/);
  });
});
