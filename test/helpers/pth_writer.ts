/**
 * A minimal writer of torch.save's zip format (one storage per tensor,
 * contiguous, an OrderedDict of the state dict's keys), for tests that need
 * checkpoints as the official ones are stored: the .pth reader reads them
 * back, key for key and bit for bit.
 */
import { zipSync } from 'fflate';
import { type HostTensor, type StateDict, numel } from '../../src/formats/host_tensor.js';
import { type ModuleName, type NetworkName, SIGNATURE_KEYS, STITCHING, syntheticModuleWeights, syntheticStitchingWeights } from '../../src/models/registry.js';

const enc = new TextEncoder();
const STORAGE: Record<string, string> = { F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', I64: 'LongStorage', I32: 'IntStorage', U8: 'ByteStorage', I8: 'CharStorage', F64: 'DoubleStorage', BOOL: 'BoolStorage' };

class Pickle {
  parts: number[] = [0x80, 2];
  op(...b: number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(s: string): this {
    const u = enc.encode(s);
    return this.op(0x58, u.length & 0xff, (u.length >> 8) & 0xff, (u.length >> 16) & 0xff, 0, ...u);
  }
  int(n: number): this {
    return this.op(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  }
  global(mod: string, name: string): this {
    return this.op(0x63, ...enc.encode(`${mod}\n${name}\n`));
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(xs: readonly number[]): this {
    this.mark();
    xs.forEach((x) => this.int(x));
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.parts, 0x2e]);
  }
}

function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/** The bytes of `torch.save(state_dict)` for `sd` (keys as given). */
export function pthBytes(sd: StateDict, archive = 'archive'): Uint8Array {
  const p = new Pickle();
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  p.global('collections', 'OrderedDict').op(0x29, 0x52).mark();
  let i = 0;
  for (const [key, t] of sd) {
    const type = STORAGE[t.dtype];
    if (!type) throw new Error(`pthBytes: no storage type for ${t.dtype}`);
    const n = numel(t.shape);
    p.str(key);
    p.global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', type).str(String(i)).str('cpu').int(n).op(0x74, 0x51);
    p.int(0).tuple(t.shape).tuple(strides(t.shape)).op(0x89);
    p.global('collections', 'OrderedDict').op(0x29, 0x52);
    p.op(0x74, 0x52);
    files[`${archive}/data/${i}`] = [new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), { level: 0 }];
    i++;
  }
  p.op(0x75);
  files[`${archive}/data.pkl`] = [p.bytes(), { level: 0 }];
  files[`${archive}/byteorder`] = [enc.encode('little'), { level: 0 }];
  files[`${archive}/version`] = [enc.encode('3\n'), { level: 0 }];
  return zipSync(files);
}

/** A small real-format checkpoint of `module`: its signature keys only (so the loader accepts it), values from `fill`. */
export function signaturePth(module: ModuleName, fill = 0): Uint8Array {
  const sd = new Map<string, HostTensor>();
  for (const [k, shape] of Object.entries(SIGNATURE_KEYS[module])) sd.set(k, { dtype: 'F32', shape, data: new Float32Array(numel(shape)).fill(fill) });
  return pthBytes(sd);
}

/**
 * A checkpoint of `module` as the official one is stored (torch.save's zip,
 * every parameter at its real shape, S's three networks under their keys),
 * holding the synthetic weights of `seed`: the networks build from it.
 */
export function officialFormatPth(module: ModuleName, seed = 1): Uint8Array {
  if (module !== 'stitching_retargeting_module') return pthBytes(syntheticModuleWeights(module as NetworkName, seed));
  const parts = syntheticStitchingWeights(seed);
  return pthBytes(new Map((Object.keys(parts) as (keyof typeof parts)[]).flatMap((p) => [...parts[p]].map(([k, t]) => [`${STITCHING.parts[p]}.${k}`, t] as const))));
}
