// The page's download (src/weights/hub_download.ts) against the stand-in hub
// on 127.0.0.1: progress, sha256, a cut transfer resumed, a corrupt file
// refused and not kept, a second visit served from the cache with no
// request, one-line errors; and that it bundles for the browser.
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WeightsError } from '../src/errors.js';
import { officialPath } from '../src/models/checkpoints.js';
import { MODULES } from '../src/models/registry.js';
import { type CacheLike, HubUnreachableError, downloadOfficialWeights } from '../src/weights/hub_download.js';
import { parsePth, flattenStateDict } from '../src/formats/pth.js';
import { type HubServer, closedPort, sha256Hex, startHubServer } from './helpers/hub_server.js';
import { signaturePth } from './helpers/pth_writer.js';

/** Cache Storage's behaviour for what the download uses: responses by key. */
class MemoryCache implements CacheLike {
  store = new Map<string, { body: Uint8Array; headers: Headers }>();
  async match(key: string) {
    const e = this.store.get(key);
    return e && new Response(e.body.slice() as Uint8Array<ArrayBuffer>, { headers: e.headers });
  }
  async put(key: string, res: Response) {
    this.store.set(key, { body: new Uint8Array(await res.arrayBuffer()), headers: res.headers });
  }
  async delete(key: string) {
    return this.store.delete(key);
  }
}

let hub: HubServer;
const files = new Map<string, Uint8Array>();
const cdn = () => hub.hits.filter((h) => h.path.startsWith('/cdn/') && h.range !== 'bytes=0-0');

function oneLine(e: unknown, cls: typeof WeightsError = WeightsError): string {
  expect(e).toBeInstanceOf(cls);
  expect((e as Error).message).not.toContain('\n');
  return (e as Error).message;
}

beforeAll(async () => {
  MODULES.forEach((m, i) => files.set(officialPath(m), signaturePth(m, i + 1)));
  hub = await startHubServer(files);
});
afterEach(() => {
  hub.cuts.clear();
  hub.corrupt.clear();
  hub.token = undefined;
});
afterAll(() => hub.close());

describe('the page download through @huggingface/hub', () => {
  it('downloads with progress and sha256, keeps each file; the next visit makes no request', async () => {
    const cache = new MemoryCache();
    const progress = new Map<string, number[]>();
    hub.hits.length = 0;
    const got = await downloadOfficialWeights('human', { endpoint: hub.url, cache, onProgress: (f, n, total) => (progress.set(f, [...(progress.get(f) ?? []), n]), expect(total).toBe(files.get(f)!.length)) });
    expect([...got.keys()]).toEqual([...MODULES]);
    for (const [m, f] of got) {
      expect(f.name).toBe(officialPath(m));
      expect(Buffer.from(f.bytes).equals(Buffer.from(files.get(f.name)!))).toBe(true);
      expect(f.sha256).toBe(sha256Hex(files.get(f.name)!));
      expect(f.fromCache).toBe(false);
      const seen = progress.get(f.name)!;
      expect(seen[0]).toBe(0);
      expect(seen.at(-1)).toBe(f.bytes.length);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    }
    // Real checkpoints: they parse as the module's state dict.
    expect(flattenStateDict(parsePth(got.get('warping_module')!.bytes)).size).toBeGreaterThan(0);
    expect(cache.store.size).toBe(5);
    expect(cdn()).toHaveLength(5);

    hub.hits.length = 0;
    const again = await downloadOfficialWeights('human', { endpoint: hub.url, cache, verifyCached: true });
    expect([...again.values()].every((f) => f.fromCache)).toBe(true);
    expect(Buffer.from(again.get('spade_generator')!.bytes).equals(Buffer.from(files.get(officialPath('spade_generator'))!))).toBe(true);
    expect(hub.hits).toEqual([]);
  });

  it('resumes a cut transfer with a ranged read', async () => {
    const file = officialPath('spade_generator');
    hub.cuts.set(file, { after: 50_000, times: 1 });
    hub.hits.length = 0;
    const got = await downloadOfficialWeights('human', { endpoint: hub.url, cache: 'none', modules: ['spade_generator'] });
    expect(Buffer.from(got.get('spade_generator')!.bytes).equals(Buffer.from(files.get(file)!))).toBe(true);
    const reads = cdn();
    expect(reads).toHaveLength(2);
    expect(reads[1].range).toMatch(/^bytes=[1-9]\d*-\d+$/);
  });

  it('a corrupt file is refused and not kept', async () => {
    const cache = new MemoryCache();
    hub.corrupt.add(officialPath('motion_extractor'));
    const e = await downloadOfficialWeights('human', { endpoint: hub.url, cache, modules: ['motion_extractor'] }).catch((x: unknown) => x);
    expect(oneLine(e)).toMatch(/^liveportrait\/base_models\/motion_extractor\.pth from http:\/\/127\.0\.0\.1:\d+: sha256 mismatch \(expected [0-9a-f]{64}, got [0-9a-f]{64}\); the download was corrupt and was not kept, try again$/);
    expect(cache.store.size).toBe(0);
  });

  it('unreachable, 404 and 401: one line each; a token is sent to the hub', async () => {
    const e = await downloadOfficialWeights('human', { endpoint: `http://127.0.0.1:${await closedPort()}`, cache: 'none' }).catch((x: unknown) => x);
    expect(oneLine(e, HubUnreachableError)).toMatch(/^cannot reach the HuggingFace hub at http:\/\/127\.0\.0\.1:\d+ \(fetch failed.*\); check the connection/);
    const other = await startHubServer(files, 'Someone/Else');
    try {
      const e404 = await downloadOfficialWeights('human', { endpoint: other.url, cache: 'none' }).catch((x: unknown) => x);
      expect(oneLine(e404)).toMatch(/^the listing of KwaiVGI\/LivePortrait\/liveportrait\/base_models not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/);
    } finally {
      await other.close();
    }
    hub.token = 'hf_page';
    const e401 = await downloadOfficialWeights('human', { endpoint: hub.url, cache: 'none' }).catch((x: unknown) => x);
    expect(oneLine(e401)).toMatch(/refused the listing of .* \(HTTP 401\); it needs a HuggingFace token/);
    const ok = await downloadOfficialWeights('human', { endpoint: hub.url, cache: 'none', token: 'hf_page', modules: ['appearance_feature_extractor'] });
    expect(ok.size).toBe(1);
  });

  it('bundles for the browser: no Node module in it', async () => {
    const esbuild = await import('esbuild');
    // @ts-expect-error: a plain .mjs script without types
    const { browserAliases } = (await import('../scripts/build-web.mjs')) as { browserAliases: () => Record<string, string> };
    const r = await esbuild.build({ entryPoints: [resolve(import.meta.dirname, '..', 'src', 'weights', 'hub_download.ts')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', alias: browserAliases() });
    const js = r.outputFiles[0].text;
    expect(js).toContain('downloadOfficialWeights');
    expect(js).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });
});
