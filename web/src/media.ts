/**
 * Images and videos in the page (worker side): decode with the browser
 * (createImageBitmap, WebCodecs through mediabunny), encode with WebCodecs
 * through mediabunny: H.264/MP4 where the browser can encode it, else
 * VP9/WebM (said so in `note`). The driving video's audio is copied as is
 * (no re-encode) where the container takes its codec.
 */
import { checkImageSize, readImageHeader } from '../../src/index.js';
import {
  ALL_FORMATS,
  BlobSource,
  BufferTarget,
  EncodedAudioPacketSource,
  EncodedPacketSink,
  Input,
  Mp4OutputFormat,
  Output,
  VideoSample,
  VideoSampleSink,
  VideoSampleSource,
  WebMOutputFormat,
  canEncodeVideo,
  type InputAudioTrack,
  type InputVideoTrack,
} from 'mediabunny';
import { GIFEncoder, applyPalette, quantize, type GifEncoder } from 'gifenc';
import { InputError, type RgbImage } from '../../src/index.js';

export { kindOf, type FileKind } from './kinds.js';

function rgbaToRgb(rgba: Uint8ClampedArray, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    data[i] = rgba[j];
    data[i + 1] = rgba[j + 1];
    data[i + 2] = rgba[j + 2];
  }
  return { width, height, data };
}

/** RGB → RGBA bytes (alpha 255). */
export function rgbToRgba(img: RgbImage): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(new ArrayBuffer(img.width * img.height * 4));
  for (let i = 0, j = 0; j < out.length; i += 3, j += 4) {
    out[j] = img.data[i];
    out[j + 1] = img.data[i + 1];
    out[j + 2] = img.data[i + 2];
    out[j + 3] = 255;
  }
  return out;
}

function canvasRgb(source: CanvasImageSource | VideoSample, width: number, height: number): RgbImage {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  if (source instanceof VideoSample) source.draw(ctx, 0, 0, width, height);
  else ctx.drawImage(source, 0, 0, width, height);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data, width, height);
}

/** An image file's pixels (EXIF orientation applied). */
export async function decodeImage(file: Blob, name: string): Promise<RgbImage> {
  // The size a file declares is checked before anything is decoded (a few MB can declare 30000x30000).
  const header = readImageHeader(new Uint8Array(await file.slice(0, 1 << 22).arrayBuffer()));
  if (header) checkImageSize(name, header.width, header.height);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw new InputError(`${name} is not an image the browser can read; give a jpg, png or webp`);
  }
  try {
    return canvasRgb(bmp, bmp.width, bmp.height);
  } finally {
    bmp.close();
  }
}

