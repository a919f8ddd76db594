/**
 * One-off measurement (not a test): the page on wasm animates s0.jpg by d0.mp4
 * for FRAMES frames (default 30) with synthetic weights; the worker's memory
 * (tfjs tensors and bytes, the wasm heap) and Chromium's
 * performance.measureUserAgentSpecificMemory() are printed before, after 5
 * frames and at the end, with the page's seconds per frame.
 *
 *   npx tsx scripts/web-memory.ts      (LP_MEDIA_DIR, FRAMES, LP_CHROMIUM)
 */
import { ensureWebBuilt, serve } from '../src/node/serve.js';
import { chromium } from 'playwright-core';
const MEDIA = process.env.LP_MEDIA_DIR ?? new URL('../../shared/media', import.meta.url).pathname;
const N = Number(process.env.FRAMES ?? 30);
await ensureWebBuilt(() => undefined, true);
const server = await serve({ port: 0, host: '127.0.0.1' });
const browser = await chromium.launch({ executablePath: process.env.LP_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--enable-blink-features=ForceEagerMeasureMemory'] });
const page = await browser.newPage();
page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
await page.goto(`${server.url}?backend=wasm`);
await page.waitForFunction(() => (window as any).lpState.backend !== '', null, { timeout: 120000 });
console.log(await page.textContent('#backend-status'));
await page.evaluate(() => { (document.querySelector('input[name="weights-mode"][value="synthetic"]') as HTMLInputElement).checked = true; document.getElementById('weights-load')!.click(); });
await page.waitForFunction(() => (window as any).lpState.weights !== '', null, { timeout: 600000 });
const measure = async (label: string) => {
  await page.evaluate(() => (window as any).lpMemory());
  await page.waitForFunction(() => !!(window as any).lpState.memory, null, { timeout: 600000, polling: 200 });
  const worker = await page.evaluate(() => (window as any).lpState.memory);
  const ua = await page.evaluate(async () => {
    const r = await (performance as any).measureUserAgentSpecificMemory();
    const by: Record<string, number> = {};
    for (const b of r.breakdown) {
      const scope = b.attribution.map((a: any) => a.scope).join('+') || 'other';
      const key = `${scope}:${b.types.join('+') || '-'}`;
      by[key] = (by[key] ?? 0) + b.bytes;
    }
    return { total: r.bytes, by };
  });
  const mb = (x: number) => (x / 2 ** 20).toFixed(1);
  console.log(`${label}: worker tensors ${worker.numTensors}, tensor bytes ${mb(worker.numBytes)} MiB, wasm heap ${mb(worker.wasmHeapBytes)} MiB; measureUserAgentSpecificMemory ${mb(ua.total)} MiB ${JSON.stringify(Object.fromEntries(Object.entries(ua.by).map(([k, v]) => [k, mb(v as number)])))}; progress: ${await page.textContent('#progress-text')}`);
};
await measure('before');
await page.setInputFiles('#source-file', `${MEDIA}/s0.jpg`);
await page.setInputFiles('#driving-file', `${MEDIA}/d0.mp4`);
await page.fill('#opt-max-frames', String(N));
const t0 = Date.now();
await page.click('#animate');
let at5 = false;
for (;;) {
  const s = await page.evaluate(() => ({ busy: (window as any).lpState.busy, err: (window as any).lpState.lastError, text: document.getElementById('progress-text')!.textContent }));
  if (s.err) { console.log('error', s.err); break; }
  const m = /Animating: (\d+)/.exec(s.text ?? '');
  if (!at5 && m && Number(m[1]) >= 5) { at5 = true; console.log(`5 frames after ${((Date.now() - t0) / 1000).toFixed(0)} s`); await measure('after 5 frames'); }
  if (!s.busy && (await page.evaluate(() => (window as any).lpState.animations)) > 0) break;
  await new Promise((r) => setTimeout(r, 1000));
}
console.log(`${N} frames done after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
await measure(`after ${N} frames (done)`);
await browser.close(); await server.close();
