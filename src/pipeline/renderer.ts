/**
 * Where W and G run for a frame: one interface, two implementations. The
 * local renderer runs them in this thread (built from their weights on first
 * use); the pool renderer hands the keypoints to a FramePool (Node's worker
 * threads, src/node/workers.ts). The animation loops see only `Renderer`.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { scopedTap, type TapFn } from '../layers/taps.js';
import type { SpadeGeneratorNet, WarpingModuleNet, WarpingOutput } from '../models/types.js';
import type { Lazy } from '../models/registry.js';
import type { FramePool, PoolFrame } from './frame_pool.js';
import { imageToUint8 } from './inputs.js';

/** One rendered face crop: 8-bit RGB, with the driving keypoints it was rendered with. */
export interface AnimatedFrame {
  index: number;
  /** RGB bytes, height × width × 3: uint8(clip(out, 0, 1) · 255), truncated as the reference. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** The driving keypoints used [21 × 3]. */
  x_d: Float32Array;
}

/** How one frame is rendered. */
export interface RenderOptions {
  /**
   * Free W after it has run and G after it has run, where they are built
   * from weights on demand (one-off renders such as the CLI's retarget: the
   * peak memory holds one of them at a time; a later render builds them
   * again).
   */
  release?: boolean;
  /**
   * Offer W's and G's intermediate activations to this tap (paths `W.<path>`
   * and `G.<path>` as the reference's `get_submodule`, see TapRecorder).
   * Local rendering only.
   */
  tap?: TapFn;
}

/** Renders W and G for (f_s, x_s, x_d). */
export interface Renderer {
  /** Frames worth keeping in flight. */
  readonly inFlight: number;
  /** The source every following frame uses (pool renderers send it once). */
  setSource(f_s: tf.Tensor5D): Promise<void>;
  /** One frame; `perFrameFeature` sends f_s with this frame instead of the source set before. */
  render(index: number, f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts?: RenderOptions & { perFrameFeature?: boolean }): Promise<AnimatedFrame>;
}

/** A network given, or built from its builder on first use; `release` frees a built one to be built again. */
export class LazyNet<T extends { dispose(): void }> {
  private net?: T;
  private readonly build?: () => T;

  constructor(given: Lazy<T>) {
    if (typeof given === 'function') this.build = given as () => T;
    else this.net = given;
  }

  get(): T {
    return (this.net ??= this.build!());
  }

  /** Free the network where it can be built again (it was given as a builder). */
  release(): void {
    if (!this.build || !this.net) return;
    this.net.dispose();
    this.net = undefined;
  }

  dispose(): void {
    this.net?.dispose();
    this.net = undefined;
  }
}

type Tapped = { applyWithTaps?: (...a: never[]) => unknown };

/** W and G in this thread. */
export class LocalRenderer implements Renderer {
  readonly inFlight = 1;
  readonly w: LazyNet<WarpingModuleNet>;
  readonly g: LazyNet<SpadeGeneratorNet>;

  constructor(W: Lazy<WarpingModuleNet>, G: Lazy<SpadeGeneratorNet>) {
    this.w = new LazyNet(W);
    this.g = new LazyNet(G);
  }

  async setSource(): Promise<void> {}

  /** W alone, its activations offered to `tap` (paths as the reference's get_submodule). The caller disposes the outputs. */
  warp(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, tap?: TapFn): WarpingOutput {
    const W = this.w.get() as WarpingModuleNet & Tapped;
    if (!tap || !W.applyWithTaps) return W.apply(f_s, x_s, x_d);
    const r = (W.applyWithTaps as unknown as (a: tf.Tensor5D, b: tf.Tensor3D, c: tf.Tensor3D, t?: TapFn) => WarpingOutput & Record<string, tf.Tensor>)(f_s, x_s, x_d, tap);
    tf.dispose(Object.values(r).filter((t) => t !== r.out && t !== r.occlusionMap && t !== r.deformation));
    return { out: r.out, occlusionMap: r.occlusionMap, deformation: r.deformation };
  }

