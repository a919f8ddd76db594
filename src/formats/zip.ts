/**
 * A zip reader for PyTorch checkpoints that reads the central directory
 * only, and inflates an entry when it is asked for, never past a cap: the
 * size the caller needs (a storage's bytes, from the pickle) or the size the
 * entry declares, whichever is smaller. A deflate bomb (a few MB that
 * inflate to gigabytes) is refused after at most one 16 KiB chunk of input
 * past its cap, so memory stays near the cap; entries nobody asks for are
 * never inflated. torch.save stores its records uncompressed; those are
 * views of the file, no copy.
 */
import { Inflate } from 'fflate';
import { InputError } from '../errors.js';

/** One file of the archive, from its central-directory record. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  /** The size the archive declares. */
  size: number;
  localOffset: number;
}

export class ZipError extends InputError {}

/** Deflate cannot expand more than 1032:1; a declared size beyond that (plus slack) is a lie. */
const MAX_DEFLATE_RATIO = 1032;
/** Compressed input pushed per step; output per step is at most ~16 MiB. */
const CHUNK = 16 * 1024;

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dv: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readDirectory();
  }

  private fail(what: string): never {
    throw new ZipError(`${this.file}: ${what}`);
  }

  private u16(at: number): number {
    if (at < 0 || at + 2 > this.bytes.length) this.fail(`truncated or corrupt zip archive (a record at byte ${at} runs past the end); download it again`);
    return this.dv.getUint16(at, true);
  }

  private u32(at: number): number {
    if (at < 0 || at + 4 > this.bytes.length) this.fail(`truncated or corrupt zip archive (a record at byte ${at} runs past the end); download it again`);
    return this.dv.getUint32(at, true);
  }

  private u64(at: number): number {
    const hi = this.u32(at + 4);
    if (hi > 0x1fffff) this.fail(`corrupt zip archive (a 64-bit field at byte ${at} is beyond any file); download it again`);
    return hi * 2 ** 32 + this.u32(at);
  }

  private readDirectory(): void {
    const b = this.bytes;
    let eocd = -1;
    for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 0xffff); i--) {
      if (b[i] === 0x50 && b[i + 1] === 0x4b && b[i + 2] === 0x05 && b[i + 3] === 0x06) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.fail(`truncated or corrupt zip archive (no end-of-directory record in ${b.length} bytes); download it again`);
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    if ((count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && eocd >= 20 && this.u32(eocd - 20) === 0x07064b50) {
      const z = this.u64(eocd - 12);
      if (this.u32(z) !== 0x06064b50) this.fail('corrupt zip archive (bad zip64 end-of-directory record); download it again');
      count = this.u64(z + 32);
      cdSize = this.u64(z + 40);
      cdOffset = this.u64(z + 48);
    }
    if (cdOffset + cdSize > b.length || count > cdSize / 46) this.fail(`truncated or corrupt zip archive (directory of ${count} entries at byte ${cdOffset} does not fit the file); download it again`);
    let at = cdOffset;
    const dec = new TextDecoder();
    for (let k = 0; k < count; k++) {
      if (this.u32(at) !== 0x02014b50) this.fail(`corrupt zip archive (directory entry ${k} at byte ${at} has a bad signature); download it again`);
      const method = this.u16(at + 10);
      let compressedSize = this.u32(at + 20);
      let size = this.u32(at + 24);
      const nameLen = this.u16(at + 28);
      const extraLen = this.u16(at + 30);
      const commentLen = this.u16(at + 32);
      let localOffset = this.u32(at + 42);
      if (at + 46 + nameLen + extraLen > b.length) this.fail('truncated zip archive (a directory entry runs past the end); download it again');
      const name = dec.decode(b.subarray(at + 46, at + 46 + nameLen));
      // zip64 extra field: the 0xffffffff fields, in order size, compressed size, offset.
      for (let e = at + 46 + nameLen; e + 4 <= at + 46 + nameLen + extraLen; ) {
        const id = this.u16(e);
        const len = this.u16(e + 2);
        if (id === 0x0001) {
          let p = e + 4;
          if (size === 0xffffffff) (size = this.u64(p)), (p += 8);
          if (compressedSize === 0xffffffff) (compressedSize = this.u64(p)), (p += 8);
          if (localOffset === 0xffffffff) localOffset = this.u64(p);
        }
        e += 4 + len;
      }
      if (this.entries.has(name)) this.fail(`corrupt zip archive: entry '${name.slice(0, 100)}' appears twice; download it again`);
      this.entries.set(name, { name, method, compressedSize, size, localOffset });
      at += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** The compressed bytes of an entry (a view of the file). */
  private raw(e: ZipEntry): Uint8Array {
    const at = e.localOffset;
    if (this.u32(at) !== 0x04034b50) this.fail(`corrupt zip archive (entry '${e.name}' has no local header at byte ${at}); download it again`);
    const start = at + 30 + this.u16(at + 26) + this.u16(at + 28);
    if (start + e.compressedSize > this.bytes.length) this.fail(`truncated: zip entry '${e.name}' needs ${e.compressedSize} bytes at byte ${start} but the file has ${this.bytes.length}; download it again`);
    return this.bytes.subarray(start, start + e.compressedSize);
  }

  /**
   * An entry's bytes, at most `cap` of them (larger declared sizes are
   * refused before anything is inflated; `capWhat` says in the message why
   * the cap is what it is).
   */
  read(name: string, cap: number, capWhat: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) this.fail(`zip entry '${name}' is missing; the file is incomplete or corrupt, download it again`);
    if (e.size > cap) this.fail(`zip entry '${name}' declares ${e.size} bytes, over ${capWhat} (${cap}); refused before reading it`);
    const raw = this.raw(e);
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.fail(`corrupt zip archive: stored entry '${name}' has ${e.compressedSize} bytes but declares ${e.size}; download it again`);
      return raw;
    }
    if (e.method !== 8) this.fail(`zip entry '${name}' uses compression method ${e.method}; only stored and deflate are read`);
    if (e.size > raw.length * MAX_DEFLATE_RATIO + 1024) this.fail(`corrupt zip archive: entry '${name}' declares ${e.size} bytes from ${raw.length} compressed, more than deflate can produce; download it again`);
    const out = new Uint8Array(e.size);
    let got = 0;
    let done = false;
    const inf = new Inflate((chunk, final) => {
      if (got + chunk.length > e.size) this.fail(`zip entry '${name}' inflates past its declared ${e.size} bytes (a decompression bomb?); refused`);
      out.set(chunk, got);
      got += chunk.length;
      if (final) done = true;
    });
    try {
      for (let i = 0; i < raw.length && !done; i += CHUNK) inf.push(raw.subarray(i, Math.min(raw.length, i + CHUNK)), i + CHUNK >= raw.length);
      if (raw.length === 0) inf.push(raw, true);
    } catch (err) {
      if (err instanceof ZipError) throw err;
      this.fail(`corrupt deflate data in zip entry '${name}' (${(err as Error).message}); download it again`);
    }
    if (got !== e.size) this.fail(`truncated: zip entry '${name}' inflates to ${got} bytes but declares ${e.size}; download it again`);
    return out;
  }
}
