#!/usr/bin/env node
// The `liveportrait` command: the built CLI (dist/, made by `npm run build` /
// `prepare`) when present, else the TypeScript sources through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/cli/main.js', import.meta.url);
let cli;
if (existsSync(fileURLToPath(built))) {
  cli = await import(built.href);
} else {
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    process.stderr.write('liveportrait: error: the CLI is not built (no dist/) and tsx is not installed; run `npm run build` or `npm ci`\n');
    process.exit(1);
  }
  cli = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
process.exit(await cli.run(process.argv.slice(2)));
