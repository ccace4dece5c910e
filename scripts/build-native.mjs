// npm install hook: builds the native addon with cmake-js. A failed build leaves tollgate on its
// TypeScript engine (with a warning at run time), except where the native engine is required:
// under CI or TOLLGATE_REQUIRE_NATIVE=1 the install fails instead.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const required = Boolean(process.env.CI) || process.env.TOLLGATE_REQUIRE_NATIVE === '1';

if (process.env.TOLLGATE_SKIP_NATIVE === '1') {
  console.log('tollgate: TOLLGATE_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}

let cli;
try {
  cli = require.resolve('cmake-js/bin/cmake-js');
} catch {
  cli = undefined;
}
const result = cli
  ? spawnSync(process.execPath, [cli, 'compile'], { stdio: 'inherit' })
  : { status: 1, error: new Error('cmake-js is not installed') };

if (result.status !== 0) {
  const why = result.error ? result.error.message : `cmake-js exited with ${result.status}`;
  if (required) {
    console.error(`tollgate: the native build failed (${why})`);
    process.exit(1);
  }
  console.warn(`tollgate: the native build failed (${why}); the TypeScript engine will be used.`);
}
