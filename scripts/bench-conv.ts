/**
 * Direct convolution kernels vs Winograd F(2x2, 3x3) on the active backend,
 * for 3x3 convolutions of the shapes the networks run: the measurement
 * behind the per-backend choice in src/layers/winograd.ts (useWinograd).
 *
 *   npx tsx scripts/bench-conv.ts [--backend wasm|webgpu|cpu] [--runs N] [--json]
 *
 * Per shape: ms per call (min over N timed calls after one warm-up) of the
 * direct path and of Winograd, and their max abs difference.
 */
import * as tf from '@tensorflow/tfjs';
import { gpuAdapterInfo, initBackend } from '../src/backend.js';
import { Conv2d, Conv3d } from '../src/layers/core.js';
import { ParamReader } from '../src/layers/params.js';
import { syntheticTensor } from '../src/models/synthetic.js';

interface Case {
  name: string;
  /** [n, d, h, w, c] for 3-D, [n, h, w, c] for 2-D. */
  input: number[];
  out: number;
}

const CASES: Case[] = [
  { name: "G middle 512->512 @64x64", input: [1, 64, 64, 512], out: 512 },
  { name: "G up 256->128 @128x128", input: [1, 128, 128, 256], out: 128 },
  { name: "G up 128->64 @256x256", input: [1, 256, 256, 128], out: 64 },
  { name: "SPADE 128->64 @256x256", input: [1, 256, 256, 128], out: 64 },
  { name: "F 3x3x3 32->32 @16x64x64", input: [1, 16, 64, 64, 32], out: 32 },
  { name: "W 3x3x3 128->64 @16x32x32", input: [1, 16, 32, 32, 128], out: 64 },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function build(c: Case, winograd: boolean): Conv2d | Conv3d {
  const saved = process.env.LIVEPORTRAIT_WINOGRAD;
  process.env.LIVEPORTRAIT_WINOGRAD = winograd ? '1' : '0';
  try {
    const inC = c.input[c.input.length - 1];
    const shape = c.input.length === 5 ? [c.out, inC, 3, 3, 3] : [c.out, inC, 3, 3];
    const sd = new Map([
      ['c.weight', syntheticTensor('w', shape, -0.05, 0.05, 1)],
      ['c.bias', syntheticTensor('b', [c.out], -0.1, 0.1, 1)],
    ]);
    const p = new ParamReader(sd, 'bench', 'synthetic');
    return c.input.length === 5 ? new Conv3d(p, 'c', { padding: 1 }) : new Conv2d(p, 'c', { padding: 1 });
  } finally {
    if (saved === undefined) delete process.env.LIVEPORTRAIT_WINOGRAD;
    else process.env.LIVEPORTRAIT_WINOGRAD = saved;
  }
}

async function time(conv: Conv2d | Conv3d, x: tf.Tensor, runs: number): Promise<{ ms: number; y: tf.Tensor }> {
  const call = () => (conv instanceof Conv3d ? conv.apply(x as tf.Tensor5D, 'relu') : conv.apply(x as tf.Tensor4D, 'relu'));
  const warm = call();
  await warm.data();
  warm.dispose();
  let best = Infinity;
  let y: tf.Tensor | undefined;
  for (let r = 0; r < runs; r++) {
    y?.dispose();
    const t0 = performance.now();
    y = call();
    await y.data();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, y: y! };
}

async function main() {
  const info = await initBackend({ backend: arg('--backend'), log: false });
  const runs = Number(arg('--runs') ?? 3);
  const json = process.argv.includes('--json');
  const only = arg('--only');
  const rows = [];
  for (const c of CASES.filter((c) => !only || c.name.includes(only))) {
    const x = syntheticTensor('x', c.input, -1, 1, 2);
    const xt = tf.tensor(x.data as Float32Array, c.input);
    const direct = build(c, false);
    const wino = build(c, true);
    const d = await time(direct, xt, runs);
    const w = await time(wino, xt, runs);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(d.y, w.y))));
    const maxDiff = (await diff.data())[0];
    tf.dispose([diff, d.y, w.y, xt]);
    direct.dispose();
    wino.dispose();
    const row = { case: c.name, directMs: Math.round(d.ms), winogradMs: Math.round(w.ms), speedup: +(d.ms / w.ms).toFixed(2), maxDiff };
    rows.push(row);
    if (!json) console.log(`${c.name}: direct ${row.directMs} ms, winograd ${row.winogradMs} ms (x${row.speedup}), max diff ${maxDiff.toExponential(2)}`);
  }
  const report = { backend: info.name, adapter: gpuAdapterInfo(), runs, rows };
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(`backend ${info.name}${info.device ? ` (${info.device})` : ''}, min of ${runs} runs`);
}

await main();
