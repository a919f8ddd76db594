// The page's backend `auto` (issue 20) in headless Chromium, which has no GPU
// here: with WebGPU enabled its only adapter is SwiftShader, which auto passes
// over to wasm, saying why on the page; asked for by name, webgpu runs on it.
// Without --enable-unsafe-webgpu there is no adapter at all. No weights are
// loaded: only the backend starts (a few seconds).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { ensureWebBuilt, serve, type RunningServer } from '../src/node/serve.js';
import { S, describeBrowser, launch, openPage } from './helpers/browser.js';

describeBrowser(
  "the page's backend auto",
  () => {
    let server: RunningServer;
    let browser: Browser;

    beforeAll(async () => {
      await ensureWebBuilt(() => undefined, true);
      server = await serve({ port: 0, host: '127.0.0.1' });
      browser = await launch(['--enable-unsafe-webgpu']);
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it('auto passes over SwiftShader to wasm, and the backend line says the adapter is software', async () => {
      const page = await openPage(browser, server.url, 'auto');
      try {
        const status = (await page.textContent('#backend-status')) ?? '';
        console.log(`web auto: ${status}`);
        const s = await S(page);
        expect(s.backend).toBe('wasm');
        expect(s.backendNote).toMatch(/^webgpu adapter .*swiftshader.* is software: choose WebGPU above to use it$/i);
        expect(status).toMatch(/^running on wasm .* — webgpu adapter .*swiftshader.* is software/i);
      } finally {
        await page.close();
      }
    });

    it('webgpu asked for by name runs on SwiftShader', async () => {
      const page = await openPage(browser, server.url, 'webgpu');
      try {
        const status = (await page.textContent('#backend-status')) ?? '';
        console.log(`web webgpu: ${status}`);
        const s = await S(page);
        expect(s.backend).toBe('webgpu');
        expect(s.backendNote).toBe('');
        expect(status).toMatch(/^running on webgpu — adapter google swiftshader$/);
      } finally {
        await page.close();
      }
    });

    it('without WebGPU enabled (no adapter at all) auto takes wasm and says so', async () => {
      const plain = await launch(['--disable-gpu']);
      try {
        const page = await openPage(plain, server.url, 'auto');
        const s = await S(page);
        console.log(`web auto, no adapter: ${await page.textContent('#backend-status')}`);
        expect(s.backend).toBe('wasm');
        expect(s.backendNote).toBe('no webgpu adapter');
      } finally {
        await plain.close();
      }
    });
  },
  { needsMedia: false },
);
