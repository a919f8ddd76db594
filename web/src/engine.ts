/**
 * The page's worker: the library (its public entry only) on the backend the
 * page picked, weights from synthetic seeds, local files or HuggingFace, and
 * the runs of runs.ts. The page thread only draws the UI. Nothing here
 * plans driving frames, crops or maps options beyond the page's own names.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import {
  FaceDetector,
  LivePortrait,
  LivePortraitError,
  WeightsError,
  downloadOfficialWeights,
  gpuAdapterInfo,
  initBackend,
  prepareImage,
  useFaceDetector,
  type NamedBytes,
} from '../../src/index.js';
import { decodeImage } from './media.js';
import type { NamedFile, ToEngine } from './protocol.js';
import { animate, edit, editSource, forgetPrepared, liveFrame, liveStart, liveStop, liveNeutral, post, videoEdit } from './runs.js';

let base = '/';
let wasmThreads: number | undefined;
let lp: LivePortrait | undefined;
let run: AbortController | undefined;

function model(): LivePortrait {
  if (!lp) throw new WeightsError('no weights loaded: pick synthetic weights, local files or download the official ones first');
  return lp;
}

// ------------------------------------------------------------------ backend and weights

async function init(backend: string): Promise<void> {
  setWasmPaths(`${base}wasm/`);
  useFaceDetector(() => FaceDetector.load({ detector: `${base}models/blazeface.json`, mesh: `${base}models/facemesh.json` }));
  // tfjs-backend-wasm's default is half the logical cores (1 on a 2-core machine): ask for all of them,
  // which it uses when the page is cross-origin isolated (the threaded SIMD build), else 1.
  // 'auto' is the library's: webgpu on a hardware adapter only, else wasm (its reason comes back in webgpuSkipped).
  const info = await initBackend({ backend, log: false, wasmThreads: wasmThreads ?? navigator.hardwareConcurrency });
  const threads = info.name === 'wasm' ? getThreadsCount() : undefined;
  const a = info.name === 'webgpu' ? gpuAdapterInfo() : undefined;
  const adapter = a ? `${a.vendor} ${a.architecture}`.trim() || a.description || undefined : undefined;
  const note = info.webgpuSkipped ? `${info.webgpuSkipped}${info.softwareAdapter ? ': choose WebGPU above to use it' : ''}` : undefined;
  post({ type: 'ready', backend: info.name, provider: info.provider, threads, adapter, note });
}

function replaceModel(next: LivePortrait): void {
  forgetPrepared();
  void lp?.dispose();
  lp = next;
}

async function loadFiles(files: NamedFile[]): Promise<void> {
  const t0 = performance.now();
  const bytes: NamedBytes[] = [];
  for (const f of files) {
    post({ type: 'weights-progress', file: f.name, loaded: 0, total: f.blob.size });
    bytes.push({ name: f.name, bytes: new Uint8Array(await f.blob.arrayBuffer()) });
  }
  replaceModel(LivePortrait.fromFiles(bytes, 'local files'));
  post({ type: 'weights-ready', label: `local files (${files.length})`, seconds: (performance.now() - t0) / 1000 });
}

/** The official weights from HuggingFace (the hub library): sha256 against the LFS record, kept in Cache Storage. */
async function loadHf(set: 'human' | 'animal', endpoint?: string): Promise<void> {
  const t0 = performance.now();
  const files = await downloadOfficialWeights(set, { endpoint, onProgress: (file, loaded, total) => post({ type: 'weights-progress', file, loaded, total }) });
  // lip_array.pkl is not among the official HuggingFace files: image-driven relative motion asks for it (see README).
  replaceModel(LivePortrait.fromFiles([...files].map(([m, f]) => ({ name: `${m}.pth`, bytes: f.bytes })), `HuggingFace ${set}`));
  const cached = [...files.values()].every((f) => f.fromCache);
  post({ type: 'weights-ready', label: `official ${set} weights (HuggingFace${cached ? ', from the cache' : ''}, sha256 checked)`, seconds: (performance.now() - t0) / 1000 });
}

// ------------------------------------------------------------------ probe (tests: F, M and S outputs on this backend)

