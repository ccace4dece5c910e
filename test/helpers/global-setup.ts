// Before any test file runs: build what child processes and examples load (dist/ and the addon)
// from the sources under test, so that no fixture can ever exercise a stale build, however the
// suite is started (npm test, npm run test:js, or one file alone).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

export default function setup(): void {
  // The tests decide on the addon just built from these sources, never on a prebuilt binary left
  // in prebuilds/ by an earlier `npm run prebuilds` (test/install.test.ts covers those, freshly
  // packed). Workers and their child processes inherit this.
  process.env.TOLLGATE_BUILD_FROM_SOURCE = '1';
  const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  // Incremental: a few hundred ms when nothing changed.
  if (process.env.TOLLGATE_TEST_SKIP_NATIVE_BUILD !== '1') {
    try {
      run([require.resolve('cmake-js/bin/cmake-js'), 'compile']);
    } catch (error) {
      // Without a toolchain the tests run on the TypeScript engine; under CI that fails loudly elsewhere.
      if (process.env.CI) throw error;
      console.warn(`The native addon could not be rebuilt: ${(error as Error).message}`);
    }
  }
  // Atomically, file by file: a test may pack the package (rebuilding dist/) while others import it.
  run([path.join(root, 'scripts', 'build-ts.mjs')]);
}
