import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hasAudioStream,
  isVideoPath,
  openVideoWriter,
  probeVideo,
  readVideo,
  readVideoFrames,
  videoToGif,
  writeVideo,
} from '../src/node/video.js';
import { parseFpsText, parseProbeOutput } from '../src/node/ffmpeg.js';
import { createImage, type RgbImage } from '../src/image/image.js';
import { media } from './helpers/paths.js';
import { meanAbsDiff } from './helpers/tensors.js';

const HAVE_MEDIA = existsSync(media('d0.mp4'));

/** Distinct, smooth frames (compress well, survive h264 with small error). */
function frame(width: number, height: number, k: number): RgbImage {
  const img = createImage(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      img.data[i] = (x * 2 + k * 10) & 255;
      img.data[i + 1] = (y * 4) & 255;
      img.data[i + 2] = 128;
    }
  }
  return img;
}

/** ffmpeg children of this process that mention `needle` (Linux /proc). */
function ffmpegChildren(needle: string): number {
  if (!existsSync('/proc/self/stat')) return 0;
  let n = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lp-video-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('probe parsing', () => {
  it('fps text to rationals', () => {
    expect(parseFpsText('25')).toEqual({ num: 25, den: 1 });
    expect(parseFpsText('29.97')).toEqual({ num: 30000, den: 1001 });
    expect(parseFpsText('12.50')).toEqual({ num: 25, den: 2 });
    expect(parseFpsText('1k')).toEqual({ num: 1000, den: 1 });
  });

  it('rotation metadata swaps the size', () => {
    const text = [
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mov':",
      '  Duration: 00:00:02.50, start: 0.000000, bitrate: 100 kb/s',
      '    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 1920x1080, 100 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)',
      '    Metadata:',
      '      rotate          : 90',
      '    Side data:',
      '      displaymatrix: rotation of -90.00 degrees',
      '    Stream #0:1(und): Audio: aac (LC), 44100 Hz, mono, fltp, 64 kb/s (default)',
    ].join('\n');
    const info = parseProbeOutput(text)!;
    expect([info.width, info.height, info.rotation]).toEqual([1080, 1920, 90]);
    expect(info.fpsRational).toEqual({ num: 30000, den: 1001 });
    expect(info.duration).toBe(2.5);
    expect(info.hasAudio).toBe(true);
  });

  it('isVideoPath by extension', () => {
    expect(isVideoPath('a/b.MP4')).toBe(true);
    expect(isVideoPath('b.webm')).toBe(true);
    expect(isVideoPath('b.jpg')).toBe(false);
    expect(isVideoPath('b.pkl')).toBe(false);
  });
});

describe.skipIf(!HAVE_MEDIA)('shared media', () => {
  it('probes size, fps, frame count, duration, audio', async () => {
    const d0 = await probeVideo(media('d0.mp4'));
    expect(d0).toMatchObject({ width: 512, height: 512, fps: 25, fpsRational: { num: 25, den: 1 }, frameCount: 78, hasAudio: false, videoCodec: 'h264' });
    expect(d0.duration).toBeCloseTo(3.12, 2);
    const d11 = await probeVideo(media('d11.mp4'));
    expect(d11).toMatchObject({ width: 512, height: 512, fps: 25, frameCount: 225, hasAudio: true });
    const s13 = await probeVideo(media('s13.mp4'));
    expect(s13).toMatchObject({ width: 720, height: 1080, fps: 25, frameCount: 103, hasAudio: true });
    expect(await hasAudioStream(media('d0.mp4'))).toBe(false);
    expect(await hasAudioStream(media('d11.mp4'))).toBe(true);
  });

  it('decodes the first frames as a stream and stops ffmpeg on break', async () => {
    const first = await readVideo(media('d0.mp4'), { maxFrames: 3 });
    expect(first.length).toBe(3);
    for (const f of first) expect([f.width, f.height, f.data.length]).toEqual([512, 512, 512 * 512 * 3]);
    expect(meanAbsDiff(first[0].data, first[2].data)).toBeGreaterThan(0); // real, distinct frames

    // Without maxFrames: frames arrive while ffmpeg still runs; breaking out ends it.
    let n = 0;
    let runningDuringStream = 0;
    for await (const f of readVideoFrames(media('d11.mp4'))) {
      if (n === 0) expect(Buffer.from(f.data).length).toBe(512 * 512 * 3);
      runningDuringStream = Math.max(runningDuringStream, ffmpegChildren('d11.mp4'));
      if (++n === 4) break;
    }
    expect(runningDuringStream).toBe(1);
    expect(ffmpegChildren('d11.mp4')).toBe(0);

    const small = await readVideo(media('s13.mp4'), { maxFrames: 2, resize: { width: 128, height: 192 } });
    expect(small.map((f) => [f.width, f.height])).toEqual([[128, 192], [128, 192]]);
  });

  it('encodes mp4 with audio from a video that has some (shortest), skips silent sources', async () => {
    const out = join(dir, 'with_audio.mp4');
    const frames = Array.from({ length: 8 }, (_, k) => frame(64, 48, k));
    const w = openVideoWriter(out, { width: 64, height: 48, fps: 25, audioFrom: { path: media('d11.mp4') } });
    for (const f of frames) await w.write(f);
    await w.close();
    expect(w.audioAdded).toBe(true);
    const info = await probeVideo(out);
    expect(info).toMatchObject({ width: 64, height: 48, fps: 25, frameCount: 8, hasAudio: true, videoCodec: 'h264' });
    expect(info.duration!).toBeLessThan(0.5); // -shortest: cut to the video's 0.32 s
    const back = await readVideo(out);
    expect(back.length).toBe(8);
    expect(meanAbsDiff(back[5].data, frames[5].data)).toBeLessThan(3);

    // d0.mp4 has no audio stream: plain video, as the reference (no audio added).
    const silent = join(dir, 'silent.mp4');
    const r = await writeVideo(silent, frames.slice(0, 3), { fps: { num: 30000, den: 1001 }, audioFrom: media('d0.mp4') });
    expect(r).toEqual({ frames: 3, audioAdded: false });
    const si = await probeVideo(silent);
    expect(si).toMatchObject({ frameCount: 3, hasAudio: false, fpsRational: { num: 30000, den: 1001 } });
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });

  it('backpressure: awaited writes keep at most about one frame queued', async () => {
    const out = join(dir, 'bp.mp4');
    const w = openVideoWriter(out, { width: 256, height: 256, fps: 25, preset: 'ultrafast' });
    let maxQueued = 0;
    for (let k = 0; k < 12; k++) {
      await w.write(frame(256, 256, k));
      maxQueued = Math.max(maxQueued, w.bufferedBytes);
    }
    await w.close();
    expect(maxQueued).toBeLessThanOrEqual(256 * 256 * 3);
    expect((await probeVideo(out)).frameCount).toBe(12);
  });

  it('writes gifs (frames and the reference video2gif)', async () => {
    const out = join(dir, 'anim.gif');
    await writeVideo(out, Array.from({ length: 5 }, (_, k) => frame(32, 32, k * 3)), { fps: 10 });
    expect(readFileSync(out).subarray(0, 6).toString('latin1')).toBe('GIF89a');
    const info = await probeVideo(out);
    expect(info).toMatchObject({ format: 'gif', width: 32, height: 32, frameCount: 5 });
    const g2 = join(dir, 'd0.gif');
    await videoToGif(media('d0.mp4'), g2, { fps: 5, size: 64 });
    const i2 = await probeVideo(g2);
    expect([i2.width, i2.height]).toEqual([64, 64]);
  });

  it('atomic writer: nothing left after an error mid-way, abort, or ffmpeg failing', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const out = join(sub, 'x.mp4');
    const w = openVideoWriter(out, { width: 32, height: 32, fps: 25, audioFrom: media('d11.mp4') });
    await w.write(frame(32, 32, 0));
    await expect(w.write(frame(16, 16, 1))).rejects.toThrow(`Cannot write video "${out}": frame 1 is 16x16, expected 32x32`);
    expect(readdirSync(sub)).toEqual([]);

    const w2 = openVideoWriter(out, { width: 32, height: 32, fps: 25 });
    await w2.write(frame(32, 32, 0));
    await w2.abort();
    expect(readdirSync(sub)).toEqual([]);

    // An unknown encoder makes ffmpeg fail: the error carries its last stderr line.
    const w3 = openVideoWriter(out, { width: 32, height: 32, fps: 25, codec: 'no_such_encoder' });
    const err = await (async () => {
      try {
        for (let k = 0; k < 3; k++) await w3.write(frame(32, 32, k));
        await w3.close();
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toMatch(new RegExp(`^Cannot write video ".*x\\.mp4": ffmpeg failed \\(exit \\d+\\): .+`));
    expect(err?.message).toContain('no_such_encoder');
    expect(err?.message).not.toContain('\n');
    expect(readdirSync(sub)).toEqual([]);
  });

  it('one-line errors: missing file, not a video, still image', async () => {
    const missing = join(dir, 'nope.mp4');
    await expect(probeVideo(missing)).rejects.toThrow(`Cannot read video "${missing}": file not found`);
    await expect(readVideo(missing)).rejects.toThrow(/file not found/);
    const fake = join(dir, 'fake.mp4');
    writeFileSync(fake, 'this is not a video at all');
    await expect(probeVideo(fake)).rejects.toThrow(new RegExp(`Cannot read video ".*fake\\.mp4": not a video \\(.*Invalid data`));
    const jpg = join(dir, 'still.mp4');
    copyFileSync(media('s0.jpg'), jpg);
    await expect(probeVideo(media('s0.jpg'))).rejects.toThrow(/a still image, not a video/);
    expect(() => openVideoWriter(join(dir, 'y.mp4'), { width: 8, height: 8, audioFrom: missing })).toThrow(/audio source .* not found/);
  });
});