  /** W then G: the image [1, 512, 512, 3] in 0..1. */
  warpDecode(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: RenderOptions = {}): tf.Tensor4D {
    if (x_s.shape.join() !== '1,21,3' || x_d.shape.join() !== '1,21,3')
      throw new InputError(`warpDecode: keypoints must be [1, 21, 3], got x_s ${JSON.stringify(x_s.shape)} and x_d ${JSON.stringify(x_d.shape)}`);
    if (f_s.rank !== 5 || f_s.shape[0] !== 1) throw new InputError(`warpDecode: f_s must be [1, 16, 64, 64, 32], got ${JSON.stringify(f_s.shape)}`);
    let w: WarpingOutput | undefined;
    let extra: tf.Tensor[] = [];
    try {
      const W = this.w.get() as WarpingModuleNet & Tapped;
      if (opts.tap && W.applyWithTaps) {
        const r = (W.applyWithTaps as unknown as (a: tf.Tensor5D, b: tf.Tensor3D, c: tf.Tensor3D, t?: TapFn) => WarpingOutput & Record<string, tf.Tensor>)(f_s, x_s, x_d, scopedTap(opts.tap, 'W'));
        w = r;
        extra = Object.values(r).filter((t) => t !== r.out && t !== r.occlusionMap && t !== r.deformation);
      } else w = W.apply(f_s, x_s, x_d);
      if (opts.release) this.w.release();
      const G = this.g.get() as SpadeGeneratorNet & Tapped;
      if (opts.tap && G.applyWithTaps) {
        const r = (G.applyWithTaps as unknown as (a: tf.Tensor4D, t?: TapFn) => { output: tf.Tensor4D } & Record<string, tf.Tensor>)(w.out, scopedTap(opts.tap, 'G'));
        tf.dispose(Object.values(r).filter((t) => t !== r.output));
        return r.output;
      }
      return G.apply(w.out);
    } finally {
      if (w) tf.dispose([w.out, w.occlusionMap, w.deformation, ...extra]);
      if (opts.release) for (const n of [this.w, this.g]) n.release();
    }
  }

  async render(index: number, f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: RenderOptions = {}): Promise<AnimatedFrame> {
    return decodedFrame(index, this.warpDecode(f_s, x_s, x_d, opts), x_d);
  }

  dispose(): void {
    this.w.dispose();
    this.g.dispose();
  }
}

/** A decoded image [1, H, W, 3] as a frame (the image is disposed). */
export async function decodedFrame(index: number, img: tf.Tensor4D, x_d: tf.Tensor3D): Promise<AnimatedFrame> {
  const [, h, w] = img.shape;
  try {
    // Both reads in flight at once: one wait for the device, not two.
    const [rgb, xd] = await Promise.all([imageToUint8(img), x_d.data()]);
    return { index, rgb, width: w, height: h, x_d: Float32Array.from(xd) };
  } finally {
    img.dispose();
  }
}

/** W and G in a frame pool (worker threads): x_s and x_d are read at once, so the caller may dispose them. */
export class PoolRenderer implements Renderer {
  constructor(readonly pool: FramePool) {}

  get inFlight(): number {
    return 2 * this.pool.size;
  }

  async setSource(f_s: tf.Tensor5D): Promise<void> {
    this.pool.setSource((await f_s.data()) as Float32Array, f_s.shape);
  }

  async render(index: number, f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: RenderOptions & { perFrameFeature?: boolean } = {}): Promise<AnimatedFrame> {
    const [xd, xs, fs] = await Promise.all([x_d.data(), x_s.data(), opts.perFrameFeature ? f_s.data() : undefined]);
    const feature = fs ? { data: fs as Float32Array, shape: f_s.shape } : undefined;
    const out: PoolFrame = await this.pool.render(Float32Array.from(xs), Float32Array.from(xd), feature);
    const img = tf.tensor(out.data, out.shape);
    try {
      return { index, rgb: await imageToUint8(img), width: out.shape[2], height: out.shape[1], x_d: Float32Array.from(xd) };
    } finally {
      img.dispose();
    }
  }
}
