// Every test process starts on the backend chosen the library's way
// (LIVEPORTRAIT_BACKEND, else auto), quietly. The wasm test project sets
// LIVEPORTRAIT_BACKEND=wasm and the webgpu one LIVEPORTRAIT_BACKEND=webgpu; where no adapter exists
// (no Vulkan driver), its suites are skipped with the reason printed, and
// with CI=true they fail instead (see describeParity / describeBackend).
import '../src/node/dawn.js'; // registers Dawn's navigator.gpu for the webgpu backend
import { initBackend } from '../src/backend.js';

const g = globalThis as { __lpBackendError?: string };
try {
  await initBackend({ log: false });
} catch (e) {
  g.__lpBackendError = (e as Error).message;
}
