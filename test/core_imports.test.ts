// The core (everything under src/ but the Node adapters and the CLI) must run
// unchanged in a web page: no `node:*` module, no Node-only package, no
// import of the adapters. This scans every import of every core file.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const ADAPTERS = ['node', 'cli'];
/** Packages that need Node (file system, processes, native binaries, terminals). */
const NODE_ONLY = ['jimp', '@ffmpeg-installer/ffmpeg', 'cli-progress', 'yargs', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];
const BUILTINS = ['fs', 'path', 'os', 'child_process', 'worker_threads', 'module', 'url', 'crypto', 'stream', 'util', 'http', 'https', 'net', 'zlib', 'buffer', 'process'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports, static or dynamic with a literal. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

describe('the core imports nothing from Node', () => {
  const core = files(SRC).filter((f) => !ADAPTERS.includes(relative(SRC, f).split('/')[0]));

  it('finds the core files and their imports', () => {
    expect(core.length).toBeGreaterThan(30);
    expect(importsOf("import { a } from 'node:fs';\nexport { b } from './x.js';\nconst m = await import('jimp');")).toEqual(['node:fs', './x.js', 'jimp']);
  });

  it('no core file imports node:*, a Node-only package, or an adapter folder', () => {
    const bad: string[] = [];
    for (const f of core) {
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        const rel = relative(SRC, f);
        if (spec.startsWith('node:') || BUILTINS.includes(spec)) bad.push(`${rel}: ${spec}`);
        else if (NODE_ONLY.some((p) => spec === p || spec.startsWith(`${p}/`))) bad.push(`${rel}: ${spec}`);
        else if (spec.startsWith('.')) {
          const target = relative(SRC, resolve(dirname(f), spec));
          if (ADAPTERS.includes(target.split('/')[0])) bad.push(`${rel}: ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('the page imports the library only through its public entries', () => {
  const WEB = resolve(SRC, '..', 'web', 'src');
  const PUBLIC = ['index.ts', 'layers/index.ts', 'formats/index.ts', 'parity/index.ts'];

  it('web/src reaches src/ through src/index.ts (and the other public entries) only', () => {
    const bad: string[] = [];
    const webFiles = files(WEB);
    expect(webFiles.length).toBeGreaterThan(5);
    for (const f of webFiles) {
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(f), spec).replace(/\.js$/, '.ts');
        const rel = relative(SRC, target);
        if (rel.startsWith('..')) continue; // the page's own files
        if (!PUBLIC.includes(rel)) bad.push(`${relative(WEB, f)}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
