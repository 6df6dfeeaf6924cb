import { defineConfig } from 'vitest/config';

// The default suite (`npm test`). Fault scenarios live in test/faults with their own config
// (`npm run test:faults`) because they stop and start shared services.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'test/faults/**', 'data/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
