/** A writer of pickle opcodes, for tests that build checkpoints and templates (and hostile pickles) by hand. */

const enc = new TextEncoder();

/** Pickle opcodes, written in order (protocol 2 header unless told). */
export class PickleWriter {
  parts: number[];
  constructor(protocol = 2) {
    this.parts = [0x80, protocol];
  }
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
  /** GLOBAL (protocol 0-2 form). */
  global(mod: string, name: string): this {
    return this.op(0x63, ...enc.encode(`${mod}\n${name}\n`));
  }
  /** STACK_GLOBAL (protocol 4 form). */
  stackGlobal(mod: string, name: string): this {
    return this.str(mod).str(name).op(0x93);
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
