/**
 * Taps: intermediate tensors recorded by the reference's submodule path, the
 * analogue of PyTorch forward hooks (what tools/reference/dump.py writes as
 * `tap/<path>`). A network's `applyWithTaps(..., tap)` calls `tap(path, value)`
 * at each submodule output it can offer; a TapRecorder keeps the ones asked
 * for, in PyTorch layout, and remembers every path that was offered (so a
 * comparer can tell "not exposed by the port" from "not asked for").
 *
 * Paths are dotted as in `get_submodule` ('dense_motion_network.hourglass'),
 * with `/<i>` or `/<key>` for the items of a list or dict output
 * ('dense_motion_network/mask'); '' is the network itself. A module called
 * several times records one tensor per call.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * How a tapped tensor is laid out: 'channels-last' (ours: NHWC / NDHWC,
 * turned into NCHW / NCDHW when recorded) or 'torch' (already the
 * reference's layout, e.g. a deformation grid [N, D, H, W, 3]).
 */
export type TapLayout = 'channels-last' | 'torch';

/** Offer a submodule output; a function value is only evaluated when the path is wanted. */
export type TapFn = (path: string, value: tf.Tensor | (() => tf.Tensor), layout?: TapLayout) => void;

/** A tap function under a submodule: scoped(tap, 'hourglass')('encoder/0', x) offers 'hourglass.encoder/0'. */
export function scopedTap(tap: TapFn | undefined, prefix: string): TapFn | undefined {
  if (!tap) return undefined;
  return (path, value, layout) => tap(joinTapPath(prefix, path), value, layout);
}

/** 'a' + 'b' → 'a.b'; 'a' + '' → 'a'; 'a' + '/0' → 'a/0'. */
export function joinTapPath(prefix: string, path: string): string {
  if (!prefix) return path;
  if (!path) return prefix;
  return path.startsWith('/') ? `${prefix}${path}` : `${prefix}.${path}`;
}

/** NHWC → NCHW and NDHWC → NCDHW; other ranks unchanged. */
function toTorchLayout(t: tf.Tensor): tf.Tensor {
  if (t.rank === 4) return tf.transpose(t, [0, 3, 1, 2]);
  if (t.rank === 5) return tf.transpose(t, [0, 4, 1, 2, 3]);
  return t.clone();
}

/** Collects the tapped tensors a caller asked for, one per call, in PyTorch layout. */
export class TapRecorder {
  /** Every path a network offered during the runs, wanted or not. */
  readonly offered = new Set<string>();
  private readonly recorded = new Map<string, tf.Tensor[]>();
  private readonly wanted: Set<string> | undefined;

  /** `wanted`: paths to keep (default: all; large networks offer hundreds of MB). */
  constructor(wanted?: Iterable<string>) {
    this.wanted = wanted ? new Set(wanted) : undefined;
  }

  /** The function to pass to `applyWithTaps`. Safe inside tf.tidy: recorded tensors are kept. */
  readonly tap: TapFn = (path, value, layout = 'channels-last') => {
    this.offered.add(path);
    if (this.wanted && !this.wanted.has(path)) return;
    const t = tf.tidy(() => {
      const v = typeof value === 'function' ? value() : value;
      return layout === 'torch' ? v.clone() : toTorchLayout(v);
    });
    tf.keep(t);
    const calls = this.recorded.get(path) ?? [];
    calls.push(t);
    this.recorded.set(path, calls);
  };

  /** The tensors recorded at `path`, one per call (empty if never recorded). */
  calls(path: string): readonly tf.Tensor[] {
    return this.recorded.get(path) ?? [];
  }

  dispose(): void {
    for (const calls of this.recorded.values()) tf.dispose(calls);
    this.recorded.clear();
  }
}
