import { defineConfig } from 'vitest/config';

// Three projects as in the house style: fast unit/marble tests, integration tests that start real
// servers, processes, ONNX sessions, libvosk and a browser, and GPU suites that skip without a GPU.
export default defineConfig({
  test: {
    // Real servers, ONNX sessions, child processes and a browser: files run one at a time on a 2-core box.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/marble/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          globalSetup: ['test/helpers/global-setup.ts'],
        },
      },
      {
        test: {
          name: 'gpu',
          include: ['test/gpu/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
        },
      },
    ],
  },
});
