/**
 * A frame worker (see workers.ts): its own tfjs backend, its own W and G.
 * Receives f_s once per source, then (x_s, x_d) per frame, and answers with
 * the decoded image as float32 RGB.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import './dawn.js'; // registers Dawn's navigator.gpu for the webgpu backend
import { SpadeGenerator } from '../models/spade_generator.js';
import { syntheticModuleWeights } from '../models/registry.js';
import { WarpingModule } from '../models/warping_module.js';
import { loadModuleWeights } from './weights.js';
import { ParamReader } from '../layers/params.js';
import type { StateDict } from '../formats/host_tensor.js';
import type { WorkerReply, WorkerRequest } from './workers.js';
import type { WorkerWeights } from '../pipeline/frame_pool.js';

if (!parentPort) throw new Error('worker.ts runs inside a worker thread');
const port = parentPort;

let W: WarpingModule | undefined;
let G: SpadeGenerator | undefined;
let f_s: tf.Tensor5D | undefined;
let sourceId = -1;

function stateDicts(w: WorkerWeights): { wm: StateDict; sg: StateDict; source: string } {
  if ('stateDicts' in w) return { wm: w.stateDicts.warping_module, sg: w.stateDicts.spade_generator, source: 'given state dicts' };
  if ('seed' in w)
    return {
      wm: syntheticModuleWeights('warping_module', w.seed),
      sg: syntheticModuleWeights('spade_generator', w.seed),
      source: `synthetic seed ${w.seed}`,
    };
  return { wm: loadModuleWeights(w.dir, 'warping_module', { set: w.set }), sg: loadModuleWeights(w.dir, 'spade_generator', { set: w.set }), source: w.dir };
}

function reply(m: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

port.on('message', async (m: WorkerRequest) => {
  if (m.type === 'init') {
    try {
      const info = await initBackend({ backend: m.backend, log: false });
      const { wm, sg, source } = stateDicts(m.weights);
      W = new WarpingModule(new ParamReader(wm, 'warping_module', source));
      G = new SpadeGenerator(new ParamReader(sg, 'spade_generator', source));
      reply({ type: 'ready', backend: info.name });
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
      const out = tf.tidy(() => {
        const x_s = tf.tensor3d(m.x_s, [1, 21, 3]);
        const x_d = tf.tensor3d(m.x_d, [1, 21, 3]);
        const feature = own ? tf.tensor5d(own.data, own.shape as [number, number, number, number, number]) : f_s!;
        const warped = W!.apply(feature, x_s, x_d);
        return G!.apply(warped.out);
      });
      const data = (await out.data()) as Float32Array;
      const shape = out.shape as [number, number, number, number];
      out.dispose();
      reply({ type: 'frame', job: m.job, data, shape }, [data.buffer as ArrayBuffer]);
    } catch (e) {
      reply({ type: 'error', job: m.job, message: (e as Error).message });
    }
  }
});
