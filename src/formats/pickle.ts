/**
 * A restricted unpickler: the binary opcodes of pickle protocols 2 to 5 that
 * data (numbers, strings, bytes, tuples, lists, dicts, sets) and the few
 * classes a caller allows need, and nothing else. Python's `pickle.load` (and
 * `torch.load` without `weights_only`) calls whatever global a file names —
 * `os.system`, `builtins.eval`, `subprocess.Popen` — so a downloaded pickle
 * can run commands. Here a global is looked up in the caller's allow-list
 * and any other is refused before anything is built, in one line that names
 * it. Nothing in a pickle is ever executed: an allowed global is a small
 * JavaScript function of this library's that builds a value.
 *
 * Bounds: every value comes from bytes of the input (strings and bytes are
 * views of it), a length field can only point forward and within the input,
 * and the stack, memo and nesting are counted, so memory stays within a few
 * times the input size and a run ends after at most one pass over it.
 */
import { InputError } from '../errors.js';

/** A pickle that cannot be read, or asks for something this reader refuses. */
export class PickleError extends InputError {}

/** What an allowed global becomes: called by REDUCE/NEWOBJ with its arguments. */
export type PickleCallable = (args: unknown[]) => unknown;

export interface UnpickleOptions {
  /** `module.name` → what REDUCE / NEWOBJ call. Anything else is refused. */
  globals: ReadonlyMap<string, PickleCallable>;
  /** BINPERSID / PERSID (torch storages); refused when absent. */
  persistentLoad?: (pid: unknown) => unknown;
}

/** A Python tuple (arrays stand for lists; tuples are frozen arrays). */
export type Tuple = readonly unknown[];

/** An object BUILD can set state on (our own numpy classes). */
interface HasSetState {
  __setstate__(state: unknown): void;
}

const MAX_DEPTH = 10_000;

function hasSetState(x: unknown): x is HasSetState {
  return typeof x === 'object' && x !== null && typeof (x as HasSetState).__setstate__ === 'function';
}

/** Signed little-endian two's complement (LONG1/LONG4) → number or bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Unpickle `bytes` (`file` names it in errors). Dicts come back as Map,
 * lists as arrays, tuples as frozen arrays, bytes as Uint8Array views.
 */
