/**
 * The whole per-frame pipeline of the benchmark (scripts/bench.ts
 * --pipeline, and the GPU kit): M on a driving frame, keypoint math and
 * stitching, W, G, through LivePortrait.animate over synthetic 256x256
 * frames, with frame workers where the backend uses them (none on webgpu).
 */
import { noiseRgb } from './profile.js';
import * as tf from '@tensorflow/tfjs';
import { backendMemory } from '../../src/backend.js';
import { Driving } from '../../src/pipeline/driving.js';
import { WarpDecodePool, type WorkerStats, startFrameWorkers } from '../../src/node/workers.js';

/** `pipeline` frames through LivePortrait.synthetic(`seed`); `workers` frame workers (default: the library's choice); progress on stderr unless `json`. */
export interface PipelineOptions {
  pipeline: number;
  seed: number;
  workers?: number;
  json: boolean;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

export interface MemoryPoint {
  frame: number;
  rssBytes: number;
  /** Main thread: live tensors and their bytes. */
  tensors: number;
  tensorBytes: number;
  /** Main thread's wasm heap (grows to its peak, never shrinks). */
  heapBytes?: number;
}

export interface PipelineResult {
  frames: number;
  workers: number;
  split: boolean;
  workerStartS: number;
  /** From the call that starts the workers to the first frame out (what a user waits for). */
  firstFrameS: number;
  /** Frames after the first, over the time after the first (start-up left out). */
  fps: number;
  secondsPerFrame: number;
  seconds: number;
  rssPeakBytes: number;
  /** RSS and the main thread's tensors after frame 1, 10 and the last. */
  memory: MemoryPoint[];
  /** Per worker: role, tensor bytes and wasm heap after start-up and after its last frame. */
  workerMemory: WorkerStats[];
}

/** The whole per-frame pipeline over `frames` synthetic driving frames, through LivePortrait.animate. */
export async function pipeline(args: PipelineOptions): Promise<PipelineResult> {
  const { LivePortrait } = await import('../../src/pipeline/live_portrait.js');
  const t0 = performance.now();
  const lp = LivePortrait.synthetic(args.seed);
  const workers = await startFrameWorkers(lp, args.workers);
  const workerStartS = (performance.now() - t0) / 1000;
  const pool = [...WarpDecodePool.open].at(-1);
  const source = await lp.prepareSource(noiseRgb(100));
  const driving = (async function* () {
    for (let i = 0; i < args.pipeline; i++) yield noiseRgb(200 + i);
  })();
  let n = 0;
  let tFirst = 0;
  const memory: MemoryPoint[] = [];
  for await (const frame of lp.animate(source, Driving.frames(driving), { relativeMotion: true, stitching: true })) {
    n++;
    const now = performance.now();
    if (n === 1) tFirst = now;
    if (n === 1 || n === 10 || n === args.pipeline) {
      const m = backendMemory();
      memory.push({ frame: n, rssBytes: process.memoryUsage().rss, tensors: tf.memory().numTensors, tensorBytes: m.tensorBytes, heapBytes: m.heapBytes });
    }
    if (!args.json) console.error(`  frame ${frame.index + 1}/${args.pipeline}: ${((now - t0) / 1000).toFixed(1)} s, RSS ${mib(process.memoryUsage().rss)}`);
  }
  const tEnd = performance.now();
  const workerMemory = pool ? [...pool.stats] : [];
  lp.disposeSource(source);
  await lp.dispose();
  const fps = n > 1 ? (n - 1) / ((tEnd - tFirst) / 1000) : 0;
  return {
    frames: n,
    workers,
    split: pool?.split ?? false,
    workerStartS,
    firstFrameS: (tFirst - t0) / 1000,
    fps,
    secondsPerFrame: fps > 0 ? 1 / fps : (tEnd - t0) / 1000,
    seconds: (tEnd - t0) / 1000,
    rssPeakBytes: process.resourceUsage().maxRSS * 1024,
    memory,
    workerMemory,
  };
}
