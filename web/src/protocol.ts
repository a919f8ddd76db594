/** Messages between the page (main.ts) and the worker that runs the networks (engine.ts). */

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'cpu';

export interface AnimateParams {
  relativeMotion: boolean;
  animationRegion: 'all' | 'exp' | 'pose' | 'lip' | 'eyes';
  drivingMultiplier: number;
  drivingOption: 'expression-friendly' | 'pose-friendly';
  stitching: boolean;
  eyeRetargeting: boolean;
  lipRetargeting: boolean;
  normalizeLip: boolean;
  smoothObservationVariance: number;
  /** Kalman smoothing of any driving's motion (observation variance; 0 off). */
  drivingSmooth: number;
  /** The driving frame relative motion is taken against: an index or 'auto' (live: over the first seconds). */
  referenceFrame: number | 'auto';
  crop: boolean;
  scale: number;
  vxRatio: number;
  vyRatio: number;
  /** Crop the driving video to its face; undefined: when it is not square (as the CLI). */
  cropDriving?: boolean;
  drivingScale: number;
  drivingVx: number;
  drivingVy: number;
  pasteBack: boolean;
  allFaces: boolean;
  faceIndex: number;
  maxFrames?: number;
  /** Also an animated GIF of the result (video results only). */
  gif?: boolean;
  /** A crop square placed by hand on the source (source pixels), for faces the detector misses. */
  cropBox?: { x: number; y: number; size: number; angle?: number };
  /** The reference's animal pipeline (animal weights). */
  animal?: boolean;
}

export interface EditParams {
  eyeRatio: number;
  lipRatio: number;
  pitch: number;
  yaw: number;
  roll: number;
  movX: number;
  movY: number;
  movZ: number;
  lip0: number;
  lip1: number;
  lip2: number;
  lip3: number;
  smile: number;
  wink: number;
  eyebrow: number;
  eyeballX: number;
  eyeballY: number;
  stitching: boolean;
}

export interface NamedFile {
  name: string;
  blob: Blob;
}

export type ToEngine =
  | { type: 'init'; backend: BackendChoice; base: string; threads?: number }
  | { type: 'weights-synthetic'; seed: number }
  | { type: 'weights-files'; files: NamedFile[] }
  | { type: 'weights-hf'; set: 'human' | 'animal'; endpoint?: string }
  | { type: 'animate'; source: NamedFile; driving: NamedFile; params: AnimateParams; faceDrivings?: NamedFile[] }
  | { type: 'live-start'; source: NamedFile; params: AnimateParams }
  | { type: 'live-frame'; frame: ImageBitmap }
  | { type: 'live-stop' }
  | { type: 'live-neutral' }
  | { type: 'edit-source'; source: NamedFile; crop: boolean; scale: number; faceIndex: number; cropBox?: AnimateParams['cropBox'] }
  | { type: 'edit'; params: EditParams; seq: number }
  | { type: 'video-edit'; source: NamedFile; lipRatio: number | null; smoothObservationVariance: number; scale: number; crop?: boolean; maxFrames?: number }
  | { type: 'probe'; image: NamedFile }
  | { type: 'memory' }
  | { type: 'cancel' };

export interface Progress {
  phase: string;
  done: number;
  total?: number;
  /** Seconds left, estimated. */
  eta?: number;
  secondsPerFrame?: number;
}

export interface VideoResult {
  blob: Blob;
  name: string;
  mime: string;
}

export type FromEngine =
  /** `note`: with auto on another backend, why webgpu was not taken (e.g. its adapter is software). */
  | { type: 'ready'; backend: string; provider: string; threads?: number; adapter?: string; note?: string }
  | { type: 'weights-ready'; label: string; seconds: number }
  | { type: 'weights-progress'; file: string; loaded: number; total?: number }
  | { type: 'progress'; progress: Progress }
  | { type: 'log'; line: string }
  | {
      type: 'animated';
      result: VideoResult;
      concat?: VideoResult;
      /** The result as an animated GIF, when asked for. */
      gif?: VideoResult;
      image: boolean;
      frames: number;
      seconds: number;
      faces: number;
      note?: string;
      audio: boolean;
    }
  | { type: 'edit-ready'; eyeRatio: number; lipRatio: number; sourceEyeRatio?: number[]; sourceLipRatio?: number; crop: ImageData }
  | { type: 'edit-result'; seq: number; crop: ImageData; pasted: ImageData; pastedPng: Blob; seconds: number }
  | { type: 'live-frame'; image: ImageData; seconds: number }
  | { type: 'probe-result'; outputs: Record<string, number[]>; backend: string }
  | { type: 'memory'; numTensors: number; numBytes: number; wasmHeapBytes?: number }
  | { type: 'cancelled' }
  | { type: 'error'; message: string; during: string };
