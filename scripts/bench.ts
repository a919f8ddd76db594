/**
 * Benchmark of the five networks on the active tfjs backend, with synthetic
 * weights (no download needed).
 *
 *   npm run bench -- [--backend wasm|cpu|tensorflow|webgpu|all] [--runs N] [--warmup N]
 *                    [--only F,M,W,G,S|none] [--batch N] [--seed N] [--layers]
 *                    [--profile [--dry-run]]
 *                    [--pipeline FRAMES] [--workers N] [--json]
 *
 * --pipeline FRAMES: the whole per-frame pipeline (M on the driving frame,
 * keypoint math and stitching, W, G) over FRAMES driving frames through
 * LivePortrait.animate, with --workers frame workers (default: the
 * library's choice, one per core on wasm and cpu): frames per second,
 * seconds per frame (after the first), worker start-up time, time to the
 * first frame, the process's peak RSS (worker threads included), RSS and the
 * main thread's tensors after frames 1, 10 and the last (a soak: --pipeline
 * 120), and each worker's tensor bytes and wasm heap. --layers: time per tfjs kernel type in one call
 * of each network. --backend all: every backend that starts here, in turn.
 * --profile: the GPU cost report of scripts/bench/profile.ts instead of
 * timings (kernels, webgpu dispatches, bytes created, host reads and
 * uploads per network, and with --pipeline for one frame); --dry-run counts
 * webgpu programs without dispatching them.
 *
 * Per network: ms per call (mean, min over --runs timed calls after the
 * warm-up), GMAC per call and GMAC/s, the peak of tf.memory().numBytes
 * during a call (tf.profile's peakBytes, from the first warm-up call) and
 * the process's peak RSS so far (networks run small to large, so the figure
 * after a network is dominated by the largest one yet).
 *
 * GMAC per call: W and G use the counts measured on the PyTorch reference
 * (171 and 446 GMAC at batch 1). F, M and S are counted here from the shapes
 * of the convolution and matrix-product kernels the port runs in its first
 * warm-up call (MACs = output size × reduction length); grid sampling,
 * normalisation and element-wise work are not counted.
 */
import * as tf from '@tensorflow/tfjs';
import { gpuAdapterInfo, initBackend } from '../src/backend.js';
import '../src/node/dawn.js';
import { type Bench, type NetId, ORDER, type Result, build, measure, sync } from './bench/networks.js';
import { type PipelineResult, pipeline } from './bench/pipeline.js';
import { parseOnly, walkFlags } from './bench/flags.js';
import { type CostReport, costOf, formatCost, frameCost } from './bench/profile.js';

interface Args {
  backend?: string;
  layers: boolean;
  pipeline: number;
  workers?: number;
  runs: number;
  warmup: number;
  only: NetId[];
  batch: number;
  seed: number;
  json: boolean;
  /** The GPU cost report: kernels, dispatches, bytes per network and per frame. */
  profile: boolean;
  /** With --profile on webgpu: count without dispatching (see scripts/bench/profile.ts). */
  dryRun: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 3, warmup: 1, only: ORDER, batch: 1, seed: 1, json: false, layers: false, pipeline: 0, profile: false, dryRun: false };
  walkFlags(argv, (flag, { value, int }) => {
    if (flag === '--backend') args.backend = value();
    else if (flag === '--runs') args.runs = int(1);
    else if (flag === '--warmup') args.warmup = int(1);
    else if (flag === '--batch') args.batch = int(1);
    else if (flag === '--seed') args.seed = int(0);
    else if (flag === '--json') args.json = true;
    else if (flag === '--layers') args.layers = true;
    else if (flag === '--profile') args.profile = true;
    else if (flag === '--dry-run') args.dryRun = true;
    else if (flag === '--pipeline') args.pipeline = int(1);
    else if (flag === '--workers') args.workers = int(0);
    else if (flag === '--only') args.only = parseOnly(value());
    else if (flag === '--help' || flag === '-h') {
      console.log('npm run bench -- [--backend NAME|all] [--runs N] [--warmup N] [--only F,M,W,G,S|none] [--batch N] [--seed N] [--layers] [--profile [--dry-run]] [--pipeline FRAMES] [--workers N] [--json]');
      process.exit(0);
    } else return false;
    return true;
  });
  return args;
}
/** 3 significant digits below 100, whole numbers above. */
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const ALL_BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

