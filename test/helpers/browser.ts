/**
 * The browser tests' common ground: Debian's Chromium through playwright-core
 * (LP_CHROMIUM, else /usr/bin/chromium), a describe that is skipped with a
 * printed reason when Chromium (or the media it needs) is missing and fails
 * under CI=true, the page's state (window.lpState) and the page opened on a
 * backend with synthetic weights loaded on demand.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { EditParams } from '../../web/src/protocol.js';
import { MEDIA_DIR } from './paths.js';

export const CHROMIUM = process.env.LP_CHROMIUM ?? '/usr/bin/chromium';
export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SHOTS = join(ROOT, 'out', 'screenshots');

/**
 * `describe.sequential` when Chromium is there (and the media, with
 * `needsMedia`); else skipped with the reason printed, or a failing test
 * when CI=true.
 */
export function describeBrowser(name: string, fn: () => void, { needsMedia = true } = {}): void {
  const haveMedia = !needsMedia || existsSync(join(MEDIA_DIR, 's0.jpg'));
  if (existsSync(CHROMIUM) && haveMedia) {
    describe.sequential(name, fn);
    return;
  }
  const reason = !existsSync(CHROMIUM) ? `chromium not found at ${CHROMIUM} (apt-get install chromium, or set LP_CHROMIUM)` : `media not found in ${MEDIA_DIR} (set LP_MEDIA_DIR)`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(needsMedia ? 'has chromium and the media' : 'has chromium', () => {
        throw new Error(`${reason}; CI=true requires ${needsMedia ? 'them' : 'it'}`);
      });
    });
  } else {
    console.warn(`skipping '${name}': ${reason}`);
    describe.skip(name, fn);
  }
}

const BASE_FLAGS = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export async function launch(flags: string[]): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE_FLAGS, ...flags],
    env: { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json' },
  });
}

/** web/src/ui.ts's `state`, as the tests read it. */
export type PageState = {
  backend: string;
  backendNote: string;
  threads?: number;
  weights: string;
  weightsFiles: Record<string, { loaded: number; total: number; updates: number }>;
  busy: boolean;
  animations: number;
  lastError: string;
  lastResult?: { name: string; frames: number; audio: boolean; seconds: number };
  editDone: number;
  editSeq: number;
  editSeconds: number;
  editCrop?: ImageData;
  editSourceCrop?: ImageData;
  editSourceRatios?: { eyeRatio?: number[]; lipRatio?: number };
  editParams?: EditParams;
  probe?: { outputs: Record<string, number[]>; backend: string };
  liveFrames: number;
};
export const S = (p: Page): Promise<PageState> => p.evaluate(() => (window as unknown as { lpState: PageState }).lpState);

/** Wait until the page's worker runs on a backend. */
export async function waitForBackend(page: Page): Promise<void> {
  await page.waitForFunction(() => (window as unknown as { lpState: PageState }).lpState.backend !== '', null, { timeout: 120_000 });
}

/** A new page (in its own context from a Browser, or in the context given) at `url?backend=…&query`, its worker started. */
export async function openPage(where: Browser | BrowserContext, url: string, backend: string, query = ''): Promise<Page> {
  const page = await where.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(`${url}?backend=${backend}${query ? `&${query}` : ''}`);
  await waitForBackend(page);
  await page.evaluate(() => ((window as unknown as { lpState: PageState }).lpState.weights = ''));
  return page;
}

/** Click "Load weights" in `mode` (then run `whileLoading`) and wait until they are loaded or an error is shown. */
export async function loadWeightsIn(page: Page, mode: 'synthetic' | 'hf', { timeout = 600_000, whileLoading }: { timeout?: number; whileLoading?: () => Promise<void> } = {}): Promise<PageState> {
  await page.evaluate((m) => {
    const st = (window as unknown as { lpState: PageState }).lpState;
    st.weights = '';
    st.lastError = '';
    (document.querySelector(`input[name="weights-mode"][value="${m}"]`) as HTMLInputElement).checked = true;
    (document.getElementById('seed') as HTMLInputElement).value = '1';
    document.getElementById('weights-load')!.click();
  }, mode);
  await whileLoading?.();
  await page.waitForFunction(() => {
    const s = (window as unknown as { lpState: PageState }).lpState;
    return !s.busy && (s.weights !== '' || s.lastError !== '');
  }, null, { timeout, polling: 200 });
  return S(page);
}

export async function loadSynthetic(page: Page): Promise<void> {
  const s = await loadWeightsIn(page, 'synthetic');
  expect(s.lastError).toBe('');
  expect(s.weights).toMatch(/SYNTHETIC/);
}
