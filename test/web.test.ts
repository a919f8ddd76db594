/**
 * The web page in Debian's Chromium (playwright-core), against
 * `liveportrait serve` on 127.0.0.1: synthetic weights, an animation on wasm
 * checked with ffmpeg, errors, an image edit checked against the library, and
 * WebGPU (SwiftShader) against wasm. Screenshots go to out/screenshots/.
 *
 * Skipped with a printed reason when Chromium is missing (LP_CHROMIUM, else
 * /usr/bin/chromium); with CI=true that is a failure. A few minutes on 2
 * cores: synthetic-weight networks take tens of seconds a frame on wasm.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ensureWebBuilt, serve, type RunningServer } from '../src/node/serve.js';
import { runFfmpeg } from '../src/node/ffmpeg.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';
import { toRetargetEdit } from '../web/src/edits.js';
import { type PageState, S, SHOTS, describeBrowser, launch, loadSynthetic, openPage } from './helpers/browser.js';
import { MEDIA_DIR } from './helpers/parity.js';

/** Wait until the page is idle with a run done after the `before`-th, or an error shown. */
async function waitForRun(page: Page, before: number, timeout: number): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const s = (window as unknown as { lpState: PageState }).lpState;
      return !s.busy && (s.animations > n || s.lastError !== '');
    },
    before,
    { timeout, polling: 1000 },
  );
}

async function animateAndWait(page: Page, frames: number): Promise<void> {
  const before = (await S(page)).animations;
  await page.fill('#opt-max-frames', String(frames));
  await page.click('#animate');
  await waitForRun(page, before, 600_000);
}

