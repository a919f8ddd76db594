// Every test process starts on the backend chosen the library's way
// (LIVEPORTRAIT_BACKEND, else auto: native, wasm, cpu), quietly.
import { beforeAll } from 'vitest';
import { initBackend } from '../src/backend.js';
import '../src/node/dawn.js'; // registers Dawn's navigator.gpu for the webgpu backend

beforeAll(async () => {
  await initBackend({ log: false });
});
