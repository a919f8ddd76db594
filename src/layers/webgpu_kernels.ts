/**
 * Fused kernels for the webgpu backend: each does in one GPU dispatch what
 * takes a chain of tfjs kernels (one dispatch each) elsewhere. They are
 * registered with tfjs for 'webgpu' only and run through the engine, so
 * tf.tidy, tf.memory and tf.profile see them like tfjs's own kernels; on
 * every other backend the callers keep their tfjs-op paths.
 * `LIVEPORTRAIT_GPU_KERNELS=0` turns them off (for comparisons).
 *
 * Each kernel computes the same float32 operations in the same order as the
 * op chain it replaces (and as the PyTorch reference where it says so).
 */
import * as tf from '@tensorflow/tfjs';

/** What tfjs-backend-webgpu's program runner takes (the subset used here). */
interface GpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size: boolean;
  uniforms?: string;
  getUserCode(): string;
}

interface WebGpuBackend {
  runWebGPUProgram(program: GpuProgram, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo;
}

const WORKGROUP = 64;

/** A program over the output's elements, one thread each (tfjs's flat dispatch layout). */
function flatProgram(key: string, variableNames: string[], outputShape: number[], body: string, uniforms?: string): GpuProgram {
  const size = outputShape.reduce((a, b) => a * b, 1);
  return {
    variableNames,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    // The backend splits this over more dimensions where it passes the device's limit.
    dispatch: [Math.ceil(size / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    uniforms,
    getUserCode: () => `fn main(index : i32) {
  if (index < uniforms.size) {
${body}
  }
}`,
  };
}

type Attrs = Record<string, number>;
type Build = (inputs: tf.TensorInfo[], attrs: Attrs) => { program: GpuProgram; uniforms?: { type: string; data: number[] }[] };

/** Registers `name` for webgpu (once) from a program builder over the named inputs. */
function register(name: string, inputNames: string[], build: Build): void {
  if (tf.getKernel(name, 'webgpu')) return;
  tf.registerKernel({
    kernelName: name,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const ins = inputNames.map((n) => (inputs as Record<string, tf.TensorInfo>)[n]).filter((t) => t !== undefined);
      const { program, uniforms } = build(ins, attrs as unknown as Attrs);
      return (backend as unknown as WebGpuBackend).runWebGPUProgram(program, ins, 'float32', uniforms);
    },
  });
}

/** Whether the fused webgpu kernels are used now. */
export function gpuKernels(): boolean {
  const env = typeof process !== 'undefined' ? process.env?.LIVEPORTRAIT_GPU_KERNELS : undefined;
  return env !== '0' && tf.getBackend() === 'webgpu';
}

const run = <T extends tf.Tensor>(name: string, inputs: Record<string, tf.Tensor>, attrs: Attrs = {}) =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as T;

// ---------------------------------------------------------------------------
// Conv3d's depth taps summed: y[n·dOut + j, h, w, o] = act(Σ_k Y[n·d + j + k − pd, h, w, k·O + o] + bias[o]),
// where Y is the conv2d of every depth slice with the kd taps stacked as output channels
// and slices outside 0 .. d − 1 (the zero padding) add nothing. Sum in tap order, then the bias.

const TAP_SUM = 'LivePortraitConv3dTapSum';
register(TAP_SUM, ['y', 'bias'], (ins, a) => {
  const [, ho, wo] = ins[0].shape;
  const hasBias = ins.length > 1;
  const body = `    let c = getCoordsFromIndex(index);
    let item = c[0] / uniforms.dOut;
    let j = c[0] - item * uniforms.dOut;
    var s = 0.0;
    for (var k = 0; k < uniforms.kd; k++) {
      let src = j + k - uniforms.pd;
      if (src >= 0 && src < uniforms.depth) {
        s = s + getY(item * uniforms.depth + src, c[1], c[2], k * uniforms.outC + c[3]);
      }
    }
    ${hasBias ? 's = s + getBias(c[3]);' : ''}
    if (uniforms.relu != 0 && s < 0.0) { s = 0.0; }
    setOutputAtIndex(index, s);`;
  const program = flatProgram(`${TAP_SUM}_${hasBias}`, hasBias ? ['y', 'bias'] : ['y'], [a.n * a.dOut, ho, wo, a.outC], body, 'kd : i32, pd : i32, depth : i32, dOut : i32, outC : i32, relu : i32,');
  const i32 = (v: number) => ({ type: 'int32', data: [v] });
  return { program, uniforms: [i32(a.kd), i32(a.pd), i32(a.depth), i32(a.dOut), i32(a.outC), i32(a.relu)] };
});

/**
 * Σ over the kd depth taps of Y [n·depth, H, W, kd·O] (see above), plus the
 * bias, then ReLU if asked: [n·dOut, H, W, O]. One dispatch.
 */
export function conv3dTapSum(y: tf.Tensor4D, bias: tf.Tensor1D | undefined, o: { n: number; depth: number; kd: number; pd: number; relu: boolean }): tf.Tensor4D {
  const outC = y.shape[3] / o.kd;
  const dOut = o.depth + 2 * o.pd - o.kd + 1;
  return run<tf.Tensor4D>(TAP_SUM, bias ? { y, bias } : { y }, { n: o.n, depth: o.depth, kd: o.kd, pd: o.pd, dOut, outC, relu: o.relu ? 1 : 0 });
}

// ---------------------------------------------------------------------------
// PyTorch's 3-D grid_sample (trilinear, zeros padding, align_corners=False),
// one output element a thread: per axis i = ((g + 1) · size − 1) / 2, corners
// floor(i) and floor(i) + 1 weighted (i0 + 1 − i) and (i − i0), corner
// weights (wx · wy) · wz, the 8 corners summed in PyTorch's order (z, y, x
// outermost to innermost), a corner outside the volume adding nothing.

const GRID_SAMPLE = 'LivePortraitGridSample3d';
register(GRID_SAMPLE, ['x', 'grid'], (ins) => {
  const c = ins[0].shape[4];
  const [n, dOut, hOut, wOut] = ins[1].shape;
  const body = `    let o = getCoordsFromIndex(index);
    let gx = getGrid(o.x, o.y, o.z, o.w, 0);
    let gy = getGrid(o.x, o.y, o.z, o.w, 1);
    let gz = getGrid(o.x, o.y, o.z, o.w, 2);
    let size = uniforms.xShape;
    let ix = ((gx + 1.0) * f32(size.w) - 1.0) / 2.0;
    let iy = ((gy + 1.0) * f32(size.z) - 1.0) / 2.0;
    let iz = ((gz + 1.0) * f32(size.y) - 1.0) / 2.0;
    let x0 = floor(ix);
    let y0 = floor(iy);
    let z0 = floor(iz);
    let wx = array<f32, 2>(x0 + 1.0 - ix, ix - x0);
    let wy = array<f32, 2>(y0 + 1.0 - iy, iy - y0);
    let wz = array<f32, 2>(z0 + 1.0 - iz, iz - z0);
    var s = 0.0;
    for (var kz = 0; kz < 2; kz++) {
      for (var ky = 0; ky < 2; ky++) {
        for (var kx = 0; kx < 2; kx++) {
          let zi = i32(z0) + kz;
          let yi = i32(y0) + ky;
          let xi = i32(x0) + kx;
          if (zi >= 0 && zi < size.y && yi >= 0 && yi < size.z && xi >= 0 && xi < size.w) {
            s = s + getX(o.x, zi, yi, xi, o.u) * ((wx[kx] * wy[ky]) * wz[kz]);
          }
        }
      }
    }
    setOutputAtIndex(index, s);`;
  return { program: flatProgram(GRID_SAMPLE, ['x', 'grid'], [n, dOut, hOut, wOut, c], body) };
});

/** gridSample3d (see grid_sample3d.ts) in one dispatch: input [N, D, H, W, C], grid [N, Do, Ho, Wo, 3] → [N, Do, Ho, Wo, C]. */
export function gridSample3dGpu(input: tf.Tensor5D, grid: tf.Tensor5D): tf.Tensor5D {
  return run<tf.Tensor5D>(GRID_SAMPLE, { x: input, grid });
}

/** WGSL: the sum of one value from each thread of a workgroup (every thread must call it). */
const WORKGROUP_SUM = `var<workgroup> partial : array<f32, ${WORKGROUP}>;
fn workgroupSum(v : f32) -> f32 {
  partial[localId.x] = v;
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half = half / 2u) {
    if (localId.x < half) { partial[localId.x] = partial[localId.x] + partial[localId.x + half]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}`;

/**
 * A program with one workgroup per image and channel of x [N, H, W, C]: the
 * body sees n, c, `base` (the index of x[n, 0, 0, c]) and uniforms.pixels
 * (H·W), and its threads step through the pixels WORKGROUP apart.
 */
function perChannel(key: string, x: tf.TensorInfo, outputShape: number[], body: string): ReturnType<Build> {
  const [n, h, w, c] = x.shape;
  const program = flatProgram(key, ['x'], outputShape, '', 'pixels : i32,');
  program.dispatch = [n * c, 1, 1];
  program.getUserCode = () => `${WORKGROUP_SUM}
fn main(index : i32) {
  let item = index / ${WORKGROUP};
  let channels = uniforms.xShape[3];
  let n = item / channels;
  let c = item - n * channels;
  let base = n * uniforms.pixels * channels + c;
${body}
}`;
  return { program, uniforms: [{ type: 'int32', data: [h * w] }] };
}

// ---------------------------------------------------------------------------
// Instance-norm statistics: per image and channel of x [N, H, W, C], the mean
// and the biased variance over H·W (mean first, then the mean of the squared
// differences from it, as tf.moments), into [N, 2, C]. One workgroup a
// (n, c): its threads take every WORKGROUP-th pixel, then a tree sum.

const STATS = 'LivePortraitInstanceNormStats';
register(STATS, ['x'], (ins) =>
  perChannel(
    STATS,
    ins[0],
    [ins[0].shape[0], 2, ins[0].shape[3]],
    `  var s = 0.0;
  for (var p = i32(localId.x); p < uniforms.pixels; p = p + ${WORKGROUP}) { s = s + x[base + p * channels]; }
  let mean = workgroupSum(s) / f32(uniforms.pixels);
  var q = 0.0;
  for (var p = i32(localId.x); p < uniforms.pixels; p = p + ${WORKGROUP}) {
    let d = x[base + p * channels] - mean;
    q = q + d * d;
  }
  let variance = workgroupSum(q) / f32(uniforms.pixels);
  if (localId.x == 0u) {
    setOutputAtCoords(n, 0, c, mean);
    setOutputAtCoords(n, 1, c, variance);
  }`,
  ),
);

/** Per image and channel of x [N, H, W, C], the mean and biased variance over H·W: [N, 2, C]. One dispatch. */
export function instanceNormStats(x: tf.Tensor4D): tf.Tensor3D {
  return run<tf.Tensor3D>(STATS, { x });
}

// ---------------------------------------------------------------------------
// SPADE's modulation of an instance-normalised input, with the activation
// after it: out = ((x − mean) · rsqrt(variance + eps)) · (gamma + 1) + beta,
// then LeakyReLU(slope) where slope ≥ 0 is given (slope < 0: none).

const MODULATE = 'LivePortraitInstanceNormModulate';
register(MODULATE, ['x', 'stats', 'gamma', 'beta'], (ins, a) => {
  const body = `    let c = getCoordsFromIndex(index);
    let centred = getX(c[0], c[1], c[2], c[3]) - getStats(c[0], 0, c[3]);
    let y = centred * inverseSqrt(getStats(c[0], 1, c[3]) + uniforms.eps);
    var out = y * (getGamma(c[0], c[1], c[2], c[3]) + 1.0) + getBeta(c[0], c[1], c[2], c[3]);
    if (uniforms.slope >= 0.0 && out < 0.0) { out = uniforms.slope * out; }
    setOutputAtIndex(index, out);`;
  const program = flatProgram(MODULATE, ['x', 'stats', 'gamma', 'beta'], ins[0].shape, body, 'eps : f32, slope : f32,');
  return { program, uniforms: [{ type: 'float32', data: [a.eps] }, { type: 'float32', data: [a.slope] }] };
});

/**
 * ((x − mean) · rsqrt(variance + eps)) · (gamma + 1) + beta, then
 * LeakyReLU(slope) if given: x, gamma, beta [N, H, W, C]; stats [N, 2, C]
 * (instanceNormStats). One dispatch.
 */
export function instanceNormModulate(x: tf.Tensor4D, stats: tf.Tensor3D, gamma: tf.Tensor4D, beta: tf.Tensor4D, eps: number, slope?: number): tf.Tensor4D {
  return run<tf.Tensor4D>(MODULATE, { x, stats, gamma, beta }, { eps, slope: slope ?? -1 });
}

// ---------------------------------------------------------------------------
// Normalisation over the last axis (LayerNorm without its affine part):
// (x − mean) · rsqrt(mean((x − mean)²) + eps) per row, one thread a row.

const NORM_LAST = 'LivePortraitNormalizeLastAxis';
register(NORM_LAST, ['x'], (ins, a) => {
  const shape = ins[0].shape;
  const channels = shape[shape.length - 1];
  const rows = shape.reduce((p, d) => p * d, 1) / channels;
  const program = flatProgram(NORM_LAST, ['x'], shape, '', 'rows : i32, channels : i32, eps : f32,');
  program.dispatch = [Math.ceil(rows / WORKGROUP), 1, 1];
  program.getUserCode = () => `fn main(row : i32) {
  if (row >= uniforms.rows) { return; }
  let base = row * uniforms.channels;
  var s = 0.0;
  for (var k = 0; k < uniforms.channels; k++) { s = s + x[base + k]; }
  let mean = s / f32(uniforms.channels);
  var q = 0.0;
  for (var k = 0; k < uniforms.channels; k++) {
    let d = x[base + k] - mean;
    q = q + d * d;
  }
  let scale = inverseSqrt(q / f32(uniforms.channels) + uniforms.eps);
  for (var k = 0; k < uniforms.channels; k++) { setOutputAtIndex(base + k, (x[base + k] - mean) * scale); }
}`;
  return { program, uniforms: [{ type: 'int32', data: [rows] }, { type: 'int32', data: [channels] }, { type: 'float32', data: [a.eps] }] };
});

/** (x − mean) · rsqrt(variance + eps) over the last axis (biased variance). One dispatch. */
export function normalizeLastAxisGpu<T extends tf.Tensor>(x: T, eps: number): T {
  return run<T>(NORM_LAST, { x }, { eps });
}

// ---------------------------------------------------------------------------
// u · (erf(u) + 1), the erf-GELU with its 1/√2 and 1/2 folded into the
// weights around it (see ConvNeXtV2Block); erf as tfjs's kernels compute it
// (Abramowitz and Stegun 7.1.26).

const GELU = 'LivePortraitGeluErf';
register(GELU, ['u'], (ins) => {
  const k = tf.backend_util;
  const body = `    let a = u[index];
    let t = 1.0 / (1.0 + ${k.ERF_P} * abs(a));
    let erf = sign(a) * (1.0 - (((((${k.ERF_A5} * t + ${k.ERF_A4}) * t) + ${k.ERF_A3}) * t + ${k.ERF_A2}) * t + ${k.ERF_A1}) * t * exp(-abs(a) * abs(a)));
    setOutputAtIndex(index, a * (erf + 1.0));`;
  return { program: flatProgram(GELU, ['u'], ins[0].shape, body) };
});

/** u · (erf(u) + 1). One dispatch. */
export function geluErf<T extends tf.Tensor>(u: T): T {
  return run<T>(GELU, { u });
}

// ---------------------------------------------------------------------------
// ConvNeXt-V2's global response norm, its per-channel scale:
// gx = sqrt(Σ over H, W of x²) per image and channel, then
// s = ((gx / (mean over channels of gx + eps)) · gamma + 1) · post.
// Two dispatches: the sums of squares (a workgroup per image and channel),
// then the scales (a thread each).

const SUM_SQUARES = 'LivePortraitSpatialSumOfSquares';
register(SUM_SQUARES, ['x'], (ins) =>
  perChannel(
    SUM_SQUARES,
    ins[0],
    [ins[0].shape[0], ins[0].shape[3]],
    `  var s = 0.0;
  for (var p = i32(localId.x); p < uniforms.pixels; p = p + ${WORKGROUP}) {
    let v = x[base + p * channels];
    s = s + v * v;
  }
  let total = workgroupSum(s);
  if (localId.x == 0u) { setOutputAtCoords(n, c, total); }`,
  ),
);

const GRN_SCALE = 'LivePortraitGrnScale';
register(GRN_SCALE, ['sums', 'gamma'], (ins, a) => {
  const body = `    let nc = getCoordsFromIndex(index);
    let channels = uniforms.sumsShape[1];
    var total = 0.0;
    for (var k = 0; k < channels; k++) { total = total + sqrt(getSums(nc[0], k)); }
    let nx = sqrt(getSums(nc[0], nc[1])) / (total / f32(channels) + uniforms.eps);
    setOutputAtIndex(index, (nx * getGamma(nc[1]) + 1.0) * uniforms.post);`;
  const program = flatProgram(GRN_SCALE, ['sums', 'gamma'], ins[0].shape, body, 'eps : f32, post : f32,');
  return { program, uniforms: [{ type: 'float32', data: [a.eps] }, { type: 'float32', data: [a.post] }] };
});

/** GRN's scale for x [N, H, W, C]: ((gx / (mean_c gx + eps)) · gamma + 1) · post, as [N, 1, 1, C]. Two dispatches. */
export function grnScaleGpu(x: tf.Tensor4D, gamma: tf.Tensor1D, eps: number, post = 1): tf.Tensor4D {
  const [n, , , c] = x.shape;
  return tf.tidy(() => run<tf.Tensor2D>(GRN_SCALE, { sums: run<tf.Tensor2D>(SUM_SQUARES, { x }), gamma }, { eps, post }).reshape([n, 1, 1, c]));
}