export function unpickleRestricted(bytes: Uint8Array, file: string, opts: UnpickleOptions): unknown {
  const fail = (what: string): never => {
    throw new PickleError(`${file}: ${what}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number): number => {
    if (!Number.isSafeInteger(n) || n < 0) fail(`corrupt pickle: length ${n} at byte ${pos}; the file is damaged, download it again`);
    if (pos + n > bytes.length) fail(`truncated pickle: needs ${n} more bytes at byte ${pos} but the data ends at ${bytes.length}; download the file again`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => dv.getUint16(need(2), true);
  const u32 = () => dv.getUint32(need(4), true);
  const u64 = (): number => {
    const at = need(8);
    const hi = dv.getUint32(at + 4, true);
    if (hi > 0x1fffff) fail(`corrupt pickle: 64-bit length at byte ${at} is beyond any file; download the file again`);
    return hi * 2 ** 32 + dv.getUint32(at, true);
  };
  const take = (n: number): Uint8Array => {
    const at = need(n);
    return bytes.subarray(at, at + n);
  };
  const text = (n: number): string => {
    const b = take(n);
    try {
      return utf8.decode(b);
    } catch {
      return fail(`corrupt pickle: invalid UTF-8 string at byte ${pos - n}`);
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`truncated pickle: unterminated line at byte ${pos}`);
    const s = String.fromCharCode(...bytes.subarray(pos, Math.min(end, pos + 256)));
    if (end - pos > 256) fail(`corrupt pickle: a name of over 256 bytes at byte ${pos}`);
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail(`corrupt pickle: stack underflow at byte ${pos - 1}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`corrupt pickle: stack underflow at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) fail(`corrupt pickle: no MARK before byte ${pos - 1}`);
    stack = prev!;
    return items;
  };
  const global = (module: unknown, name: unknown): PickleCallable => {
    if (typeof module !== 'string' || typeof name !== 'string') fail(`corrupt pickle: a global whose name is not a string at byte ${pos - 1}`);
    const fqn = `${module}.${name}`;
    const fn = opts.globals.get(fqn);
    if (!fn) fail(`refuses pickle global ${JSON.stringify(fqn).slice(1, -1)} (only tensor data is read)`);
    return fn!;
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (typeof fn !== 'function') fail(`corrupt pickle: calls something that is not an allowed global at byte ${pos - 1}`);
    if (!Array.isArray(args)) fail(`corrupt pickle: call arguments are not a tuple at byte ${pos - 1}`);
    return (fn as PickleCallable)(args as unknown[]);
  };
  const setItem = (d: unknown, k: unknown, v: unknown): void => {
    if (!(d instanceof Map)) fail(`corrupt pickle: SETITEM on something that is not a dict at byte ${pos - 1}`);
    (d as Map<unknown, unknown>).set(k, v);
  };
  const appendTo = (l: unknown, items: unknown[]): void => {
    if (l instanceof Set) {
      for (const v of items) l.add(v);
      return;
    }
    if (!Array.isArray(l) || Object.isFrozen(l)) fail(`corrupt pickle: APPEND to something that is not a list at byte ${pos - 1}`);
    for (const v of items) (l as unknown[]).push(v);
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) fail(`corrupt pickle: memo ${i} read before it is written at byte ${pos - 1}`);
    return memo.get(i);
  };
  const tuple = (items: unknown[]): Tuple => Object.freeze(items);

  for (;;) {
    if (pos >= bytes.length) fail(`truncated pickle: no STOP opcode before the end (${bytes.length} bytes); download the file again`);
    const at = pos;
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(`pickle protocol ${bytes[at + 1]} is newer than 5, not supported`);
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        if (metastack.length >= MAX_DEPTH) fail(`pickle nests over ${MAX_DEPTH} levels at byte ${at}; not a checkpoint or template`);
        metastack.push(stack);
        stack = [];
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(dv.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = u32();
        if (n > 64) fail(`pickle integer of ${n} bytes at byte ${at}; not a checkpoint or template`);
        stack.push(decodeLong(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        stack.push(dv.getFloat64(need(8), false));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str: latin-1)
        stack.push(String.fromCharCode(...take(u8())));
        break;
      case 0x54: {
        // BINSTRING
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail(`corrupt pickle: negative length at byte ${at}`);
        const b = take(n);
        let s = '';
        for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
        stack.push(s);
        break;
      }
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: {
        // TUPLE (popMark replaces `stack`: take the items before pushing)
        const items = popMark();
        stack.push(tuple(items));
        break;
      }
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendTo(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2) fail(`corrupt pickle: odd number of dict items at byte ${at}`);
        const d = new Map();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail(`corrupt pickle: odd number of dict items at byte ${at}`);
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(new Set(items));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: // GLOBAL
        stack.push(global(line(), line()));
        break;
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        stack.push(global(pop(), name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop();
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (hasSetState(obj)) obj.__setstate__(state);
        else if (!(obj instanceof Map)) fail(`corrupt pickle: BUILD on a ${obj === null ? 'None' : typeof obj} at byte ${at}`);
        // A dict's instance attributes (OrderedDict._metadata): not data, ignored.
        break;
      }
      case 0x51: // BINPERSID
        if (!opts.persistentLoad) fail(`pickle asks for a persistent id at byte ${at}; not expected in this kind of file`);
        stack.push(opts.persistentLoad!(pop()));
        break;
      case 0x97: // NEXT_BUFFER
        fail(`pickle refers to out-of-band buffers at byte ${at}; not supported`);
        break;
      case 0x98: // READONLY_BUFFER
        break;
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at} (protocol 0/1 text opcodes and code-running opcodes such as INST and OBJ are not read)`);
    }
  }
}
