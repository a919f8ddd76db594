// Hostile files and requests, case by case: pickles that would run a
// command under torch.load / pickle.load (refused, naming the global, the
// command never run), size bombs (safetensors header 2^60, overflowing
// shapes, deflate bombs in a .pth, 30000x30000 pictures, 16K or
// million-frame videos: each ends quickly in one line), and `serve` on
// 127.0.0.1 (traversal in every spelling, odd methods, huge headers, 300
// concurrent requests). The CLI cases: one line, no output, no command run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { parsePth } from '../src/formats/pth.js';
import { readNumpyPickle } from '../src/formats/numpy_pickle.js';
import { parseSafetensors } from '../src/formats/safetensors.js';
import { parseAnyTemplate } from '../src/formats/template.js';
import { readImage } from '../src/node/image_files.js';
import { videoInfoFromProbe } from '../src/node/video.js';
import { type RunningServer, SERVE_LIMITS, isLoopback, serve } from '../src/node/serve.js';
import { PickleWriter, concat, reducePickle, stateDictPickle, zipPth } from './helpers/hostile.js';
import { MEDIA_DIR } from './helpers/parity.js';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'liveportrait.js');
const u8 = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
let tmp: string;

beforeAll(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'lp-hostile-')));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The error `f` throws (it must throw). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

/** Calls that run code under Python's pickle: each would create `marker` if obeyed. */
const EVIL = (marker: string): [string, string, string][] => [
  ['os', 'system', `touch ${marker}`],
  ['posix', 'system', `touch ${marker}`],
  ['nt', 'system', `touch ${marker}`],
  ['builtins', 'eval', `open(${JSON.stringify(marker)}, 'w')`],
  ['builtins', 'exec', `open(${JSON.stringify(marker)}, 'w')`],
  ['__builtin__', 'eval', `open(${JSON.stringify(marker)}, 'w')`],
  ['subprocess', 'Popen', `touch ${marker}`],
  ['subprocess', 'check_output', `touch ${marker}`],
  ['torch', 'load', marker],
  ['numpy', 'load', marker],
  ['collections', 'defaultdict', marker],
];