describeBrowser('web page in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let work: string;
  let camera: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    work = mkdtempSync(join(tmpdir(), 'lp-web-'));
    await ensureWebBuilt(() => undefined, true);
    server = await serve({ port: 0, host: '127.0.0.1' });
    // a fake camera that plays one second of d0.mp4 (Chromium loops it), for the webcam live test
    camera = join(work, 'camera.y4m');
    const cam = await runFfmpeg(['-y', '-i', join(MEDIA_DIR, 'd0.mp4'), '-t', '1', '-r', '10', '-vf', 'scale=480:480,pad=640:480:80:0,setsar=1', '-pix_fmt', 'yuv420p', camera]);
    expect(cam.code, cam.stderr.slice(-400)).toBe(0);
    browser = await launch(['--disable-gpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${camera}`]);
    page = await openPage(browser, server.url, 'wasm');
    console.log(`web: ${await page.textContent('#backend-status')}`);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('serves the page with cross-origin isolation and nothing outside it', async () => {
    const ok = await fetch(`${server.url}index.html`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(ok.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    for (const bad of ['../package.json', '%2e%2e/package.json', '..%2fpackage.json', 'assets/../../package.json', '.git/config', 'nothing.js'])
      expect((await fetch(`${server.url}${bad}`)).status, bad).toBe(404);
    expect((await fetch(`${server.url}wasm/tfjs-backend-wasm-simd.wasm`)).headers.get('content-type')).toBe('application/wasm');
    const s = await S(page);
    expect(s.backend).toBe('wasm');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    // threaded wasm: as many threads as the browser has logical cores (tfjs-backend-wasm's pool holds at most 8)
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const status = (await page.textContent('#backend-status')) ?? '';
    expect(status).toMatch(/cross-origin isolated/);
    expect(Number(/\((\d+) threads?/.exec(status)?.[1]), status).toBe(Math.min(cores, 8));
    expect(s.threads).toBe(Math.min(cores, 8));
  });

  it('animates s0.jpg with a driving video for 2 frames on wasm: an mp4 with 2 frames, the size of the photo, and the audio; and the GIF asked for, with 2 frames', async () => {
    await loadSynthetic(page);
    // d0.mp4 has no sound: give it a tone, so that the audio copy is checked
    const driving = join(work, 'd0_tone.mp4');
    const mux = await runFfmpeg(['-y', '-i', join(MEDIA_DIR, 'd0.mp4'), '-f', 'lavfi', '-i', 'sine=frequency=440:duration=3', '-map', '0:v', '-map', '1:a', '-c:v', 'copy', '-c:a', 'aac', '-shortest', driving]);
    expect(mux.code, mux.stderr.slice(-400)).toBe(0);
    await page.setInputFiles('#source-file', join(MEDIA_DIR, 's0.jpg'));
    await page.setInputFiles('#driving-file', driving);
    await page.check('#opt-gif');
    await animateAndWait(page, 2);
    await page.uncheck('#opt-gif');
    const s = await S(page);
    expect(s.lastError).toBe('');
    expect(s.lastResult?.frames).toBe(2);
    console.log(`web: 2 frames on wasm in ${s.lastResult?.seconds.toFixed(1)} s (${await page.textContent('#progress-text')})`);
    await page.waitForFunction(() => (document.getElementById('result-video') as HTMLVideoElement).readyState >= 2, null, { timeout: 30_000 }).catch(() => undefined);
    await page.screenshot({ path: join(SHOTS, 'animate.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-result')]);
    const file = join(work, download.suggestedFilename());
    await download.saveAs(file);
    expect(download.suggestedFilename()).toBe('s0--d0_tone.mp4');
    const probe = await runFfmpeg(['-i', file, '-map', '0:v:0', '-f', 'null', '-']);
    expect(probe.code, probe.stderr.slice(-400)).toBe(0);
    expect(probe.stderr).toMatch(/Video: h264.*600x704/);
    expect(probe.stderr).toMatch(/Audio: aac/);
    const frames = [...probe.stderr.matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1]));
    expect(frames.at(-1)).toBe(2);
    // the GIF: the same picture, 2 frames of 1/25 s
    const [gifDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download-gif')]);
    expect(gifDownload.suggestedFilename()).toBe('s0--d0_tone.gif');
    const gif = join(work, gifDownload.suggestedFilename());
    await gifDownload.saveAs(gif);
    expect(readFileSync(gif).subarray(0, 6).toString('latin1')).toBe('GIF89a');
    const gifProbe = await runFfmpeg(['-i', gif, '-f', 'null', '-']);
    expect(gifProbe.code, gifProbe.stderr.slice(-400)).toBe(0);
    expect(gifProbe.stderr).toMatch(/Video: gif.*600x704/);
    // each frame's delay (graphic control extensions: 21 F9 04, flags, delay in 1/100 s): 1/25 s
    const bytes = readFileSync(gif);
    const delays: number[] = [];
    for (let i = 0; i + 5 < bytes.length; i++) if (bytes[i] === 0x21 && bytes[i + 1] === 0xf9 && bytes[i + 2] === 4) delays.push(bytes.readUInt16LE(i + 4));
    expect(delays).toEqual([4, 4]);
    const gifFrames = [...gifProbe.stderr.matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1]));
    expect(gifFrames.at(-1)).toBe(2);
  });

  it('a file that is not an image, and a photo with no face, give a message; the page still animates afterwards', async () => {
    await page.setInputFiles('#source-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') });
    await expect.poll(() => page.textContent('#message')).toMatch(/notes\.txt is not an image or a video/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SHOTS, 'error.png') });
    // a picture with no face: a flat grey PNG made by ffmpeg
    const blank = join(work, 'blank.png');
    expect((await runFfmpeg(['-y', '-f', 'lavfi', '-i', 'color=c=gray:s=320x240', '-frames:v', '1', blank])).code).toBe(0);
    await page.setInputFiles('#source-file', blank);
    await page.setInputFiles('#driving-file', join(MEDIA_DIR, 'd0.mp4'));
    await animateAndWait(page, 1);
    expect((await S(page)).lastError).toMatch(/no face found in the source blank\.png/);
    expect(await page.isVisible('#download-result')).toBe(false);
    // and it still works
    await page.evaluate(() => ((window as unknown as { lpState: PageState }).lpState.lastError = ''));
    await page.setInputFiles('#source-file', join(MEDIA_DIR, 's0.jpg'));
    await animateAndWait(page, 1);
    const s = await S(page);
    expect(s.lastError).toBe('');
    expect(s.lastResult?.frames).toBe(1);
    expect(await page.isVisible('#download-result')).toBe(true);
  });

  it('webcam live driving (a fake camera playing d0.mp4) renders frames on wasm: a frame rate, a picture that is not blank; stop ends the camera and the frames', { timeout: 1_200_000 }, async () => {
    if (!(await S(page)).weights) await loadSynthetic(page);
    await page.evaluate(() => ((window as unknown as { lpState: PageState }).lpState.lastError = ''));
    await page.setInputFiles('#source-file', join(MEDIA_DIR, 's0.jpg'));
    const t0 = Date.now();
    await page.click('#driving-live');
    await page.waitForFunction(() => {
      const s = (window as unknown as { lpState: PageState }).lpState;
      return s.liveFrames >= 2 || s.lastError !== '';
    }, null, { timeout: 900_000, polling: 1000 });
    expect((await S(page)).lastError).toBe('');
    const fps = (await page.textContent('#live-fps')) ?? '';
    console.log(`web: webcam live, 2 frames after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${fps}`);
    expect(fps).toMatch(/^\d+\.\d\d frames\/s \(\d+\.\d\d s a frame\)$/);
    expect(Number(fps.split(' ')[0])).toBeGreaterThan(0);
    const camera = await page.evaluate(() => {
      const v = document.getElementById('live-video') as HTMLVideoElement;
      return { w: v.videoWidth, h: v.videoHeight, live: (v.srcObject as MediaStream | null)?.getVideoTracks()[0]?.readyState };
    });
    expect(camera).toEqual({ w: 640, h: 480, live: 'live' });
    // the animated picture: the photo's size (pasted back), and not one flat colour
    const pic = await page.evaluate(() => {
      const c = document.getElementById('live-canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      let sq = 0;
      const n = d.length / 4;
      for (let i = 0; i < d.length; i += 4) {
        const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
        sum += y;
        sq += y * y;
      }
      const mean = sum / n;
      // against the photo itself (the source preview): the face region is animated
      const img = document.querySelector('#source-preview img') as HTMLImageElement;
      const o = new OffscreenCanvas(img.naturalWidth, img.naturalHeight).getContext('2d')!;
      o.drawImage(img, 0, 0);
      const src = o.getImageData(0, 0, img.naturalWidth, img.naturalHeight).data;
      let changed = 0;
      if (src.length === d.length) for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - src[i]) + Math.abs(d[i + 1] - src[i + 1]) + Math.abs(d[i + 2] - src[i + 2]) > 30) changed++;
      return { w: c.width, h: c.height, mean, std: Math.sqrt(sq / n - mean * mean), changed };
    });
    console.log(`web: live canvas ${pic.w}x${pic.h}, mean ${pic.mean.toFixed(1)}, std ${pic.std.toFixed(1)}, ${pic.changed} pixels differ from the photo`);
    expect([pic.w, pic.h]).toEqual([600, 704]);
    expect(pic.std).toBeGreaterThan(10);
    // the pasted-back face crop (about 190x190 pixels here) differs; the rest of the photo stays
    expect(pic.changed).toBeGreaterThan(5000);
    expect(pic.changed).toBeLessThan(600 * 704 * 0.5);
    await page.screenshot({ path: join(SHOTS, 'webcam-live.png'), fullPage: true });
    // stop: the camera ends, and no frame is shown after
    await page.click('#driving-live');
    const stopped = await page.evaluate(() => ({ src: (document.getElementById('live-video') as HTMLVideoElement).srcObject, frames: (window as unknown as { lpState: PageState }).lpState.liveFrames }));
    expect(stopped.src).toBeNull();
    await new Promise((r) => setTimeout(r, 5000));
    expect((await S(page)).liveFrames).toBe(stopped.frames);
    expect((await S(page)).lastError).toBe('');
  });

  it('video editing: s13.mp4 with the lips retargeted (2 frames) and kept silent (1 frame): MP4s with those frame counts, the video\'s size and its audio', { timeout: 1_800_000 }, async () => {
    if (!(await S(page)).weights) await loadSynthetic(page);
    await page.evaluate(() => ((window as unknown as { lpState: PageState }).lpState.lastError = ''));
    await page.click('.tabs button[data-tab="vedit"]');
    await page.setInputFiles('#vedit-source', join(MEDIA_DIR, 's13.mp4'));
    const run = async (frames: number, silent: boolean, name: string) => {
      const before = (await S(page)).animations;
      await page.fill('#vedit-max-frames', String(frames));
      await page.evaluate((quiet) => {
        (document.getElementById('vedit-silent') as HTMLInputElement).checked = quiet;
        const lip = document.getElementById('vedit-lip') as HTMLInputElement;
        lip.value = '0.5';
        lip.dispatchEvent(new Event('input'));
      }, silent);
      const t0 = Date.now();
      await page.click('#vedit-run');
      await waitForRun(page, before, 900_000);
      const s = await S(page);
      expect(s.lastError).toBe('');
      expect(s.lastResult?.frames).toBe(frames);
      console.log(`web: video editing (${silent ? 'silent' : 'lip 0.5'}), ${frames} frame(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${await page.textContent('#vedit-progress-text')}`);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#vedit-download')]);
      expect(download.suggestedFilename()).toBe(name);
      const file = join(work, name);
      await download.saveAs(file);
      const probe = await runFfmpeg(['-i', file, '-map', '0:v:0', '-f', 'null', '-']);
      expect(probe.code, probe.stderr.slice(-400)).toBe(0);
      expect(probe.stderr).toMatch(/Video: h264.*720x1080/);
      expect(probe.stderr).toMatch(/Audio: aac/);
      const counted = [...probe.stderr.matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1]));
      expect(counted.at(-1)).toBe(frames);
    };
    await run(2, false, 's13--lip-0.5.mp4');
    await page.screenshot({ path: join(SHOTS, 'video-editing.png'), fullPage: true });
    await run(1, true, 's13--silent.mp4');
  });

  it('image editing: a slider move changes the output, which equals the library retarget on the same backend within ±1', { timeout: 1_200_000 }, async () => {
    if (!(await S(page)).weights) await loadSynthetic(page);
    const t0 = Date.now();
    await page.click('.tabs button[data-tab="edit"]');
    await page.setInputFiles('#edit-source', join(MEDIA_DIR, 's0.jpg'));
    await page.waitForFunction(() => (window as unknown as { lpState: PageState }).lpState.editDone >= 1, null, { timeout: 300_000, polling: 500 });
    console.log(`web: edit source ready and first render after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const first = await page.evaluate(() => Array.from((window as unknown as { lpState: PageState }).lpState.editCrop!.data));
    await page.evaluate(() => {
      const el = document.getElementById('s-smile') as HTMLInputElement;
      el.value = '0.8';
      el.dispatchEvent(new Event('input'));
      el.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => (window as unknown as { lpState: PageState }).lpState.editDone >= 2, null, { timeout: 300_000, polling: 500 });
    const s = await page.evaluate(() => {
      const st = (window as unknown as { lpState: PageState }).lpState;
      return { crop: Array.from(st.editCrop!.data), w: st.editCrop!.width, src: Array.from(st.editSourceCrop!.data), ratios: st.editSourceRatios!, params: st.editParams!, seconds: st.editSeconds };
    });
    console.log(`web: one slider edit in ${s.seconds.toFixed(1)} s on wasm`);
    await page.screenshot({ path: join(SHOTS, 'image-editing.png'), fullPage: true });
    expect(s.params.smile).toBeCloseTo(0.8);
    let changed = 0;
    for (let i = 0; i < first.length; i++) if (first[i] !== s.crop[i]) changed++;
    expect(changed).toBeGreaterThan(1000);
    // the library, here in Node on wasm, on the same 256² crop and landmark ratios
    const rgb = (rgba: number[]) => Uint8Array.from(rgba.filter((_, i) => i % 4 !== 3));
    const t1 = Date.now();
    const lp = LivePortrait.synthetic(1, { lipArray: new Float32Array(63) });
    try {
      const src = await lp.prepareSource({ data: rgb(s.src), width: 256, height: 256 }, { eyeRatio: s.ratios.eyeRatio, lipRatio: s.ratios.lipRatio });
      const out = await lp.retarget(src, toRetargetEdit(s.params, s.ratios));
      lp.disposeSource(src);
      const page512 = rgb(s.crop);
      expect(out.width).toBe(s.w);
      let worst = 0;
      for (let i = 0; i < out.rgb.length; i++) worst = Math.max(worst, Math.abs(out.rgb[i] - page512[i]));
      console.log(`web: page edit vs library retarget: max |diff| ${worst} (library side ${((Date.now() - t1) / 1000).toFixed(0)} s)`);
      expect(worst).toBeLessThanOrEqual(1);
    } finally {
      await lp.dispose();
    }
  });

  it('WebGPU starts in Chromium (SwiftShader); F, M and S in the page equal wasm within the parity tolerances', { timeout: 1_800_000 }, async () => {
    const gpuBrowser = await launch(['--enable-unsafe-webgpu']);
    try {
      const gp = await openPage(gpuBrowser, server.url, 'webgpu');
      const status = await gp.textContent('#backend-status');
      console.log(`web: ${status}`);
      expect((await S(gp)).backend).toBe('webgpu');
      await gp.screenshot({ path: join(SHOTS, 'webgpu.png') });
      const image = join(MEDIA_DIR, 's0.jpg');
      const runProbe = async () => {
        await loadSynthetic(gp);
        const bytes = readFileSync(image);
        await gp.evaluate((b64) => {
          const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          (window as unknown as { lpProbe(f: File): void }).lpProbe(new File([bin], 's0.jpg', { type: 'image/jpeg' }));
        }, bytes.toString('base64'));
        await gp.waitForFunction(() => !!(window as unknown as { lpState: PageState }).lpState.probe, null, { timeout: 900_000, polling: 500 });
      };
      await runProbe();
      await gp.evaluate(() => {
        const w = window as unknown as { lpState: PageState; gpuProbe: unknown };
        w.gpuProbe = w.lpState.probe;
      });
      // the same page, switched to wasm
      await gp.evaluate(() => {
        (document.getElementById('backend') as HTMLSelectElement).value = 'wasm';
        document.getElementById('backend-apply')!.click();
      });
      await gp.waitForFunction(() => (window as unknown as { lpState: PageState }).lpState.backend === 'wasm', null, { timeout: 300_000 });
      await runProbe();
      const diffs = await gp.evaluate(() => {
        const w = window as unknown as { lpState: PageState; gpuProbe: { outputs: Record<string, number[]>; backend: string } };
        const a = w.gpuProbe.outputs;
        const b = w.lpState.probe!.outputs;
        const out: Record<string, number> = { backends: 0 };
        for (const k of Object.keys(a)) {
          let m = 0;
          for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
          out[k] = a[k].length === b[k].length ? m : Infinity;
        }
        out.backends = w.gpuProbe.backend === 'webgpu' && w.lpState.probe!.backend === 'wasm' ? 1 : 0;
        return out;
      });
      console.log(`web: webgpu vs wasm max |diff| ${JSON.stringify(diffs)}`);
      expect(diffs.backends).toBe(1);
      expect(diffs.F).toBeLessThanOrEqual(1e-4);
      for (const k of ['M.pitch', 'M.yaw', 'M.roll', 'M.t', 'M.exp', 'M.scale', 'M.kp']) expect(diffs[k], k).toBeLessThanOrEqual(2e-4);
      for (const k of ['S.stitching', 'S.eye', 'S.lip']) expect(diffs[k], k).toBeLessThanOrEqual(1e-5);
    } finally {
      await gpuBrowser.close();
    }
  });
});
