// The page's controls of issue 24 in Chromium: the driving smoothing and
// reference-frame fields reach the library (its log says which frame `auto`
// chose), and the webcam panel has its "set neutral" button. Synthetic
// weights, one frame on wasm (W and G in the page: about a minute here).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ensureWebBuilt, serve, type RunningServer } from '../src/node/serve.js';
import { type PageState, S, describeBrowser, launch, loadSynthetic, openPage } from './helpers/browser.js';
import { MEDIA_DIR } from './helpers/paths.js';

describeBrowser('the page: driving smooth, reference frame, set neutral', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    await ensureWebBuilt(() => undefined, true);
    server = await serve({ port: 0, host: '127.0.0.1' });
    browser = await launch(['--disable-gpu']);
    page = await openPage(browser, server.url, 'wasm');
    page.on('pageerror', (e) => errors.push(e.message));
    await loadSynthetic(page);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a template with driving smooth 1e-5 and reference frame auto: one frame, and the log names the frame auto chose', async () => {
    expect(await page.isVisible('#opt-driving-smooth')).toBe(true);
    expect(await page.inputValue('#opt-driving-smooth')).toBe('0');
    expect(await page.inputValue('#opt-reference-frame')).toBe('0');
    await page.setInputFiles('#source-file', join(MEDIA_DIR, 's0.jpg'));
    await page.setInputFiles('#driving-file', join(MEDIA_DIR, 'laugh.pkl'));
    await page.fill('#opt-driving-smooth', '1e-5');
    await page.fill('#opt-reference-frame', 'auto');
    await page.fill('#opt-max-frames', '1');
    const before = (await S(page)).animations;
    await page.click('#animate');
    await page.waitForFunction(
      (n) => {
        const s = (window as unknown as { lpState: PageState }).lpState;
        return !s.busy && (s.animations > n || s.lastError !== '');
      },
      before,
      { timeout: 600_000, polling: 1000 },
    );
    const s = await S(page);
    expect(s.lastError).toBe('');
    expect(s.lastResult?.frames).toBe(1);
    const log = await page.evaluate(() => (window as unknown as { lpState: { log: string[] } }).lpState.log);
    expect(log.join('\n')).toMatch(/reference frame: 0 of the driving \(auto: the most neutral of 1 frames/);
    // The webcam panel's button exists (hidden until the webcam runs); a click without a webcam does nothing.
    expect(await page.$('#live-neutral')).not.toBeNull();
    await page.evaluate(() => document.getElementById('live-neutral')!.click());
    expect(errors).toEqual([]);
  });
});
