// Every test process starts on the backend chosen the library's way
// (LIVEPORTRAIT_BACKEND, else auto: native, wasm, cpu), quietly.
import { beforeAll } from 'vitest';
import { initBackend } from '../src/backend.js';

beforeAll(async () => {
  await initBackend({ log: false });
});
