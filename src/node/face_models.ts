/**
 * The face detector's models from disk (Node): BlazeFace and FaceMesh as
 * shipped inside the npm package `@vladmandic/human` (its models/ folder),
 * read into memory, so nothing is downloaded and no tfjs-node is needed.
 */
import { useFaceDetector } from '../pipeline/hooks.js';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FaceDetector } from '../face/detector.js';

/** Folder of the graph models inside @vladmandic/human. */
export function humanModelsDir(): string {
  const require = createRequire(import.meta.url);
  // resolves to <pkg>/dist/human.node.js; the models sit in <pkg>/models
  return join(dirname(require.resolve('@vladmandic/human')), '..', 'models');
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  userDefinedMetadata?: Record<string, unknown>;
}

/** A tfjs IOHandler over a graph model's model.json and .bin files on disk. */
export async function graphModelFiles(jsonPath: string): Promise<tf.io.IOHandler> {
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as ModelJson;
  const dir = dirname(jsonPath);
  const bins = await Promise.all(json.weightsManifest.flatMap((g) => g.paths).map((p) => readFile(join(dir, p))));
  const buf = Buffer.concat(bins);
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  return tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
    userDefinedMetadata: json.userDefinedMetadata as Record<string, object> | undefined,
  });
}

let shared: Promise<FaceDetector> | undefined;

/**
 * The face detector on the packaged models, loaded once per process and
 * shared (a failed load is retried on the next call).
 */
export function loadFaceDetector(): Promise<FaceDetector> {
  if (!shared) {
    const dir = humanModelsDir();
    shared = Promise.all([graphModelFiles(join(dir, 'blazeface.json')), graphModelFiles(join(dir, 'facemesh.json'))]).then(([detector, mesh]) =>
      FaceDetector.load({ detector, mesh }),
    );
    shared.catch(() => (shared = undefined));
  }
  return shared;
}

// The core's face detector on this platform: the packaged models.
useFaceDetector(loadFaceDetector);