async function probe(image: NamedFile): Promise<void> {
  const m = model();
  const img = await decodeImage(image.blob, image.name);
  const outputs: Record<string, number[]> = {};
  // Asynchronous reads only: webgpu's synchronous read is not reliable in a worker.
  const named: Record<string, tf.Tensor> = tf.tidy(() => {
    const x = prepareImage(img, 'probe image');
    const out: Record<string, tf.Tensor> = { F: m.F.apply(x) };
    const mo = m.M.apply(x);
    for (const [k, v] of Object.entries(mo)) out[`M.${k}`] = v as tf.Tensor;
    const x_s = mo.kp.reshape([1, 21, 3]) as tf.Tensor3D;
    const x_d = tf.add(x_s, tf.mul(tf.sin(tf.range(0, 63).reshape([1, 21, 3])), 0.05)) as tf.Tensor3D;
    out['S.stitching'] = m.S.stitching(x_s, x_d);
    out['S.eye'] = m.S.retargetEye(x_s, tf.tensor2d([[0.3, 0.32, 0.1]]));
    out['S.lip'] = m.S.retargetLip(x_s, tf.tensor2d([[0.2, 0.5]]));
    return out;
  });
  try {
    for (const [k, t] of Object.entries(named)) outputs[k] = Array.from(await t.data());
  } finally {
    tf.dispose(Object.values(named));
  }
  post({ type: 'probe-result', outputs, backend: tf.getBackend() });
}

// ------------------------------------------------------------------ messages

function describe(e: unknown): string {
  if (e instanceof LivePortraitError) return e.message;
  const msg = e instanceof Error ? e.message : String(e);
  return msg || 'unknown error';
}

/** A cancellable run: the page's cancel aborts it between frames. */
async function cancellable(fn: (signal: AbortSignal) => Promise<void>): Promise<void> {
  run = new AbortController();
  try {
    await fn(run.signal);
  } finally {
    run = undefined;
  }
}

async function handle(msg: ToEngine): Promise<void> {
  try {
    switch (msg.type) {
      case 'init': {
        base = msg.base;
        wasmThreads = msg.threads;
        await init(msg.backend);
        // networks live on the backend they were built on: the page reloads the weights
        if (lp) {
          forgetPrepared();
          void lp.dispose();
          lp = undefined;
        }
        break;
      }
      case 'weights-synthetic': {
        const t0 = performance.now();
        replaceModel(LivePortrait.synthetic(msg.seed, { lipArray: new Float32Array(63) }));
        post({ type: 'weights-ready', label: `SYNTHETIC weights, seed ${msg.seed} (meaningless output)`, seconds: (performance.now() - t0) / 1000 });
        break;
      }
      case 'weights-files':
        await loadFiles(msg.files);
        break;
      case 'weights-hf':
        await loadHf(msg.set, msg.endpoint);
        break;
      case 'animate':
        await cancellable((signal) => animate(model(), msg.source, msg.driving, msg.params, signal, msg.faceDrivings));
        break;
      case 'video-edit':
        await cancellable((signal) => videoEdit(model(), msg.source, { lipRatio: msg.lipRatio, smoothObservationVariance: msg.smoothObservationVariance, scale: msg.scale, crop: msg.crop ?? true, maxFrames: msg.maxFrames }, signal));
        break;
      case 'edit-source':
        await editSource(model(), msg.source, { crop: msg.crop, cropBox: msg.cropBox, scale: msg.scale, faceIndex: msg.faceIndex });
        break;
      case 'edit':
        await edit(model(), msg.params, msg.seq);
        break;
      case 'live-start':
        await liveStart(model(), msg.source, msg.params);
        break;
      case 'live-frame':
        liveFrame(msg.frame);
        break;
      case 'live-stop':
        liveStop();
        break;
      case 'live-neutral':
        liveNeutral();
        break;
      case 'probe':
        await probe(msg.image);
        break;
      default:
        break;
    }
  } catch (e) {
    if (e instanceof Error && e.name === 'AbortError') post({ type: 'cancelled' });
    else {
      console.error(e);
      post({ type: 'error', message: describe(e), during: msg.type });
    }
  }
}

const queue: ToEngine[] = [];
let running = false;

self.onmessage = (ev: MessageEvent<ToEngine>) => {
  const msg = ev.data;
  if (msg.type === 'cancel') {
    const e = new Error('the run was cancelled');
    e.name = 'AbortError';
    run?.abort(e);
    return;
  }
  if (msg.type === 'memory') {
    // answered at once, also between the frames of a run: tfjs's count, and the wasm heap's size
    const mem = tf.memory();
    const heap = (tf.getBackend() === 'wasm' ? (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer.byteLength : undefined) ?? undefined;
    post({ type: 'memory', numTensors: mem.numTensors, numBytes: mem.numBytes, wasmHeapBytes: heap });
    return;
  }
  if (msg.type === 'live-frame' && queue.some((q) => q.type === 'live-frame')) {
    // live: keep only the newest webcam frame waiting
    const i = queue.findIndex((q) => q.type === 'live-frame');
    (queue[i] as { frame: ImageBitmap }).frame.close();
    queue.splice(i, 1);
  }
  queue.push(msg);
  void pump();
};

async function pump(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length) await handle(queue.shift()!);
  } finally {
    running = false;
  }
}
