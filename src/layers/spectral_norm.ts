/**
 * Spectral normalisation (torch.nn.utils.spectral_norm) resolved once at
 * load time. In eval mode PyTorch runs no power iteration: it uses the stored
 * vectors u and v as they are, sigma = u · (W v) with W = weight_orig
 * reshaped to [out, in·kh·kw], and the weight is weight_orig / sigma.
 */
import { ParamReader, WeightsError } from './params.js';
import { type HostTensor, type StateDict, f32, numel, toFloat32 } from '../formats/host_tensor.js';
import { Conv2d, type ConvOptions } from './core.js';

/** sigma = u · (W v), W = w as [u.length, v.length] (float64 accumulation, float32 result). */
export function spectralSigma(w: Float32Array, u: Float32Array, v: Float32Array): number {
  const rows = u.length;
  const cols = v.length;
  if (rows * cols !== w.length) throw new Error(`spectralSigma: weight of ${w.length} values is not ${rows}×${cols}`);
  let sigma = 0;
  for (let r = 0; r < rows; r++) {
    let wv = 0;
    const off = r * cols;
    for (let k = 0; k < cols; k++) wv += w[off + k] * v[k];
    sigma += u[r] * wv;
  }
  return Math.fround(sigma);
}

/** weight_orig / sigma, element-wise in float32. */
export function spectralNormalize(w: Float32Array, u: Float32Array, v: Float32Array): Float32Array {
  const sigma = spectralSigma(w, u, v);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] / sigma;
  return out;
}

/**
 * The eval-mode weight of a spectrally normalised layer at `prefix`, read
 * from `${prefix}.weight_orig`, `.weight_u`, `.weight_v` (all marked used).
 */
export function resolveSpectralWeight(p: ParamReader, prefix: string): HostTensor {
  const orig = p.host(`${prefix}.weight_orig`);
  const [out, ...rest] = orig.shape;
  const u = p.floats(`${prefix}.weight_u`, [out]);
  const v = p.floats(`${prefix}.weight_v`, [numel(rest)]);
  if (!u.every(Number.isFinite) || !v.every(Number.isFinite))
    throw new WeightsError(`${p.source}: ${p.network} spectral-norm vectors of '${prefix}' are not finite`);
  return f32([...orig.shape], spectralNormalize(toFloat32(orig), u, v));
}

/**
 * A spectrally normalised nn.Conv2d: the weight is resolved once here, then
 * it is an ordinary Conv2d.
 */
export function spectralConv2d(p: ParamReader, prefix: string, opts: ConvOptions = {}): Conv2d {
  const sd: StateDict = new Map([[`${prefix}.weight`, resolveSpectralWeight(p, prefix)]]);
  if (opts.bias ?? true) sd.set(`${prefix}.bias`, p.host(`${prefix}.bias`));
  return new Conv2d(new ParamReader(sd, p.network, p.source), prefix, opts);
}
