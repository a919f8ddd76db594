import { defineConfig } from 'vitest/config';

/**
 * Two projects: every test on wasm, and the
 * parity tests again on webgpu (Dawn on a software Vulkan driver in CI,
 * scripts/setup-test-env.sh). G is too slow there for CI as a whole (about
 * 1 GMAC/s on lavapipe against 446 GMAC), so on webgpu it runs block by
 * block (webgpu_blocks.test.ts), and the pipeline's x_d (not its frames)
 * runs there; the app, video and worker tests run on wasm only.
 */
const WEBGPU_FILES = [
  'test/layers.test.ts',
  'test/camera.test.ts',
  'test/grid_sample3d.test.ts',
  'test/stitching_retargeting_module.test.ts',
  'test/appearance_feature_extractor.test.ts',
  'test/motion_extractor.test.ts',
  'test/warping_module.test.ts',
  'test/webgpu_blocks.test.ts',
  'test/pipeline.test.ts',
];

export default defineConfig({
  test: {
    setupFiles: ['test/setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // The parity tests run whole networks on one CPU core; give them room.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Two cores: one test file per core, each in its own process.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      // wasm by name: auto would take webgpu on a machine with a hardware GPU (backend_auto.test.ts tests auto).
      { extends: true, test: { name: 'wasm', include: ['test/**/*.test.ts'], exclude: ['test/webgpu_*.test.ts'], env: { LIVEPORTRAIT_BACKEND: 'wasm' } } },
      { extends: true, test: { name: 'webgpu', include: WEBGPU_FILES, env: { LIVEPORTRAIT_BACKEND: 'webgpu' } } },
    ],
  },
});
