/**
 * The page's official-weights download in Debian's Chromium (playwright-core)
 * against the stand-in hub (test/helpers/hub_server.ts) on 127.0.0.1, the
 * page served by `liveportrait serve` on another port (cross-origin, the
 * page cross-origin isolated) and pointed at the hub with `?hf=URL`:
 *
 * 1. a download with progress: the five official-format checkpoints at their
 *    real shapes (520 MB, the synthetic weights of seed 1), each reported up
 *    to its size, checked against its LFS sha256 and kept in Cache Storage;
 *    F, M and S built from them compute what the synthetic seed-1 networks do;
 * 2. a second visit: the weights from Cache Storage, no request to the hub;
 * 3. a file served corrupt: a one-line sha256 error on the page, not kept;
 * 4. a hub that cannot be reached: a clear message on the page.
 *
 * W and G are parsed and signature-checked in the page but built only when
 * a frame is rendered (about a minute of G on wasm here): not done here.
 * Skipped with a printed reason without Chromium (a failure under CI=true).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureWebBuilt, serve, type RunningServer } from '../src/node/serve.js';
import { HF_REPO, officialPath } from '../src/models/checkpoints.js';
import { MODULES } from '../src/models/registry.js';
import { WEIGHTS_CACHE_NAME } from '../src/weights/hub_download.js';
import { type PageState, SHOTS, describeBrowser, launch, loadWeightsIn, openPage, waitForBackend } from './helpers/browser.js';
import { type HubServer, closedPort, sha256Hex, startHubServer } from './helpers/hub_server.js';
import { officialFormatPth } from './helpers/pth_writer.js';

const LABEL = 'official human weights (HuggingFace, sha256 checked)';
const CACHED_LABEL = 'official human weights (HuggingFace, from the cache, sha256 checked)';

/** What the page keeps in Cache Storage: each key with its recorded sha256 and size. */
const cached = (page: Page) =>
  page.evaluate(async (name) => {
    const c = await caches.open(name);
    return Promise.all((await c.keys()).map(async (r) => ({ url: r.url, sha256: (await c.match(r))!.headers.get('x-sha256'), size: Number((await c.match(r))!.headers.get('content-length')) })));
  }, WEIGHTS_CACHE_NAME);

/** Probe F, M and S of the loaded weights with a 256² test picture drawn in the page (no media needed); the outputs stay in the page, under window[keep]. */
async function probe(page: Page, keep: string): Promise<void> {
  await page.evaluate(async () => {
    const c = new OffscreenCanvas(256, 256);
    const g = c.getContext('2d')!;
    const grad = g.createLinearGradient(0, 0, 256, 256);
    grad.addColorStop(0, '#d9a07a');
    grad.addColorStop(1, '#3b4a6b');
    g.fillStyle = grad;
    g.fillRect(0, 0, 256, 256);
    g.fillStyle = '#201010';
    g.fillRect(90, 100, 20, 12);
    g.fillRect(146, 100, 20, 12);
    g.fillRect(105, 170, 46, 10);
    const blob = await c.convertToBlob({ type: 'image/png' });
    (window as unknown as { lpProbe(f: File): void }).lpProbe(new File([blob], 'probe.png', { type: 'image/png' }));
  });
  await page.waitForFunction(() => {
    const s = (window as unknown as { lpState: PageState }).lpState;
    return !!s.probe || s.lastError !== '';
  }, null, { timeout: 300_000, polling: 500 });
  const error = await page.evaluate((k) => {
    const w = window as unknown as Record<string, unknown> & { lpState: PageState };
    w[k] = w.lpState.probe?.outputs;
    w.lpState.probe = undefined;
    return w.lpState.lastError;
  }, keep);
  expect(error).toBe('');
}

