/**
 * A layer tapped and compared with a PyTorch dump: W's `compress` conv and
 * its hourglass, on a parity fixture directory (the reference's outputs on
 * the fixture's exact weights; `tools/reference/dump.py --tap W.PATH` makes
 * one for any submodule).
 *
 *   npx tsx examples/tap_layer.ts [FIXTURE_DIR]      (default ../shared/parity/seed1)
 */
import * as tf from '@tensorflow/tfjs';
import { TapRecorder, initBackend } from 'liveportrait-tfjs';
import { loadLivePortrait, readSafetensors } from 'liveportrait-tfjs/node';

const dir = process.argv[2] ?? '../shared/parity/seed1';
await initBackend();
const lp = await loadLivePortrait(dir); // a fixture directory: its exact weights
const W = readSafetensors(`${dir}/warping_module.safetensors`);
const F = readSafetensors(`${dir}/appearance_feature_extractor.safetensors`);
const t = (file: ReturnType<typeof readSafetensors>, k: string) => tf.tensor(Float32Array.from(file.tensors.get(k)!.data as Float32Array), file.tensors.get(k)!.shape);
// The fixture is in PyTorch's layout: f_s NCDHW → NDHWC here.
const f_s = tf.transpose(t(F, 'output'), [0, 2, 3, 4, 1]) as tf.Tensor5D;
const [x_s, x_d] = [t(W, 'kp_source'), t(W, 'kp_driving')] as tf.Tensor3D[];
const rec = new TapRecorder(['dense_motion_network.compress']); // recorded in PyTorch's layout
const out = lp.warp(f_s, x_s, x_d, { tap: rec.tap });
const ours = rec.calls('dense_motion_network.compress')[0];
const ref = t(W, 'compress_out');
const diff = tf.max(tf.abs(tf.sub(ours, ref))).dataSync()[0];
console.log(`W.dense_motion_network.compress ${JSON.stringify(ours.shape)}: max |ours - PyTorch| = ${diff.toExponential(2)}`);
console.log(`taps offered by W: ${rec.offered.size} (e.g. ${[...rec.offered].slice(0, 4).join(', ')})`);
tf.dispose([f_s, x_s, x_d, ref, out.out, out.occlusionMap, out.deformation]);
rec.dispose();
await lp.dispose();
if (!(diff < 1e-3)) process.exit(1);
