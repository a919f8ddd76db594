/**
 * Frames in parallel, the part every platform shares: a FramePool renders
 * W and G for (x_s, x_d) somewhere else (Node's worker threads in
 * src/node/workers.ts; a page could use web workers), and `mapOrdered`
 * keeps frame order with several frames in flight.
 */
import type { StateDict } from '../formats/host_tensor.js';
import type { WeightSet } from '../models/checkpoints.js';

/** Where a worker gets W and G from: a weights directory, a synthetic seed, or state dicts. */
export type WorkerWeights =
  | { dir: string; set?: WeightSet }
  | { seed: number }
  | { stateDicts: { warping_module: StateDict; spade_generator: StateDict } };

/** A tensor's values and shape, between threads. */
export interface HostArray {
  data: Float32Array;
  shape: number[];
}

/** A decoded frame: float32 RGB in 0..1, [height, width, 3] row-major. */
export interface PoolFrame {
  data: Float32Array;
  shape: [number, number, number, number];
}

/** Somewhere else W and G run: the source feature once, then keypoints per frame. */
export interface FramePool {
  /** Frames it works on at once. */
  readonly size: number;
  /** Send the source feature volume f_s ([1, 16, 64, 64, 32], NDHWC); returns its id. */
  setSource(f_s: Float32Array, shape: number[]): number;
  /** W and G for x_s, x_d ([1, 21, 3] each) with the source's f_s, or with `f_s` for this frame alone. */
  render(x_s: Float32Array, x_d: Float32Array, f_s?: HostArray): Promise<PoolFrame>;
  close(): Promise<void>;
}

/**
 * Map an (async) sequence through an async function with up to `concurrency`
 * calls in flight, yielding results in input order. Only `concurrency`
 * inputs and results are held at once.
 */
export async function* mapOrdered<T, R>(items: AsyncIterable<T> | Iterable<T>, fn: (item: T, index: number) => Promise<R>, concurrency: number): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  let i = 0;
  try {
    for await (const item of items as AsyncIterable<T>) {
      const p = fn(item, i++);
      p.catch(() => undefined); // observed when its turn comes
      queue.push(p);
      if (queue.length >= Math.max(1, concurrency)) yield await queue.shift()!;
    }
    while (queue.length) yield await queue.shift()!;
  } finally {
    // Abandoned early: let in-flight work settle without unhandled rejections.
    for (const p of queue) p.catch(() => undefined);
  }
}
