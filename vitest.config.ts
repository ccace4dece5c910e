import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes load dist/ and the addon: rebuild both from the sources first.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Native addons and shared memory are per process: isolate test files in forks.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