describe('pickles are never obeyed', () => {
  it('a global that could run code is refused in one line that names it: .pth, .pkl template, lip array; nothing is created', () => {
    const marker = join(tmp, 'pwned');
    for (const [mod, name, arg] of EVIL(marker)) {
      for (const form of ['global', 'stack'] as const) {
        const pkl = reducePickle(mod, name, arg, form, form === 'stack' ? 4 : 2);
        const e1 = thrown(() => parsePth(zipPth(pkl), 'evil.pth'));
        expect(e1).toBeInstanceOf(InputError);
        expect(e1.message).toBe(`evil.pth: refuses pickle global ${mod}.${name} (only tensor data is read)`);
        const e2 = thrown(() => parseAnyTemplate(pkl, 'evil.pkl'));
        expect(e2).toBeInstanceOf(InputError);
        expect(e2.message).toBe(`evil.pkl: refuses pickle global ${mod}.${name} (only tensor data is read)`);
        expect(thrown(() => readNumpyPickle(pkl, 'lip_array.pkl')).message).toContain(`refuses pickle global ${mod}.${name}`);
      }
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('a refused global after valid tensors, or hidden in a tensor record, still ends the read', () => {
    const p = new PickleWriter();
    p.global('collections', 'OrderedDict').op(0x29, 0x52).mark().str('w');
    p.global('os', 'system').str('touch x').op(0x85, 0x52).op(0x75);
    expect(thrown(() => parsePth(zipPth(p.bytes()), 'evil.pth')).message).toBe('evil.pth: refuses pickle global os.system (only tensor data is read)');
    // The torch storage slot holding os.system instead of torch.FloatStorage.
    const q = new PickleWriter();
    q.global('torch._utils', '_rebuild_tensor_v2').mark().mark().str('storage').global('os', 'system').str('0').str('cpu').int(1).op(0x74, 0x51);
    expect(thrown(() => parsePth(zipPth(q.bytes(), { '0': new Uint8Array(4) }), 'evil.pth')).message).toContain('refuses pickle global os.system');
  });

  it('code-running opcodes of protocols 0/1 (INST, OBJ) are refused, not interpreted', () => {
    const inst = Uint8Array.from([0x80, 0x02, 0x28, ...new TextEncoder().encode('S"touch x"\n'), 0x69, ...new TextEncoder().encode('os\nsystem\n'), 0x2e]);
    const e = thrown(() => parseAnyTemplate(inst, 't.pkl'));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/^t\.pkl: unsupported pickle opcode 0x53/);
  });
});

/** Patch the sizes a zip's central directory declares for `name`. */
function patchDeclaredSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  const nameBytes = new TextEncoder().encode(name);
  for (let i = 0; i + 46 < out.length; i++) {
    if (dv.getUint32(i, true) !== 0x02014b50) continue;
    const n = dv.getUint16(i + 28, true);
    if (n === nameBytes.length && out.subarray(i + 46, i + 46 + n).every((b, k) => b === nameBytes[k])) {
      dv.setUint32(i + 24, size, true);
      return out;
    }
  }
  throw new Error(`no ${name}`);
}

describe('size bombs end quickly in one line', () => {
  const timed = (f: () => unknown): { e: Error; ms: number } => {
    const t0 = performance.now();
    const e = thrown(f);
    return { e, ms: performance.now() - t0 };
  };

  it('safetensors: a header length of 2^60, a shape whose element count overflows', () => {
    const b = new Uint8Array(64);
    new DataView(b.buffer).setBigUint64(0, 2n ** 60n, true);
    expect(thrown(() => parseSafetensors(b, 'h.safetensors')).message).toMatch(/^h\.safetensors: truncated: header says 1152921504606846976 bytes/);
    const json = new TextEncoder().encode(JSON.stringify({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }));
    const f = concat(new Uint8Array(8), json, new Uint8Array(4));
    new DataView(f.buffer).setBigUint64(0, BigInt(json.length), true);
    const e = thrown(() => parseSafetensors(f, 's.safetensors'));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/^s\.safetensors: tensor 'a' has shape \[1099511627776,1099511627776\], whose element count overflows/);
  });

  it('.pth: a record that inflates past its declared size stops at the declaration', () => {
    const bomb = deflateSync(new Uint8Array(16 * 2 ** 20)); // 16 MiB of zeros in ~16 KB
    const zip = zipPth(stateDictPickle([{ name: 'w', key: '0', numel: 250 }]), { '0': new Uint8Array(1000) }, 9);
    // Swap the honest record for the bomb, declared as 1000 bytes: rebuild the zip by hand-patching sizes.
    const honest = parsePth(zip, 'ok.pth') as Map<string, unknown>;
    expect(honest.has('w')).toBe(true);
    const lying = zipWithRecord(bomb, 1000);
    const { e, ms } = timed(() => parsePth(lying, 'bomb.pth'));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/^bomb\.pth: zip entry 'archive\/data\/0' inflates past its declared 1000 bytes/);
    expect(ms).toBeLessThan(2000);
  });

  it('.pth: a record declaring more than the inflate cap (or than deflate can produce) is refused before inflating', () => {
    const small = zipWithRecord(deflateSync(new Uint8Array(1000)), 1000);
    const huge = patchDeclaredSize(small, 'archive/data/0', 0xfffffff0);
    expect(thrown(() => parsePth(huge, 'big.pth')).message).toMatch(/^big\.pth: zip entry 'archive\/data\/0' declares 4294967280 bytes, over the inflate cap/);
    const lie = patchDeclaredSize(small, 'archive/data/0', 400 * 2 ** 20);
    expect(thrown(() => parsePth(lie, 'lie.pth')).message).toMatch(/more than deflate can produce/);
  });

  it('.pth: a bomb nobody refers to is never inflated', () => {
    const bomb = deflateSync(new Uint8Array(16 * 2 ** 20));
    const zip = zipPth(stateDictPickle([{ name: 'w', key: '0', numel: 2 }]), { '0': u8(Float32Array.of(1, 2)) });
    const withBomb = appendRecord(zip, 'archive/data/zzz', bomb, 2 ** 31);
    const t0 = performance.now();
    const sd = parsePth(withBomb, 'x.pth') as Map<string, { data: Float32Array }>;
    expect(Array.from(sd.get('w')!.data)).toEqual([1, 2]);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('a PNG or JPEG declaring 30000x30000 pixels is refused from its header, before decoding', async () => {
    const png = join(tmp, 'huge.png');
    writeFileSync(png, concat(pngHeader(30000, 30000), new Uint8Array(2 ** 20)));
    await expect(readImage(png)).rejects.toThrow(new InputError(`Cannot read image "${png}": it declares 30000x30000 pixels (900 MP), over the 100 MP cap; shrink it first, or raise LIVEPORTRAIT_MAX_PIXELS`));
    const jpg = join(tmp, 'huge.jpg');
    writeFileSync(jpg, Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 30000 >> 8, 30000 & 0xff, 30000 >> 8, 30000 & 0xff, 3, ...new Array(2000).fill(0)]));
    await expect(readImage(jpg)).rejects.toThrow(/huge\.jpg.*30000x30000 pixels.*over the 100 MP cap/);
  });

  it('a video declaring 16K frames or a million frames is refused from its probe', () => {
    const probe = (size: string, frames: number) =>
      `Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'v.mp4':\n  Duration: 00:00:02.00, start: 0.000000, bitrate: 1 kb/s\n  Stream #0:0(und): Video: h264 (High), yuv420p, ${size}, 1 kb/s, 25 fps, 25 tbr\nframe=${frames} fps=0.0 q=-1.0 Lsize=N/A\n`;
    expect(videoInfoFromProbe('v.mp4', probe('512x512', 50)).frameCount).toBe(50);
    expect(thrown(() => videoInfoFromProbe('v.mp4', probe('15360x8640', 50))).message).toMatch(/^Cannot read video "v\.mp4": its frames declare 15360x8640 pixels, over the 100 MP cap/);
    expect(thrown(() => videoInfoFromProbe('v.mp4', probe('512x512', 1_000_000))).message).toMatch(/^Cannot read video "v\.mp4": it holds 1000000 frames, over the 100000-frame cap/);
  });
});

