/** The page's inputs: picked files, their previews, drag and drop, the webcam, a crop square placed by hand. */
import type { NamedFile } from './protocol.js';
import { kindOf } from './kinds.js';
import { $, showMessage } from './ui.js';

type CropBox = { x: number; y: number; size: number };

export const picked: { source?: NamedFile; driving?: NamedFile; edit?: NamedFile; vedit?: NamedFile; cropBox?: CropBox; faceDrivings?: NamedFile[] } = {};

function preview(id: string, f: NamedFile): void {
  const box = $(id);
  for (const el of Array.from(box.querySelectorAll('img,video'))) {
    const src = (el as HTMLImageElement).src;
    if (src.startsWith('blob:')) URL.revokeObjectURL(src);
  }
  box.innerHTML = '';
  const kind = kindOf(f.name, f.blob.type);
  if (kind === 'image') box.append(Object.assign(document.createElement('img'), { src: URL.createObjectURL(f.blob), alt: f.name }));
  else if (kind === 'video') box.append(Object.assign(document.createElement('video'), { src: URL.createObjectURL(f.blob), controls: true, muted: true }));
  box.append(Object.assign(document.createElement('div'), { className: 'status', textContent: `${f.name} (${kind ?? 'unknown type'}, ${(f.blob.size / 1e6).toFixed(2)} MB)` }));
  if (id === 'source-preview') {
    picked.cropBox = undefined;
    const img = box.querySelector('img');
    if (img) placeCrop(box, img);
  }
}

/**
 * The crop square placed by hand on the source photo, for faces the detector
 * misses: drag over the preview to draw it (a square, in the photo's pixels);
 * a click without a drag clears it.
 */
function placeCrop(box: HTMLElement, img: HTMLImageElement): void {
  box.style.position = 'relative';
  const sq = Object.assign(document.createElement('div'), { className: 'crop-square', hidden: true });
  const note = Object.assign(document.createElement('div'), { className: 'status', textContent: 'drag over the photo to place the face crop by hand (the detector finds it otherwise)' });
  box.append(sq, note);
  img.draggable = false;
  let start: [number, number] | undefined;
  const at = (e: PointerEvent): [number, number] => {
    const r = img.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const draw = (e: PointerEvent) => {
    const [x, y] = at(e);
    const side = Math.max(Math.abs(x - start![0]), Math.abs(y - start![1]));
    const x0 = x < start![0] ? start![0] - side : start![0];
    const y0 = y < start![1] ? start![1] - side : start![1];
    Object.assign(sq.style, { left: `${img.offsetLeft + x0}px`, top: `${img.offsetTop + y0}px`, width: `${side}px`, height: `${side}px` });
    sq.hidden = side < 4;
    const k = img.naturalWidth / img.clientWidth;
    picked.cropBox = side < 4 ? undefined : { x: Math.round(x0 * k), y: Math.round(y0 * k), size: Math.round(side * k) };
    note.textContent = picked.cropBox ? `face crop placed at ${picked.cropBox.x},${picked.cropBox.y}, side ${picked.cropBox.size} (click to clear)` : 'drag over the photo to place the face crop by hand';
  };
  img.addEventListener('pointerdown', (e) => {
    start = at(e);
    img.setPointerCapture(e.pointerId);
    draw(e);
  });
  img.addEventListener('pointermove', (e) => start && draw(e));
  img.addEventListener('pointerup', (e) => {
    if (start) draw(e);
    start = undefined;
  });
}

export function accept(role: 'source' | 'driving', f: NamedFile): boolean {
  const kind = kindOf(f.name, f.blob.type);
  const ok = role === 'source' ? kind === 'image' || kind === 'video' : kind !== undefined;
  if (!ok) {
    showMessage(
      role === 'source'
        ? `${f.name} is not an image or a video: give the source as a jpg, png, webp, mp4 or webm.`
        : `${f.name} is not a video, an image or a motion template (.pkl, .lpmotion.safetensors).`,
    );
    return false;
  }
  showMessage('');
  picked[role] = f;
  preview(`${role}-preview`, f);
  return true;
}

export function wireDrop(role: 'source' | 'driving'): void {
  const input = $(`${role}-file`) as HTMLInputElement;
  input.addEventListener('change', () => {
    const f = input.files?.[0];
    if (f && !accept(role, { name: f.name, blob: f })) input.value = '';
  });
  const zone = $(`${role}-drop`);
  zone.addEventListener('dragover', (e) => (e.preventDefault(), zone.classList.add('over')));
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) accept(role, { name: f.name, blob: f });
  });
}

export async function webcamStream(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives no camera access here (it needs https or localhost)');
  return navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
}

export async function webcamSnapshot(): Promise<void> {
  try {
    const stream = await webcamStream();
    const v = document.createElement('video');
    v.srcObject = stream;
    v.muted = true;
    await v.play();
    await new Promise((r) => setTimeout(r, 400));
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    c.getContext('2d')!.drawImage(v, 0, 0);
    for (const t of stream.getTracks()) t.stop();
    const blob = await new Promise<Blob>((res, rej) => c.toBlob((b) => (b ? res(b) : rej(new Error('snapshot failed'))), 'image/png'));
    accept('source', { name: 'webcam.png', blob });
  } catch (e) {
    showMessage(`Webcam: ${(e as Error).message}`);
  }
}

