/** Options and helpers shared by the commands. */
import type { Argv } from 'yargs';
import type { ModelOptions } from '../node/app/model.js';
import { type ProgressStream } from '../node/app/progress.js';
import { WEIGHTS_ENV, describeWeightsSource, resolveWeightsSource } from '../node/hub.js';

export interface CommonArgs {
  weights?: string;
  'lip-array'?: string;
  seed: number;
  set?: 'human' | 'animal';
  backend?: string;
  workers?: number;
  quiet: boolean;
}

export const MODEL_GROUP = 'Model and runtime:';

/** --weights, --seed, --set, --backend, --workers, --quiet. */
export function withModelOptions<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y
    .option('weights', {
      type: 'string',
      describe:
        'Weights directory (converted .safetensors or the official .pth layout), or "synthetic" for deterministic random weights that need no download (meaningless pictures, for trying things out). [default: $LIVEPORTRAIT_WEIGHTS, else ./weights when it holds all five modules, else the HuggingFace cache ($HF_HOME/hub) when complete]',
      group: MODEL_GROUP,
    })
    .option('lip-array', {
      type: 'string',
      describe: "The reference's neutral-lip expression (src/utils/resources/lip_array.pkl of KwaiVGI/LivePortrait), needed for relative motion from a driving image. [default: lip_array.pkl in the weights directory]",
      group: MODEL_GROUP,
    })
    .option('seed', { type: 'number', default: 1, describe: 'Seed of --weights synthetic.', group: MODEL_GROUP })
    .option('set', { choices: ['human', 'animal'] as const, describe: 'Which official weight set the directory holds. [default: human; animal with animate --animal]', group: MODEL_GROUP })
    .option('backend', {
      type: 'string',
      choices: ['auto', 'tensorflow', 'wasm', 'cpu', 'webgpu'],
      describe: 'TensorFlow.js backend: auto picks tfjs-node(-gpu) if installed, else webgpu on a hardware GPU (a software adapter such as lavapipe or SwiftShader only by name), else wasm, else cpu. [default: $LIVEPORTRAIT_BACKEND, else auto]',
      group: MODEL_GROUP,
    })
    .option('workers', {
      type: 'number',
      describe: 'Worker threads rendering frames in parallel, each with its own backend (the wasm backend uses one core per thread). 0 renders in the main thread. Workers go in pairs, each pair splitting a frame (W and the start of G, then the rest of G). [default: one per core on wasm and cpu, as memory allows (about 1.75 GiB each), 0 on tensorflow and webgpu]',
      group: MODEL_GROUP,
    })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress bars or info lines; errors and the summary only.', group: MODEL_GROUP }) as unknown as Argv<
    T & CommonArgs
  >;
}

/**
 * The model options of the arguments. Without --weights and
 * $LIVEPORTRAIT_WEIGHTS the weights are resolved here (./weights, else the
 * HuggingFace cache, see resolveWeightsSource) and said in one line.
 */
export function modelOptions(a: CommonArgs & { animal?: unknown }): ModelOptions {
  let weights = a.weights;
  if (weights === undefined && !process.env[WEIGHTS_ENV]) {
    const src = resolveWeightsSource({ set: a.set ?? (a.animal === true ? 'animal' : 'human') });
    weights = src.dir;
    logger(a)(describeWeightsSource(src));
    // Resolved once: a supervised command's child process (supervise.ts) gets the folder as given.
    process.env[WEIGHTS_ENV] = src.dir;
  }
  return { weights, lipArray: a['lip-array'], seed: a.seed, set: a.set, backend: a.backend === 'auto' ? undefined : a.backend, workers: a.workers };
}

/** Info lines on stderr (nothing with --quiet). */
export function logger(a: { quiet: boolean }): (line: string) => void {
  return (line) => {
    if (!a.quiet) process.stderr.write(`${line.startsWith('liveportrait') ? '' : 'liveportrait: '}${line}\n`);
  };
}

export function progressStream(a: { quiet: boolean }): ProgressStream | false {
  return a.quiet ? false : process.stderr;
}

/** The summary line goes to stdout (scripts can read it). */
export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}
