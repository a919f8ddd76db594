import { describe, expect, it } from 'vitest';
import { fnv1a32, ruleRange, syntheticTensor, uniforms } from '../src/models/synthetic.js';
import { describeParity, manifest } from './helpers/parity.js';

describe('synthetic weight rule', () => {
  it('fnv1a32 matches known vectors', () => {
    // Published FNV-1a 32-bit test vectors.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('uniforms are the murmur3 finaliser of i*golden + key', () => {
    // Independent BigInt evaluation of the rule for a few indices.
    const key = BigInt(fnv1a32('7:x'));
    const M = 1n << 32n;
    const u = uniforms('x', 7, 5);
    for (let i = 0; i < 5; i++) {
      let x = (BigInt(i) * 0x9e3779b1n + key) % M;
      x ^= x >> 16n; x = (x * 0x85ebca6bn) % M;
      x ^= x >> 13n; x = (x * 0xc2b2ae35n) % M;
      x ^= x >> 16n;
      expect(u[i]).toBe(Number(x) / 2 ** 32);
    }
  });

  it('ranges follow the rule', () => {
    expect(ruleRange('a.running_mean', [4])).toEqual([-0.1, 0.1]);
    expect(ruleRange('a.running_var', [4])).toEqual([0.5, 1.5]);
    expect(ruleRange('x.grn.gamma', [1, 1, 1, 8])).toEqual([-0.3, 0.3]);
    expect(ruleRange('c.weight', [8, 4, 3, 3])).toEqual([-Math.sqrt(3 / 36), Math.sqrt(3 / 36)]);
    expect(ruleRange('n.weight', [8])).toEqual([0.8, 1.2]);
    expect(ruleRange('n.bias', [8])).toEqual([-0.1, 0.1]);
    expect(() => ruleRange('n.other', [8])).toThrow(/no rule/);
    const t = syntheticTensor('m/n.weight', [1000], 0.8, 1.2, 3);
    const d = t.data as Float32Array;
    expect(Math.min(...d)).toBeGreaterThanOrEqual(0.8 - 1e-7);
    expect(Math.max(...d)).toBeLessThan(1.2);
  });
});

describeParity('synthetic weight rule against the manifest', () => {
  it('gives every manifest range', () => {
    for (const keys of Object.values(manifest().modules))
      for (const [k, v] of Object.entries(keys)) if (!v.explicit) expect([k, ...ruleRange(k, v.shape)]).toEqual([k, v.lo, v.hi]);
  });
});