/** A torch.save zip whose record archive/data/0 is `deflated` (raw deflate), declared as `size` bytes, for a tensor of size/4 floats. */
function zipWithRecord(deflated: Uint8Array, size: number): Uint8Array {
  const pkl = stateDictPickle([{ name: 'w', key: '0', numel: size / 4 }]);
  return appendRecord(zipPth(pkl), 'archive/data/0', deflated, size);
}

/** Add a deflated record to a zip (a new local header, and a rebuilt central directory). */
function appendRecord(zip: Uint8Array, name: string, deflated: Uint8Array, size: number): Uint8Array {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = zip.length - 22;
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOff = dv.getUint32(eocd + 16, true);
  const count = dv.getUint16(eocd + 10, true);
  const nb = new TextEncoder().encode(name);
  const local = new Uint8Array(30 + nb.length);
  const l = new DataView(local.buffer);
  l.setUint32(0, 0x04034b50, true);
  l.setUint16(4, 20, true);
  l.setUint16(8, 8, true);
  l.setUint32(18, deflated.length, true);
  l.setUint32(22, size, true);
  l.setUint16(26, nb.length, true);
  local.set(nb, 30);
  const central = new Uint8Array(46 + nb.length);
  const c = new DataView(central.buffer);
  c.setUint32(0, 0x02014b50, true);
  c.setUint16(10, 8, true);
  c.setUint32(20, deflated.length, true);
  c.setUint32(24, size, true);
  c.setUint16(28, nb.length, true);
  c.setUint32(42, cdOff, true);
  central.set(nb, 46);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, count + 1, true);
  e.setUint16(10, count + 1, true);
  e.setUint32(12, cdSize + central.length, true);
  e.setUint32(16, cdOff + local.length + deflated.length, true);
  return concat(zip.subarray(0, cdOff), local, deflated, zip.subarray(cdOff, cdOff + cdSize), central, end);
}

function pngHeader(w: number, h: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const dv = new DataView(b.buffer);
  dv.setUint32(16, w);
  dv.setUint32(20, h);
  b.set([8, 2, 0, 0, 0], 24);
  return b;
}