async function runOne(args: Args, backend: string | undefined) {
  const info = await initBackend({ backend, log: !args.json });
  // The GPU adapter (webgpu): vendor, architecture, description, isFallbackAdapter (software drivers such as lavapipe).
  const adapter = info.name === 'webgpu' ? gpuAdapterInfo() : undefined;
  if (adapter && !args.json)
    console.log(`adapter: ${adapter.description || adapter.device} (vendor ${adapter.vendor || '?'}, architecture ${adapter.architecture || '?'}, isFallbackAdapter ${adapter.isFallbackAdapter})`);
  if (args.profile) return { backend: info.name, provider: info.provider, adapter, profile: await profileRun(args, info) };
  const results: Result[] = [];
  const skipped: { id: NetId; reason: string }[] = [];
  for (const id of args.only) {
    let b: Bench | undefined;
    try {
      b = await build(id, args.seed, args.batch);
    } catch (e) {
      skipped.push({ id, reason: e instanceof Error ? e.message : String(e) });
      if (!args.json) console.error(`${id}: skipped (${skipped[skipped.length - 1].reason})`);
      continue;
    }
    try {
      const r = await measure(b, args);
      results.push(r);
      if (!args.json) {
        const g = r.gmac !== undefined ? `${fmt(r.gmac)} GMAC (${r.gmacSource === 'reference' ? `reference; counted ${fmt(r.gmacCounted)}` : 'counted'}), ${fmt(r.gmacPerS!)} GMAC/s` : 'GMAC n/a';
        console.log(
          `${id} ${r.name.padEnd(32)} ${r.msMean.toFixed(1).padStart(9)} ms/call (min ${r.msMin.toFixed(1)}, ${r.runs} runs)  ${g}  ` +
            `tf peak ${mib(r.tfPeakBytes)}, RSS peak ${mib(r.rssPeakBytes)}`,
        );
        for (const l of r.layers?.slice(0, 10) ?? []) console.log(`    ${l.kernel.padEnd(28)} ${l.ms.toFixed(1).padStart(9)} ms  ${String(l.calls).padStart(4)} calls`);
      }
    } finally {
      b.dispose();
    }
  }
  let pipe: PipelineResult | undefined;
  if (args.pipeline > 0) {
    pipe = await pipeline(args);
    if (!args.json) {
      console.log(
        `pipeline: ${pipe.frames} frames in ${pipe.seconds.toFixed(1)} s; after the first, ${pipe.fps.toFixed(4)} frames/s (${pipe.secondsPerFrame.toFixed(2)} s/frame); ` +
          `${pipe.workers} worker(s)${pipe.split ? ' in split pairs' : ''} (start-up ${pipe.workerStartS.toFixed(1)} s), first frame at ${pipe.firstFrameS.toFixed(1)} s, RSS peak ${mib(pipe.rssPeakBytes)}`,
      );
      for (const m of pipe.memory)
        console.log(`  after frame ${m.frame}: RSS ${mib(m.rssBytes)}; main thread ${m.tensors} tensors, ${mib(m.tensorBytes)}${m.heapBytes ? `, wasm heap ${mib(m.heapBytes)}` : ''}`);
      pipe.workerMemory.forEach((w, i) =>
        console.log(`  worker ${i + 1} (${w.role}): weights ${w.weights ? mib(w.weights.tensorBytes) : '?'}, wasm heap ${w.weights?.heapBytes ? mib(w.weights.heapBytes) : '?'} after start-up, ${w.latest?.heapBytes ? mib(w.latest.heapBytes) : '?'} after its last frame`),
      );
    }
  }
  return { backend: info.name, provider: info.provider, adapter, batch: args.batch, runs: args.runs, warmup: args.warmup, results, skipped, pipeline: pipe, tfNumTensorsAtEnd: tf.memory().numTensors };
}

/** --profile: the cost report per network (one call after a warm-up) and per frame. */
async function profileRun(args: Args, info: { name: string }): Promise<CostReport[]> {
  const reports: CostReport[] = [];
  const show = (r: CostReport) => {
    reports.push(r);
    if (!args.json) for (const l of formatCost(r)) console.log(l);
  };
  if (args.dryRun && info.name !== 'webgpu') throw new Error('--dry-run counts webgpu dispatches: use it with --backend webgpu');
  if (!args.json)
    console.log(
      `kernel path: Winograd ${process.env.LIVEPORTRAIT_WINOGRAD === '0' ? 'off' : 'by the cost model'} (LIVEPORTRAIT_WINOGRAD=0: a hardware GPU's choice), ` +
        `fused webgpu kernels ${process.env.LIVEPORTRAIT_GPU_KERNELS === '0' ? 'off' : 'on'}${args.dryRun ? '; dry run: counted, not dispatched' : ''}`,
    );
  for (const id of args.only) {
    const b = await build(id, args.seed, args.batch);
    try {
      await costOf('warm-up', () => sync(b.call()), 0, { dryRun: args.dryRun });
      show(await costOf(id, () => tf.dispose(b.call()), 8, { dryRun: args.dryRun }));
    } finally {
      b.dispose();
    }
  }
  if (args.pipeline > 0) show(await frameCost(args.seed, 8, { dryRun: args.dryRun }));
  return reports;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const reports = [];
  if (args.backend === 'all') {
    for (const b of ALL_BACKENDS) {
      try {
        await initBackend({ backend: b, log: false });
      } catch {
        if (!args.json) console.error(`backend ${b}: not available here, skipped`);
        continue;
      }
      reports.push(await runOne(args, b));
    }
  } else reports.push(await runOne(args, args.backend));
  if (args.json) console.log(JSON.stringify(args.backend === 'all' ? reports : reports[0], null, 2));
}

main().catch((e: unknown) => {
  console.error(process.env.LP_DEBUG && e instanceof Error ? e.stack : e instanceof Error ? e.message : e);
  process.exit(1);
});
