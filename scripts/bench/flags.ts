/** Command-line flags of the benchmark and the GPU kit: `--flag value` or `--flag=value`. */
import { type NetId, ORDER } from './networks.js';

export interface FlagValue {
  /** The flag's value (the next argument, or what follows '='). */
  value(): string;
  /** The value as an integer ≥ min. */
  int(min: number): number;
}

/**
 * Calls `on(flag, v)` for each flag; `on` returns false for a flag it does
 * not know, which is an error naming the argument (and `usage`, if given).
 */
export function walkFlags(argv: string[], on: (flag: string, v: FlagValue) => boolean, usage?: string): void {
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = (min: number): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < min) throw new Error(`${flag} needs an integer ≥ ${min}`);
      return v;
    };
    const arg = argv[i];
    if (!on(flag, { value, int })) throw new Error(`unknown option '${arg}'${usage ? ` (${usage})` : ''}`);
  }
}

/** `--only F,M,W,G,S|none`: the networks named, in bench order. */
export function parseOnly(value: string): NetId[] {
  const ids = value.toUpperCase().split(',').map((s) => s.trim()).filter((id) => id !== 'NONE' && id !== '');
  for (const id of ids) if (!ORDER.includes(id as NetId)) throw new Error(`--only: unknown network '${id}' (use F, M, W, G, S)`);
  return ORDER.filter((id) => ids.includes(id));
}
