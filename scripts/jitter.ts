/**
 * Jitter and lag of driving motion, raw against smoothed (drivingSmooth):
 *
 *   npx tsx scripts/jitter.ts [--weights DIR|synthetic] [--variances 1e-5,1e-4,...] [--cache DIR] INPUT...
 *
 * INPUT: a motion template (.pkl, .lpmotion.safetensors) or a driving video
 * (its motion extracted with the motion extractor of --weights; cached as a
 * template under --cache). For each input and variance it prints:
 *
 * - jitter: the mean absolute second difference over frames,
 *   |m[t+1] − 2 m[t] + m[t−1]|, of the expression (63 values) and of the
 *   pose angles (pitch, yaw, roll in degrees), raw and smoothed;
 * - lag: the shift (frames) of the peak cross-correlation between the raw
 *   and the smoothed motion (angles and expression, each coordinate
 *   centred and scaled to unit variance), positive when the smoothed lags,
 *   for the file smoother (two-pass Kalman) and the live filter (its
 *   forward pass).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { initBackend } from '../src/backend.js';
import { Driving } from '../src/pipeline/driving.js';
import type { MotionFrame } from '../src/formats/template.js';
import { CausalMotionSmoother, rotationToDegrees, smoothMotion } from '../src/motion/smooth.js';
import { loadLivePortrait, loadTemplate, openVideo, saveTemplate } from '../src/node/index.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const weights = opt('--weights', 'synthetic');
const variances = opt('--variances', '3e-7,1e-5,3e-5,1e-4,3e-4,1e-3').split(',').map(Number);
const cache = opt('--cache', '/tmp/liveportrait-jitter');
if (args.length === 0) {
  console.error('usage: npx tsx scripts/jitter.ts [--weights DIR|synthetic] [--variances V,...] [--cache DIR] INPUT...');
  process.exit(2);
}

type Series = number[][]; // [frame][coordinate]
const angles = (fs: MotionFrame[]): Series => fs.map((f) => rotationToDegrees(f.R));
const exps = (fs: MotionFrame[]): Series => fs.map((f) => Array.from(f.exp));

function jitter(s: Series): number {
  let sum = 0;
  let n = 0;
  for (let t = 1; t + 1 < s.length; t++)
    for (let k = 0; k < s[t].length; k++) {
      sum += Math.abs(s[t + 1][k] - 2 * s[t][k] + s[t - 1][k]);
      n++;
    }
  return n ? sum / n : 0;
}

/** Frames by which b lags a at the peak of their cross-correlation (each coordinate normalised). */
function lag(a: Series, b: Series, maxLag = 12): number {
  const T = a.length;
  const d = a[0].length;
  const norm = (s: Series, k: number) => {
    const m = s.reduce((x, r) => x + r[k], 0) / T;
    const sd = Math.sqrt(s.reduce((x, r) => x + (r[k] - m) ** 2, 0) / T) || 1;
    return s.map((r) => (r[k] - m) / sd);
  };
  const A = Array.from({ length: d }, (_, k) => norm(a, k));
  const B = Array.from({ length: d }, (_, k) => norm(b, k));
  let best = 0;
  let bestC = -Infinity;
  for (let L = -maxLag; L <= maxLag; L++) {
    let c = 0;
    let n = 0;
    for (let k = 0; k < d; k++)
      for (let t = Math.max(0, -L); t < T && t + L < T; t++) {
        c += A[k][t] * B[k][t + L];
        n++;
      }
    c /= n;
    if (c > bestC + 1e-12) [best, bestC] = [L, c];
  }
  return best;
}

const both = (fs: MotionFrame[]): Series => fs.map((f, i) => [...angles([f])[0], ...exps(fs)[i]]);

async function motionOf(input: string): Promise<{ frames: MotionFrame[]; what: string }> {
  const ext = extname(input).toLowerCase();
  if (ext === '.pkl' || ext === '.safetensors') return { frames: loadTemplate(input).frames, what: 'template' };
  mkdirSync(cache, { recursive: true });
  const cached = join(cache, `${basename(input)}.${weights === 'synthetic' ? 'synthetic' : basename(weights)}.lpmotion.safetensors`);
  if (existsSync(cached)) return { frames: loadTemplate(cached).frames, what: `M (${weights} weights), cached` };
  await initBackend();
  const lp = await loadLivePortrait(weights);
  try {
    const plan = await lp.planDriving(Driving.video(await openVideo(input)), {}, {});
    async function* crops() {
      for await (const it of plan.frames()) yield it.frame as never;
    }
    const tpl = await lp.makeTemplate(crops(), 25);
    saveTemplate(cached, tpl);
    return { frames: tpl.frames, what: `M (${weights} weights)` };
  } finally {
    await lp.dispose();
  }
}

const f3 = (x: number) => (x === 0 ? '0' : x < 1e-3 ? x.toExponential(2) : x.toPrecision(3));
console.log('| input | motion from | frames | variance | exp jitter raw → smoothed (ratio) | pose jitter (°) raw → smoothed (ratio) | lag, file smoother | live filter: exp ratio, pose ratio, lag |');
console.log('|---|---|---|---|---|---|---|---|');
for (const input of args) {
  const { frames, what } = await motionOf(input);
  const je = jitter(exps(frames));
  const jp = jitter(angles(frames));
  for (const v of variances) {
    const sm = smoothMotion(frames, { observationVariance: v });
    const c = new CausalMotionSmoother({ observationVariance: v });
    const live = frames.map((f) => c.push(f));
    const se = jitter(exps(sm));
    const sp = jitter(angles(sm));
    const le = jitter(exps(live));
    const lpj = jitter(angles(live));
    console.log(
      `| ${basename(input)} | ${what} | ${frames.length} | ${v} | ${f3(je)} → ${f3(se)} (${(se / je).toFixed(2)}) | ${f3(jp)} → ${f3(sp)} (${(sp / jp).toFixed(2)}) | ${lag(both(frames), both(sm))} | ${(le / je).toFixed(2)}, ${(lpj / jp).toFixed(2)}, ${lag(both(frames), both(live))} |`,
    );
  }
}
