import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // The parity tests run whole networks on one CPU core; give them room.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Two cores: one test file per core, each in its own process.
    pool: 'forks',
    maxWorkers: 2,
  },
});
