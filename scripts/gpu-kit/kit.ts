/**
 * The GPU kit's benchmark (scripts/gpu-kit/build.sh bundles it; the kit's
 * run.sh runs it): on one backend (webgpu, or cpu for a dry run), ms per
 * call of F, M, W, G and S after warm-up and the whole frame's ms and fps
 * after the first frame (scripts/bench/: the same code as `npm run bench`,
 * synthetic weights, batch 1, no frame workers), then the PyTorch
 * reference's W + G on the same machine (tools/reference/bench_wg.py, cuda
 * when torch sees a GPU), and their ratio. Progress goes to stderr; stdout
 * gets one JSON line at the end, whatever failed (errors are in it), also
 * when --timeout runs out.
 *
 *   node kit.mjs [--backend webgpu|cpu] [--frames N] [--runs N] [--warmup N] [--only F,M,W,G,S|none]
 *                [--seed N] [--timeout SECONDS] [--reference DIR] [--bench-wg FILE] [--python PY]
 *                [--reference-frames N] [--reference-warmup N] [--reference-device auto|cuda|cpu] [--no-reference]
 */
import './stdout.js';
import { cpus, totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { gpuAdapterInfo, initBackend, type GpuAdapterInfo } from '../../src/backend.js';
import '../../src/node/dawn.js';
import { type NetId, ORDER, type Result, build, measure } from '../bench/networks.js';
import { type PipelineResult, pipeline } from '../bench/pipeline.js';
import { parseOnly, walkFlags } from '../bench/flags.js';
import { type ReferenceReport, referenceWG } from './reference.js';

/** Filled in by build.sh (esbuild --define); absent when run from the checkout with tsx. */
declare const KIT_INFO: { commit: string; builtAt: string; versions: Record<string, string> } | undefined;
const kitInfo = typeof KIT_INFO !== 'undefined' ? KIT_INFO : undefined;

export const USAGE =
  'run.sh [--backend webgpu|cpu] [--frames N] [--runs N] [--warmup N] [--only F,M,W,G,S|none] [--seed N] [--timeout SECONDS] ' +
  '[--reference-frames N] [--reference-warmup N] [--reference-device auto|cuda|cpu] [--no-reference] [--python PY]';

interface Args {
  backend: 'webgpu' | 'cpu';
  frames: number;
  runs: number;
  warmup: number;
  only: NetId[];
  seed: number;
  timeoutS: number;
  reference?: string;
  benchWg?: string;
  python?: string;
  referenceFrames?: number;
  referenceWarmup?: number;
  referenceDevice: 'auto' | 'cuda' | 'cpu';
  noReference: boolean;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { backend: 'webgpu', frames: 10, runs: 3, warmup: 2, only: ORDER, seed: 1, timeoutS: 480, referenceDevice: 'auto', noReference: false };
  const oneOf = <T extends string>(flag: string, v: string, allowed: readonly T[], why: string): T => {
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`${flag} ${v}: ${why}`);
    return v as T;
  };
  walkFlags(
    argv,
    (flag, { value, int }) => {
      if (flag === '--backend') a.backend = oneOf(flag, value(), ['webgpu', 'cpu'] as const, 'the kit has webgpu and cpu only');
      else if (flag === '--frames') a.frames = int(0);
      else if (flag === '--runs') a.runs = int(1);
      else if (flag === '--warmup') a.warmup = int(1);
      else if (flag === '--seed') a.seed = int(0);
      else if (flag === '--timeout') a.timeoutS = int(10);
      else if (flag === '--reference') a.reference = value();
      else if (flag === '--bench-wg') a.benchWg = value();
      else if (flag === '--python') a.python = value();
      else if (flag === '--reference-frames') a.referenceFrames = int(1);
      else if (flag === '--reference-warmup') a.referenceWarmup = int(0);
      else if (flag === '--reference-device') a.referenceDevice = oneOf(flag, value(), ['auto', 'cuda', 'cpu'] as const, 'use auto, cuda or cpu');
      else if (flag === '--no-reference') a.noReference = true;
      else if (flag === '--only') a.only = parseOnly(value());
      else return false;
      return true;
    },
    USAGE,
  );
  return a;
}

