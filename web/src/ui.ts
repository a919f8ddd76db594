/** The page's shared UI pieces: element lookup, the state tests read, messages, small formatters. */
import type { EditParams } from './protocol.js';

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** What tests and curious users can read: the page's state. */
export const state = {
  backend: '',
  threads: undefined as number | undefined,
  /** With auto on another backend: why webgpu was not taken ('' otherwise). */
  backendNote: '',
  weights: '',
  /** The files of the weights being loaded: bytes so far, of total, and how many progress reports. */
  weightsFiles: {} as Record<string, { loaded: number; total: number; updates: number }>,
  busy: false,
  animations: 0,
  lastError: '',
  lastResult: undefined as undefined | { name: string; mime: string; frames: number; audio: boolean; note?: string; seconds: number },
  editSeq: 0,
  editDone: 0,
  editSeconds: 0,
  editCrop: undefined as ImageData | undefined,
  editSourceCrop: undefined as ImageData | undefined,
  editRatios: undefined as { eyeRatio: number; lipRatio: number } | undefined,
  editSourceRatios: undefined as { eyeRatio?: number[]; lipRatio?: number } | undefined,
  editParams: undefined as EditParams | undefined,
  probe: undefined as undefined | { outputs: Record<string, number[]>; backend: string },
  /** The worker's memory, when asked for with lpMemory(). */
  memory: undefined as undefined | { numTensors: number; numBytes: number; wasmHeapBytes?: number },
  /** Webcam live: frames shown since the last start. */
  liveFrames: 0,
  log: [] as string[],
};
(window as unknown as { lpState: typeof state }).lpState = state;

export function showMessage(text: string, kind: 'error' | 'info' = 'error'): void {
  const el = $('message');
  el.textContent = text;
  el.className = `message ${kind === 'info' ? 'info' : ''}`;
  el.hidden = !text;
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function drawImage(id: string, img: ImageData): void {
  const c = $(id) as HTMLCanvasElement;
  c.width = img.width;
  c.height = img.height;
  c.getContext('2d')!.putImageData(img, 0, 0);
}

export const round2 = (x: number) => Math.round(x * 100) / 100;

export const num = (id: string) => Number(($(id) as HTMLInputElement).value);
export const checked = (id: string) => ($(id) as HTMLInputElement).checked;

