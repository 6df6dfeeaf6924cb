import { defineConfig } from 'vitest/config';

// The fault suite (`npm run test:faults`, issue 10; docs/reliability.md). Each scenario file starts
// its own private PostgreSQL cluster, nats-server(s), brokers and oracles and kills some of them, so
// files run one at a time (a 2-core machine, and timings that must not starve each other).
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'data/**'],
    testTimeout: 240_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