/** The webgpu backend's module registers itself only where navigator.gpu exists when it is evaluated: it is evaluated under a stand-in, before Dawn's navigator.gpu is installed by initBackend. */
async function registerWebGpuBackend(): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu || tf.findBackendFactory('webgpu')) return;
  const hadNavigator = g.navigator !== undefined;
  if (hadNavigator) Object.defineProperty(g.navigator, 'gpu', { value: {}, configurable: true, writable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu: {} }, configurable: true, writable: true });
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } finally {
    if (hadNavigator) delete g.navigator!.gpu;
    else delete g.navigator;
  }
}

const round = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d)));
/** 4 significant digits (GMAC counts span 1e-4 to 1e3). */
const sig = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? null : Number(x.toPrecision(4)));
const errorLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

interface Report {
  kit: 'liveportrait-gpu-kit';
  ok: boolean;
  error: string | null;
  errors: string[];
  backend: string | null;
  provider: string | null;
  adapter: (GpuAdapterInfo & { software: boolean }) | null;
  versions: Record<string, string>;
  /** The machine, and the Vulkan loader and driver files run.sh chose. */
  host: { cpu: string; cores: number; memGiB: number; vulkanLoader: string | null; vulkanDriverFiles: string | null };
  settings: Record<string, unknown>;
  networks: Record<string, { ms: number | null; msMin: number | null; runs: number; gmac: number | null; gmacPerS: number | null; tfPeakMiB: number | null }>;
  frame: { frames: number; ms: number | null; fps: number | null; firstFrameS: number | null; seconds: number | null; note?: string } | null;
  reference: (Omit<ReferenceReport, 'fp32' | 'autocastFp16'> & { wgMs: number; wgMsMin: number; wgFps: number; frames: number; autocastFp16WgMs: number | null }) | null;
  referenceReason?: string;
  ratio: { frameOverReferenceWG: number | null; wgOverReferenceWG: number | null; note: string } | null;
  wallS: number;
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const elapsed = () => ((performance.now() - t0) / 1000).toFixed(1);
  const log = (line: string) => console.error(`[kit +${elapsed()}s] ${line}`);
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`kit: ${errorLine(e)}`);
    return 2;
  }
  const report: Report = {
    kit: 'liveportrait-gpu-kit',
    ok: false,
    error: null,
    errors: [],
    backend: null,
    provider: null,
    adapter: null,
    versions: { node: process.version, tfjs: tf.version.tfjs, ...(kitInfo?.versions ?? {}), ...(kitInfo ? { kitCommit: kitInfo.commit, kitBuiltAt: kitInfo.builtAt } : {}) },
    host: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGiB: round(totalmem() / 2 ** 30, 1)!,
      vulkanLoader: process.env.LP_KIT_LOADER ?? null,
      vulkanDriverFiles: process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES ?? null,
    },
    settings: { backend: args.backend, frames: args.frames, runs: args.runs, warmup: args.warmup, seed: args.seed, batch: 1, workers: 0, only: args.only, timeoutS: args.timeoutS, winograd: process.env.LIVEPORTRAIT_WINOGRAD ?? 'cost model' },
    networks: {},
    frame: null,
    reference: null,
    ratio: null,
    wallS: 0,
  };
  let phase = 'start';
  let printed = false;
  const abort = new AbortController();
  const emit = () => {
    if (printed) return;
    printed = true;
    report.ok = report.errors.length === 0;
    report.error = report.errors[0] ?? null;
    report.wallS = round((performance.now() - t0) / 1000, 1)!;
    process.stdout.write(`${JSON.stringify(report)}\n`);
  };
  const fail = (what: string, e: unknown) => {
    report.errors.push(`${what}: ${errorLine(e)}`);
    log(`${what} failed: ${errorLine(e)}`);
  };
  // The watchdog: a hang in one phase still gives the JSON line (with what was measured) within --timeout.
  const watchdog = setTimeout(() => {
    report.errors.push(`timed out after ${args.timeoutS} s (--timeout) during ${phase}`);
    abort.abort();
    emit();
    process.exit(3);
  }, args.timeoutS * 1000);

  phase = `backend ${args.backend}`;
  log(`starting the ${args.backend} backend`);
  let backendUp = false;
  try {
    if (args.backend === 'webgpu') await registerWebGpuBackend();
    const info = await initBackend({ backend: args.backend, log: (l) => log(l) });
    report.backend = info.name;
    report.provider = info.provider;
    const a = info.name === 'webgpu' ? gpuAdapterInfo() : undefined;
    if (a) report.adapter = { ...a, software: a.isFallbackAdapter };
    backendUp = true;
  } catch (e) {
    fail(args.backend, e);
  }

  if (backendUp) {
    for (const id of args.only) {
      phase = `network ${id}`;
      let r: Result;
      try {
        log(`${id}: building (synthetic weights, seed ${args.seed})`);
        const b = await build(id, args.seed, 1);
        try {
          log(`${id}: ${args.warmup} warm-up call(s), then ${args.runs} timed`);
          r = await measure(b, { warmup: args.warmup, runs: args.runs, batch: 1, layers: false });
        } finally {
          b.dispose();
        }
      } catch (e) {
        fail(`network ${id}`, e);
        continue;
      }
      report.networks[id] = { ms: round(r.msMean), msMin: round(r.msMin), runs: r.runs, gmac: sig(r.gmac), gmacPerS: sig(r.gmacPerS), tfPeakMiB: round(r.tfPeakBytes / 2 ** 20, 1) };
      log(`${id}: ${r.msMean.toFixed(2)} ms/call (min ${r.msMin.toFixed(2)})`);
    }
    if (args.frames > 0) {
      phase = `pipeline (${args.frames} frames)`;
      log(`whole frame: ${args.frames} frame(s) through LivePortrait.animate (M, keypoints, stitching, W, G), no frame workers`);
      try {
        const p: PipelineResult = await pipeline({ pipeline: args.frames, seed: args.seed, workers: 0, json: false });
        const after = p.frames > 1;
        report.frame = {
          frames: p.frames,
          ms: after ? round(p.secondsPerFrame * 1000) : null,
          fps: after ? sig(p.fps) : null,
          firstFrameS: round(p.firstFrameS, 2),
          seconds: round(p.seconds, 2),
          ...(after ? {} : { note: 'one frame only: ms and fps are taken after the first frame (--frames 2 or more)' }),
        };
        log(`whole frame: ${after ? `${(p.secondsPerFrame * 1000).toFixed(1)} ms/frame, ${p.fps.toFixed(3)} frames/s after the first` : 'one frame only'}`);
      } catch (e) {
        fail('pipeline', e);
      }
    }
  }

  if (args.noReference) report.referenceReason = '--no-reference';
  else {
    phase = 'reference W + G (bench_wg.py)';
    const left = args.timeoutS * 1000 - (performance.now() - t0) - 2000;
    const frames = args.referenceFrames ?? Math.max(args.frames, 2);
    const r = await referenceWG({
      reference: args.reference,
      benchWg: args.benchWg,
      python: args.python,
      frames,
      warmup: args.referenceWarmup ?? 2,
      device: args.referenceDevice,
      half: true,
      timeoutMs: Math.max(left, 0),
      signal: abort.signal,
      log,
    });
    if (r.result) {
      const { fp32, autocastFp16, ...rest } = r.result;
      report.reference = { ...rest, wgMs: round(fp32.msPerFrame)!, wgMsMin: round(fp32.msMin)!, wgFps: sig(fp32.fps)!, frames: fp32.frames, autocastFp16WgMs: round(autocastFp16?.msPerFrame) };
      log(`reference W + G: ${fp32.msPerFrame.toFixed(2)} ms/frame on ${rest.deviceName} (torch ${rest.torch})`);
      const wg = report.networks.W?.ms != null && report.networks.G?.ms != null ? report.networks.W.ms + report.networks.G.ms : null;
      const frameOver = report.frame?.ms != null ? sig(report.frame.ms / fp32.msPerFrame) : null;
      const wgOver = wg !== null ? sig(wg / fp32.msPerFrame) : null;
      if (frameOver !== null || wgOver !== null)
        report.ratio = {
          frameOverReferenceWG: frameOver,
          wgOverReferenceWG: wgOver,
          note: 'ours divided by the reference float32 W + G ms (above 1: ours slower); frame = our whole frame (M, keypoints, stitching, W, G), wg = our W + G calls',
        };
    } else {
      report.referenceReason = r.reason;
      log(`reference: none (${r.reason})`);
    }
  }
  clearTimeout(watchdog);
  emit();
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`kit: ${errorLine(e)}`);
    process.exit(1);
  },
);
