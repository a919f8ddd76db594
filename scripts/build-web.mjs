/**
 * Build the web page (web/) into a static folder (default dist-web/): the
 * library's core bundled with esbuild (main.js for the page, engine.js for
 * the worker that runs the networks), the tfjs wasm binaries and the face
 * detector's models as static files. Works from any static host; threaded
 * wasm needs cross-origin isolation (COOP/COEP headers), which
 * `liveportrait serve` sends.
 *
 *   node scripts/build-web.mjs [outDir] [--dev]
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, existsSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

/**
 * Packages whose browser build esbuild does not pick by itself: @huggingface/hub
 * names it only in its "browser" field, which its "exports" map overrides
 * (the Node build imports fs, os, stream).
 */
export function browserAliases() {
  return { '@huggingface/hub': join(dirname(require.resolve('@huggingface/hub')), 'browser', 'index.mjs') };
}

/** Build into `outDir`; resolves to the folder written. */
export async function buildWeb(outDir = join(root, 'dist-web'), { dev = false, log = console.error } = {}) {
  const esbuild = await import('esbuild');
  const out = resolve(outDir);
  // Build beside, then swap in: a half-built folder is never served.
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'wasm'), { recursive: true });
  mkdirSync(join(tmp, 'models'), { recursive: true });
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'web/src/main.ts', engine: 'web/src/engine.ts' },
    outdir: join(tmp, 'assets'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: !dev,
    sourcemap: dev ? 'inline' : false,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
    alias: browserAliases(),
    // as Node does, packages are also looked for in NODE_PATH's folders
    nodePaths: (process.env.NODE_PATH ?? '').split(delimiter).filter(Boolean),
  });
  for (const f of ['index.html', 'style.css', 'favicon.svg']) copyFileSync(join(root, 'web', f), join(tmp, f));
  const wasmDir = join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  for (const f of readdirSync(wasmDir)) if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, f), join(tmp, 'wasm', f));
  const humanModels = join(dirname(require.resolve('@vladmandic/human')), '..', 'models');
  for (const f of ['blazeface.json', 'blazeface.bin', 'facemesh.json', 'facemesh.bin']) copyFileSync(join(humanModels, f), join(tmp, 'models', f));
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  log(`liveportrait: web page built in ${out}`);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--'));
  buildWeb(dir ? resolve(dir) : undefined, { dev: args.includes('--dev') }).catch((e) => {
    console.error(`liveportrait: web build failed: ${e.message}`);
    process.exit(1);
  });
}