describeBrowser(
  'the official weights in the page, from a stand-in hub',
  () => {
    let hub: HubServer;
    let server: RunningServer;
    let browser: Browser;
    let ctx: BrowserContext;
    const files = new Map<string, Uint8Array>();
    const hf = () => `hf=${encodeURIComponent(hub.url)}`;
    const keyOf = (file: string) => `${hub.url}/${HF_REPO}/resolve/main/${file}`;

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      const t0 = Date.now();
      for (const m of MODULES) files.set(officialPath(m), officialFormatPth(m, 1));
      const mb = [...files.values()].reduce((a, b) => a + b.length, 0) / 1e6;
      console.log(`web hub: five official-format checkpoints, ${mb.toFixed(0)} MB, made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      hub = await startHubServer(files);
      await ensureWebBuilt(() => undefined, true);
      server = await serve({ port: 0, host: '127.0.0.1' });
      browser = await launch(['--disable-gpu']);
      ctx = await browser.newContext();
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await hub?.close();
    });

    it('downloads the five checkpoints with progress, checks each sha256 and keeps them; the networks built from them compute as the synthetic seed-1 ones', async () => {
      const page = await openPage(ctx, server.url, 'wasm', hf());
      expect(new URL(server.url).origin).not.toBe(new URL(hub.url).origin);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      hub.hits.length = 0;
      const t0 = Date.now();
      let during = '';
      const s = await loadWeightsIn(page, 'hf', {
        // halfway through a big file: the bar and the file's megabytes on the page
        whileLoading: async () => {
          await page.waitForFunction(() => Object.values((window as unknown as { lpState: PageState }).lpState.weightsFiles).some((f) => f.total > 100e6 && f.loaded > 0.2 * f.total && f.loaded < 0.8 * f.total), null, { timeout: 300_000, polling: 20 });
          expect(await page.isVisible('#weights-progress')).toBe(true);
          during = (await page.textContent('#weights-status')) ?? '';
          await page.locator('#setup').screenshot({ path: join(SHOTS, 'hub-download-progress.png') });
        },
      });
      const seconds = (Date.now() - t0) / 1000;
      expect(during).toMatch(/^liveportrait\/base_models\/\w+\.pth: \d+\.\d \/ (112\.5|182\.2|221\.8) MB$/);
      expect(s.lastError).toBe('');
      expect(s.weights).toBe(LABEL);
      expect(await page.textContent('#weights-status')).toMatch(new RegExp(`^${LABEL.replace(/[()]/g, '\\$&')} — ready \\(\\d+\\.\\d s\\)$`));
      expect(await page.isVisible('#weights-progress')).toBe(false);
      // progress: each file reported from 0 up to its size, in steps for the big ones
      expect(Object.keys(s.weightsFiles).sort()).toEqual([...files.keys()].sort());
      for (const [file, bytes] of files) {
        expect(s.weightsFiles[file], file).toMatchObject({ loaded: bytes.length, total: bytes.length });
        if (bytes.length > 10e6) expect(s.weightsFiles[file].updates, file).toBeGreaterThan(10);
      }
      // what the hub saw: one listing per folder, and each file's body once, in full
      const gets = hub.hits.filter((h) => h.method === 'GET');
      const folders = [...new Set([...files.keys()].map((f) => f.slice(0, f.lastIndexOf('/'))))];
      expect(gets.filter((h) => h.path.startsWith('/api/')).map((h) => h.path)).toEqual(folders.map((f) => `/api/models/${HF_REPO}/tree/main/${f}`));
      expect(gets.filter((h) => h.path.startsWith(`/${HF_REPO}/resolve/main/`)).map((h) => h.path.split('/resolve/main/')[1]).sort()).toEqual([...files.keys()].sort());
      const bodies = gets.filter((h) => h.path.startsWith('/cdn/') && h.range === undefined).map((h) => h.path.slice(5));
      expect(bodies.sort()).toEqual([...files.values()].map((b) => sha256Hex(b)).sort());
      // kept: each under its resolve URL, with its sha256 and size
      const kept = await cached(page);
      expect(kept.sort((a, b) => a.url.localeCompare(b.url))).toEqual(
        [...files].map(([file, bytes]) => ({ url: keyOf(file), sha256: sha256Hex(bytes), size: bytes.length })).sort((a, b) => a.url.localeCompare(b.url)),
      );
      // anything else was a CORS preflight (the library's Range and Accept headers)
      const others = hub.hits.filter((h) => h.method !== 'GET');
      expect(others.every((h) => h.method === 'OPTIONS')).toBe(true);
      const kinds = new Map<string, number>();
      for (const h of gets) {
        const kind = h.path.startsWith('/api/') ? 'listing' : h.path.startsWith('/cdn/') ? `cdn ${h.range ?? 'full'}` : `resolve ${h.range ?? 'full'}`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      console.log(`web hub: downloaded, checked, kept and loaded in ${seconds.toFixed(1)} s (${await page.textContent('#weights-status')}); requests: ${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')}, preflights ×${others.length}`);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.locator('#setup').screenshot({ path: join(SHOTS, 'hub-download.png') });

      // F, M and S built from the downloaded files equal the synthetic seed-1 networks, output for output
      const t1 = Date.now();
      await probe(page, 'hubProbe');
      expect((await loadWeightsIn(page, 'synthetic')).weights).toMatch(/SYNTHETIC weights, seed 1/);
      await probe(page, 'syntheticProbe');
      const cmp = await page.evaluate(() => {
        const w = window as unknown as Record<'hubProbe' | 'syntheticProbe', Record<string, number[]>>;
        const [a, b] = [w.hubProbe, w.syntheticProbe];
        const diff: Record<string, number> = {};
        for (const k of Object.keys(b)) diff[k] = a[k]?.length === b[k].length ? b[k].reduce((m, x, i) => Math.max(m, Math.abs(x - a[k][i])), 0) : Infinity;
        return { keys: Object.keys(a).sort(), diff, sizeF: b.F.length, spreadF: Math.max(...b.F.slice(0, 4096)) - Math.min(...b.F.slice(0, 4096)) };
      });
      expect(cmp.keys).toEqual(Object.keys(cmp.diff).sort());
      expect(cmp.keys).toEqual(expect.arrayContaining(['F', 'M.kp', 'M.exp', 'S.stitching', 'S.eye', 'S.lip']));
      for (const [k, d] of Object.entries(cmp.diff)) expect(d, k).toBe(0);
      expect(cmp.sizeF).toBe(32 * 16 * 64 * 64);
      expect(cmp.spreadF).toBeGreaterThan(0);
      console.log(`web hub: F, M and S outputs equal the synthetic seed-1 ones (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
      await page.close();
    });

    it('a second visit loads the weights from Cache Storage with no request to the hub', async () => {
      const page = await openPage(ctx, server.url, 'wasm', hf());
      hub.hits.length = 0;
      const t0 = Date.now();
      const s = await loadWeightsIn(page, 'hf');
      const seconds = (Date.now() - t0) / 1000;
      expect(s.lastError).toBe('');
      expect(s.weights).toBe(CACHED_LABEL);
      expect(hub.hits).toEqual([]);
      // a cached file is reported once, complete
      for (const [file, bytes] of files) expect(s.weightsFiles[file], file).toEqual({ loaded: bytes.length, total: bytes.length, updates: 1 });
      console.log(`web hub: second visit, from the cache in ${seconds.toFixed(1)} s, 0 requests to the hub`);
      await page.close();
    });

    it('a file served corrupt (bytes that do not match its LFS sha256): one line on the page naming the file, and it is not kept', async () => {
      const fresh = await browser.newContext(); // an empty Cache Storage
      try {
        const page = await openPage(fresh, server.url, 'wasm', hf());
        const bad = officialPath('motion_extractor');
        hub.corrupt.add(bad);
        const s = await loadWeightsIn(page, 'hf');
        const line = /^liveportrait\/base_models\/motion_extractor\.pth from http:\/\/127\.0\.0\.1:\d+: sha256 mismatch \(expected ([0-9a-f]{64}), got ([0-9a-f]{64})\); the download was corrupt and was not kept, try again$/;
        expect(s.lastError).toMatch(line);
        const [, expected, got] = line.exec(s.lastError)!;
        expect(expected).toBe(sha256Hex(files.get(bad)!));
        expect(got).not.toBe(expected);
        expect(s.weights).toBe('');
        expect(await page.isVisible('#message')).toBe(true);
        expect(await page.textContent('#message')).toBe(s.lastError);
        expect(await page.textContent('#weights-status')).toBe('weights failed to load');
        // the corrupt file is not kept; what was checked before it (F, listed first) is, for the next try
        expect((await cached(page)).map((c) => c.url)).toEqual([keyOf(officialPath('appearance_feature_extractor'))]);
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: join(SHOTS, 'hub-corrupt.png'), clip: { x: 0, y: 0, width: 1280, height: 360 } });
      } finally {
        hub.corrupt.clear();
        await fresh.close();
      }
    });

    it('a hub that cannot be reached: a clear message on the page', async () => {
      const endpoint = `http://127.0.0.1:${await closedPort()}`;
      const page = await openPage(ctx, server.url, 'wasm', `hf=${encodeURIComponent(endpoint)}`);
      const s = await loadWeightsIn(page, 'hf');
      expect(s.weights).toBe('');
      expect(s.lastError).toMatch(
        new RegExp(`^cannot reach the HuggingFace hub at ${endpoint.replace(/\./g, '\\.')} \\(Failed to fetch\\); check the connection \\(a proxy, firewall or content blocker may stop it and its CDN\\) and try again, or load the weights from files$`),
      );
      expect(await page.isVisible('#message')).toBe(true);
      expect(await page.textContent('#message')).toBe(s.lastError);
      expect(await page.textContent('#weights-status')).toBe('weights failed to load');
      await page.screenshot({ path: join(SHOTS, 'hub-unreachable.png'), clip: { x: 0, y: 0, width: 1280, height: 340 } });
      // and the page still loads weights afterwards
      await waitForBackend(page);
      expect((await loadWeightsIn(page, 'synthetic')).weights).toMatch(/SYNTHETIC/);
      await page.close();
    });
  },
  { needsMedia: false },
);