describe('serve on 127.0.0.1', () => {
  let s: RunningServer;
  let root: string;
  const logs: string[] = [];
  beforeAll(async () => {
    root = join(tmp, 'page');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<p>page</p>');
    writeFileSync(join(root, 'assets', 'a.js'), 'js');
    writeFileSync(join(tmp, 'secret.txt'), 'SECRET');
    symlinkSync(join(tmp, 'secret.txt'), join(root, 'leak.txt'));
    symlinkSync(tmp, join(root, 'up'));
    s = await serve({ root, port: 0, log: (l) => logs.push(l) });
  });
  afterAll(() => s?.close());

  /** A raw request (the path sent as written, no client-side normalisation). */
  const get = (path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> =>
    new Promise((ok, fail) => {
      const r = request({ host: '127.0.0.1', port: s.port, path, method, headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => ok({ status: res.statusCode!, body }));
      });
      r.on('error', fail);
      r.end();
    });

  it('binds 127.0.0.1 by default, and says so of other addresses', () => {
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/`);
    expect(s.server.address()).toMatchObject({ address: '127.0.0.1' });
    expect(logs.filter((l) => /warning/.test(l))).toEqual([]);
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.5', '10.0.0.1'].some(isLoopback)).toBe(false);
    expect(s.server.headersTimeout).toBe(SERVE_LIMITS.headersTimeout);
    expect(s.server.requestTimeout).toBe(SERVE_LIMITS.requestTimeout);
    expect(s.server.keepAliveTimeout).toBe(SERVE_LIMITS.keepAliveTimeout);
  });

  it('nothing outside the page, in any spelling', async () => {
    expect(await get('/')).toEqual({ status: 200, body: '<p>page</p>' });
    expect((await get('/assets/a.js')).status).toBe(200);
    const paths = [
      '/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E/secret.txt', '/..%2fsecret.txt', '/..%2Fsecret.txt',
      '/..%5csecret.txt', '/..\\secret.txt', '/%252e%252e/secret.txt', '/%252e%252e%252fsecret.txt', '/leak.txt', '/up/secret.txt',
      '/index.html%00.js', '/%00', `/${tmp}/secret.txt`, `//${tmp}/secret.txt`, `http://127.0.0.1/../secret.txt`, `file://${tmp}/secret.txt`,
      '/%c0%ae%c0%ae/secret.txt', '/.%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/.env', '/assets',
    ];
    for (const p of paths) {
      const r = await get(p).catch(() => ({ status: 0, body: '' }));
      expect(r.body, p).not.toContain('SECRET');
      expect([400, 404, 0], p).toContain(r.status);
    }
  });

  it('only GET and HEAD; huge headers refused', async () => {
    expect((await get('/', 'HEAD')).status).toBe(200);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) expect((await get('/', m)).status, m).toBe(405);
    expect((await get('/', 'GET', { 'x-big': 'a'.repeat(20_000) })).status).toBe(431);
  });

  it('300 concurrent requests are all answered', async () => {
    const rs = await Promise.all(Array.from({ length: 300 }, (_, i) => get(i % 2 ? '/' : '/assets/a.js')));
    expect(rs.filter((r) => r.status === 200)).toHaveLength(300);
  });
});

describe('the command line on hostile files: one line, no output, no command run', () => {
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, LIVEPORTRAIT_DEBUG: '' }, timeout: 120_000 });
    return { code: r.status, stderr: r.stderr };
  };
  const oneLine = (r: { code: number | null; stderr: string }, ...needles: RegExp[]) => {
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('liveportrait: backend'));
    expect(lines).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    for (const n of needles) expect(lines[0]).toMatch(n);
  };

  it('a pickle asking for os.system, as a driving template and as weights', () => {
    const marker = join(tmp, 'cli-pwned');
    const out = join(tmp, 'cli-out');
    writeFileSync(join(tmp, 'evil.pkl'), reducePickle('os', 'system', `touch ${marker}`, 'stack', 4));
    oneLine(cli(['animate', '-s', join(MEDIA_DIR, 's0.jpg'), '-d', 'evil.pkl', '-o', out, '--weights', 'synthetic', '-q']), /evil\.pkl/, /refuses pickle global os\.system/);
    mkdirSync(join(tmp, 'evilw'));
    for (const m of ['appearance_feature_extractor', 'motion_extractor', 'warping_module', 'spade_generator', 'stitching_retargeting_module'])
      writeFileSync(join(tmp, 'evilw', `${m}.pth`), zipPth(reducePickle('os', 'system', `touch ${marker}`)));
    oneLine(cli(['weights', 'convert', '--from', 'evilw', '--dir', 'converted', '-q']), /evilw/, /refuses pickle global os\.system/);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    expect(existsSync(join(tmp, 'converted')) ? readdirSync(join(tmp, 'converted')) : []).toEqual([]);
  });

  it('retarget on a PNG declaring 30000x30000 pixels', () => {
    writeFileSync(join(tmp, 'big.png'), concat(pngHeader(30000, 30000), new Uint8Array(2 ** 20)));
    const out = join(tmp, 'r-out.jpg');
    oneLine(cli(['retarget', '-s', 'big.png', '--eye-ratio', '0', '-o', out, '--weights', 'synthetic']), /big\.png/, /30000x30000 pixels/, /LIVEPORTRAIT_MAX_PIXELS/);
    expect(existsSync(out)).toBe(false);
  });
});
