// The package as users load it: ESM import by name, and require() from CommonJS (Node >= 20.19).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('the tollgate package', () => {
  it('loads by name with import and with require', () => {
    const viaImport = execFileSync(process.execPath, ['--input-type=module', '-e', "import { Limiter } from 'tollgate'; console.log(typeof Limiter)"], { encoding: 'utf8' });
    const viaRequire = execFileSync(process.execPath, ['-e', "const { Limiter, rateLimit } = require('tollgate'); console.log(typeof Limiter, typeof rateLimit)"], { encoding: 'utf8' });
    expect(viaImport.trim()).toBe('function');
    expect(viaRequire.trim()).toBe('function function');
  });
});
