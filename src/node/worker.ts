/**
 * A frame worker (see workers.ts): its own tfjs backend and its part of the
 * frame. 'whole': W and all of G, from (x_s, x_d) to the image. 'head': W
 * and G's first stages, answering with G's running tensor and input
 * feature. 'tail': the rest of G, from those to the image. f_s comes once
 * per source; images go back as float32 RGB.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { backendMemory, initBackend } from '../backend.js';
import './dawn.js'; // registers Dawn's navigator.gpu for the webgpu backend
import { G_STAGES, SpadeGenerator } from '../models/spade_generator.js';
import { syntheticModuleWeights } from '../models/registry.js';
import { WarpingModule } from '../models/warping_module.js';
import { loadModuleWeights } from './weights.js';
import { ParamReader } from '../layers/params.js';
import type { StateDict } from '../formats/host_tensor.js';
import type { WorkerReply, WorkerRequest, WorkerRole } from './workers.js';
import type { HostArray, WorkerWeights } from '../pipeline/frame_pool.js';

if (!parentPort) throw new Error('worker.ts runs inside a worker thread');
const port = parentPort;

let W: WarpingModule | undefined;
let G: SpadeGenerator | undefined;
let f_s: tf.Tensor5D | undefined;
let sourceId = -1;
let role: WorkerRole = 'whole';
/** G's stages run here: [0, split) for a head, [split, end) for a tail. */
let split = G_STAGES.length;

function stateDict(w: WorkerWeights, module: 'warping_module' | 'spade_generator'): { sd: StateDict; source: string } {
  if ('stateDicts' in w) return { sd: w.stateDicts[module], source: 'given state dicts' };
  if ('seed' in w) return { sd: syntheticModuleWeights(module, w.seed), source: `synthetic seed ${w.seed}` };
  return { sd: loadModuleWeights(w.dir, module, { set: w.set }), source: w.dir };
}

function reply(m: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

/** The values of a tensor, which is then freed. */
async function take(t: tf.Tensor): Promise<HostArray> {
  try {
    return { data: (await t.data()) as Float32Array, shape: t.shape };
  } finally {
    t.dispose();
  }
}

port.on('message', async (m: WorkerRequest) => {
  if (m.type === 'init') {
    try {
      const info = await initBackend({ backend: m.backend, log: false });
      role = m.role ?? 'whole';
      split = role === 'whole' ? G_STAGES.length : m.split!;
      if (role !== 'tail') {
        const { sd, source } = stateDict(m.weights, 'warping_module');
        W = new WarpingModule(new ParamReader(sd, 'warping_module', source));
      }
      const { sd, source } = stateDict(m.weights, 'spade_generator');
      G = new SpadeGenerator(new ParamReader(sd, 'spade_generator', source), { stages: role === 'tail' ? [split, G_STAGES.length] : [0, split] });
      reply({ type: 'ready', backend: info.name, memory: backendMemory() });
    } catch (e) {
      reply({ type: 'init-error', message: (e as Error).message });
    }
  } else if (m.type === 'source') {
    f_s?.dispose();
    f_s = tf.tensor5d(m.f_s, m.shape as [number, number, number, number, number], 'float32');
    sourceId = m.id;
  } else if (m.type === 'render') {
    try {
      if (!W || !G || (!m.f_s && (!f_s || m.sourceId !== sourceId))) throw new Error('frame worker: not initialised for this source');
      const own = m.f_s;
      const { feature, x } = tf.tidy(() => {
        const x_s = tf.tensor3d(m.x_s, [1, 21, 3]);
        const x_d = tf.tensor3d(m.x_d, [1, 21, 3]);
        const volume = own ? tf.tensor5d(own.data, own.shape as [number, number, number, number, number]) : f_s!;
        const warped = W!.apply(volume, x_s, x_d);
        return { feature: warped.out, x: G!.applyStages(warped.out, warped.out, 0, split) };
      });
      if (role === 'whole') {
        feature.dispose();
        const { data, shape } = await take(x);
        reply({ type: 'frame', job: m.job, data, shape: shape as [number, number, number, number], memory: backendMemory() }, [data.buffer as ArrayBuffer]);
      } else {
        const f = await take(feature);
        const y = await take(x);
        reply({ type: 'mid', job: m.job, feature: f, x: y, memory: backendMemory() }, [f.data.buffer as ArrayBuffer, y.data.buffer as ArrayBuffer]);
      }
    } catch (e) {
      reply({ type: 'error', job: m.job, message: (e as Error).message });
    }
  } else if (m.type === 'decode') {
    try {
      if (!G || role !== 'tail') throw new Error('frame worker: not a decoding worker');
      const out = tf.tidy(() => {
        const feature = tf.tensor4d(m.feature.data, m.feature.shape as [number, number, number, number]);
        const x = tf.tensor4d(m.x.data, m.x.shape as [number, number, number, number]);
        return G!.applyStages(feature, x, split, G_STAGES.length);
      });
      const { data, shape } = await take(out);
      reply({ type: 'frame', job: m.job, data, shape: shape as [number, number, number, number], memory: backendMemory() }, [data.buffer as ArrayBuffer]);
    } catch (e) {
      reply({ type: 'error', job: m.job, message: (e as Error).message });
    }
  }
});
