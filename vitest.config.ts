import { defineConfig } from 'vitest/config';

/**
 * Two projects: every test on wasm, and the
 * parity tests again on webgpu (Dawn on a software Vulkan driver in CI,
 * scripts/setup-test-env.sh): F, M, W and G whole, S, the layers, the fused
 * webgpu kernels, every x_d of the pipeline and one rendered frame (a
 * software adapter runs W and G at a few GMAC/s: the other frames, the app,
 * video and worker tests run on wasm only).
 */
const WEBGPU_FILES = [
  'test/layers.test.ts',
  'test/camera.test.ts',
  'test/grid_sample3d.test.ts',
  'test/stitching_retargeting_module.test.ts',
  'test/appearance_feature_extractor.test.ts',
  'test/motion_extractor.test.ts',
  'test/warping_module.test.ts',
  'test/spade_generator.test.ts',
  'test/webgpu_kernels.test.ts',
  'test/webgpu_profile.test.ts',
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