/** An image (RGB) as PNG. */
export async function encodePng(img: RgbImage): Promise<Blob> {
  const canvas = new OffscreenCanvas(img.width, img.height);
  canvas.getContext('2d')!.putImageData(new ImageData(rgbToRgba(img), img.width, img.height), 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

export interface VideoIn {
  width: number;
  height: number;
  fps: number;
  frameCount: number;
  audio?: InputAudioTrack;
  /** Frames in order, at most `max`. */
  frames(max?: number): AsyncGenerator<RgbImage>;
  close(): void;
}

/** Open a video file; one-line InputErrors for what is not a readable video. */
export async function openVideo(file: Blob, name: string): Promise<VideoIn> {
  const input = new Input({ source: new BlobSource(file), formats: ALL_FORMATS });
  let track: InputVideoTrack | null;
  try {
    track = await input.getPrimaryVideoTrack();
  } catch {
    throw new InputError(`${name} is not a video the browser can read; give an mp4, webm or mov`);
  }
  if (!track) throw new InputError(`${name} has no video track; give a video with a picture`);
  if (!(await track.canDecode())) throw new InputError(`${name}: this browser cannot decode its video codec (${track.codec ?? 'unknown'}); convert it to H.264 mp4 or VP9 webm`);
  const stats = await track.computePacketStats();
  const audio = (await input.getPrimaryAudioTrack()) ?? undefined;
  const width = track.displayWidth;
  const height = track.displayHeight;
  const t = track;
  return {
    width,
    height,
    fps: stats.averagePacketRate || 25,
    frameCount: stats.packetCount,
    audio,
    async *frames(max = Infinity) {
      let n = 0;
      const sink = new VideoSampleSink(t);
      for await (const sample of sink.samples()) {
        try {
          if (n >= max) break;
          yield canvasRgb(sample, width, height);
          n++;
        } finally {
          sample.close();
        }
      }
    },
    close() {
      input.dispose?.();
    },
  };
}

export interface EncodedVideo {
  blob: Blob;
  mime: string;
  ext: 'mp4' | 'webm';
  frames: number;
  audio: boolean;
  /** Set when something was not as asked (VP9 fallback, audio dropped). */
  note?: string;
}

/** Which container and codec this browser encodes: H.264 in MP4, else VP9 in WebM. */
export async function pickVideoCodec(width: number, height: number): Promise<{ codec: 'avc' | 'vp9'; ext: 'mp4' | 'webm'; note?: string }> {
  if (await canEncodeVideo('avc', { width, height })) return { codec: 'avc', ext: 'mp4' };
  if (await canEncodeVideo('vp9', { width, height })) return { codec: 'vp9', ext: 'webm', note: 'this browser cannot encode H.264: the video is VP9 in WebM' };
  throw new InputError('this browser can encode neither H.264 nor VP9 video (WebCodecs); use a recent Chrome, Edge or Firefox');
}

/** A video written frame by frame into memory; `finish` gives the file, `cancel` drops it. */
export class VideoOut {
  private output?: Output;
  private source?: VideoSampleSource;
  private frames = 0;
  private width = 0;
  private height = 0;
  private notes: string[] = [];
  private ext: 'mp4' | 'webm' = 'mp4';
  private audioCopied = false;

  constructor(
    private readonly fps: number,
    private readonly audio?: InputAudioTrack,
  ) {}

  async add(img: RgbImage): Promise<void> {
    if (!this.output) await this.start(img.width, img.height);
    if (img.width !== this.width || img.height !== this.height) throw new Error(`frame ${this.frames} is ${img.width}x${img.height}, the video ${this.width}x${this.height}`);
    const sample = new VideoSample(rgbToRgba(img), { format: 'RGBX', codedWidth: img.width, codedHeight: img.height, timestamp: this.frames / this.fps, duration: 1 / this.fps });
    try {
      await this.source!.add(sample, this.frames % 50 === 0 ? { keyFrame: true } : undefined);
    } finally {
      sample.close();
    }
    this.frames++;
  }

  private async start(width: number, height: number): Promise<void> {
    // H.264 4:2:0 wants even sizes: the pipeline's outputs are (resizeToLimit keeps them even).
    this.width = width;
    this.height = height;
    const pick = await pickVideoCodec(width, height);
    if (pick.note) this.notes.push(pick.note);
    this.ext = pick.ext;
    this.output = new Output({
      format: pick.ext === 'mp4' ? new Mp4OutputFormat({ fastStart: 'in-memory' }) : new WebMOutputFormat(),
      target: new BufferTarget(),
    });
    this.source = new VideoSampleSource({ codec: pick.codec, bitrate: Math.max(1e6, Math.round(width * height * this.fps * 0.2)), latencyMode: 'quality' });
    this.output.addVideoTrack(this.source, { frameRate: this.fps });
    let audioSource: EncodedAudioPacketSource | undefined;
    if (this.audio) {
      const codec = this.audio.codec;
      const ok = codec && (pick.ext === 'mp4' ? ['aac', 'opus', 'mp3', 'flac'].includes(codec) : ['opus', 'vorbis'].includes(codec));
      if (ok) {
        audioSource = new EncodedAudioPacketSource(codec);
        this.output.addAudioTrack(audioSource);
      } else this.notes.push(`the driving video's audio (${codec ?? 'unknown codec'}) cannot go into ${pick.ext.toUpperCase()} without re-encoding: the result is silent`);
    }
    await this.output.start();
    this.pendingAudio = audioSource;
  }

  private pendingAudio?: EncodedAudioPacketSource;

  /** Copy the audio packets that fall within the video's duration. */
  private async copyAudio(): Promise<void> {
    const src = this.pendingAudio;
    if (!src || !this.audio) return;
    const duration = this.frames / this.fps;
    const config = await this.audio.getDecoderConfig();
    let first = true;
    for await (const packet of new EncodedPacketSink(this.audio).packets()) {
      if (packet.timestamp >= duration) break;
      await src.add(packet, first && config ? { decoderConfig: config } : undefined);
      first = false;
    }
    src.close();
    this.audioCopied = !first;
  }

  async finish(): Promise<EncodedVideo> {
    if (!this.output) throw new Error('no frames were written');
    this.source!.close();
    await this.copyAudio();
    await this.output.finalize();
    const buf = (this.output.target as BufferTarget).buffer!;
    const mime = this.ext === 'mp4' ? 'video/mp4' : 'video/webm';
    return { blob: new Blob([buf], { type: mime }), mime, ext: this.ext, frames: this.frames, audio: this.audioCopied, note: this.notes.join('; ') || undefined };
  }

  async cancel(): Promise<void> {
    if (this.output && this.output.state !== 'finalized' && this.output.state !== 'canceled') await this.output.cancel().catch(() => undefined);
  }
}

/**
 * An animated GIF written frame by frame (gifenc): each frame's own 256-colour
 * palette (quantized from its pixels), the frame rate as delays in
 * hundredths of a second, looping forever. No sound (GIF has none).
 */
export class GifOut {
  private readonly gif: GifEncoder = GIFEncoder();
  private frames = 0;
  private width = 0;
  private height = 0;
  private readonly delayMs: number;

  constructor(fps: number) {
    this.delayMs = 1000 / (fps > 0 ? fps : 25);
  }

  add(img: RgbImage): void {
    if (this.frames === 0) (this.width = img.width), (this.height = img.height);
    else if (img.width !== this.width || img.height !== this.height) throw new Error(`GIF frame ${this.frames} is ${img.width}x${img.height}, the GIF ${this.width}x${this.height}`);
    const rgba = rgbToRgba(img);
    const palette = quantize(rgba, 256);
    // delays are whole hundredths: spread the rounding so that the total time stays right
    const delay = Math.round(((this.frames + 1) * this.delayMs) / 10) * 10 - Math.round((this.frames * this.delayMs) / 10) * 10;
    this.gif.writeFrame(applyPalette(rgba, palette), img.width, img.height, { palette, delay, repeat: 0 });
    this.frames++;
  }

  finish(): Blob {
    if (this.frames === 0) throw new Error('no frames were written');
    this.gif.finish();
    return new Blob([this.gif.bytes() as Uint8Array<ArrayBuffer>], { type: 'image/gif' });
  }
}
