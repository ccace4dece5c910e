import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes load dist/ and the addon: rebuild both from the sources first.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Native addons and shared memory are per process: isolate test files in forks.
    pool: 'forks',
    // Both cores (vitest's default leaves one idle): most files wait on child processes, servers
    // and sockets, and every test holds on a loaded machine.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
