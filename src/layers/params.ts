/**
 * Reading a network's parameters out of a state dict by official key, with
 * errors that name the network, the key and the file.
 */
import * as tf from '@tensorflow/tfjs';
import { WeightsError } from '../errors.js';
import { type HostTensor, type StateDict, toFloat32 } from '../formats/host_tensor.js';

export { WeightsError };

/** One parameter of a network: its official key and PyTorch shape. */
export interface ParamSpec {
  key: string;
  shape: number[];
}

export class ParamReader {
  private used = new Set<string>();

  /**
   * @param sd the state dict
   * @param network the network's name, for messages (e.g. 'warping_module')
   * @param source where the weights came from (a file path or 'synthetic seed 1')
   */
  constructor(
    readonly sd: StateDict,
    readonly network: string,
    readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.sd.has(key);
  }

  /** The host tensor under `key`, checked against `shape` where given. */
  host(key: string, shape?: readonly number[]): HostTensor {
    const t = this.sd.get(key);
    if (!t) throw new WeightsError(`${this.source}: ${this.network} weights lack key '${key}'; the file is not ${/^[aeiou]/i.test(this.network) ? 'an' : 'a'} ${this.network} checkpoint or is incomplete (re-convert or re-download it)`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])))
      throw new WeightsError(`${this.source}: ${this.network} weight '${key}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}; the file is for another model or configuration`);
    this.used.add(key);
    return t;
  }

  /** Float32 values under `key`. */
  floats(key: string, shape?: readonly number[]): Float32Array {
    return toFloat32(this.host(key, shape));
  }

  /** A float32 tfjs tensor in the stored (PyTorch) layout. */
  tensor(key: string, shape?: readonly number[]): tf.Tensor {
    const t = this.host(key, shape);
    return tf.tensor(toFloat32(t), t.shape, 'float32');
  }

  /** Keys of the state dict never read (to report checkpoints of another variant). */
  unused(): string[] {
    return [...this.sd.keys()].filter((k) => !this.used.has(k) && !k.endsWith('num_batches_tracked'));
  }
}
