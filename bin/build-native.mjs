// `tollgate build-native`: compiles the addon from the sources shipped in the package, in place
// (build/Release/tollgate.node, which the loader tries where no prebuilt binary fits).
// The build tools (cmake-js, node-addon-api) are tollgate's devDependencies, not runtime ones: an
// install of tollgate stays small. They are used from wherever they resolve (a clone's
// node_modules, or the user's project); otherwise they are installed into the package's own
// build-tools/ folder, with the exact npm command printed first, or, with --no-install, named.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const TOOLS = ['cmake-js', 'node-addon-api'];

/** Where `name`'s package.json resolves from `from` (a directory), or undefined. */
function resolvePackage(from, name) {
  try {
    return path.dirname(createRequire(path.join(from, 'noop.js')).resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** `arg` as a POSIX shell reads it back (ranges like ^8.0.0 are globs to some shells). */
function quote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The npm to run: the one that started us (npx/npm run set npm_execpath), else npm on PATH. */
function npmCommand() {
  const execpath = process.env.npm_execpath;
  if (execpath !== undefined && /npm-cli\.js$/.test(execpath) && existsSync(execpath)) return { file: process.execPath, prefix: [execpath], shown: 'npm' };
  return { file: process.platform === 'win32' ? 'npm.cmd' : 'npm', prefix: [], shown: 'npm' };
}

/**
 * Builds the addon in `root` (tollgate's installed folder). `log` receives progress lines; returns
 * { ok: true, binary } or { ok: false, message } (what failed and what to do).
 */
export function buildNative(root, { install = true, log = (line) => process.stdout.write(`${line}\n`) } = {}) {
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const wanted = TOOLS.map((name) => `${name}@${manifest.devDependencies?.[name] ?? 'latest'}`);
  const toolsDir = path.join(root, 'build-tools');
  const locate = () => Object.fromEntries(TOOLS.map((name) => [name, resolvePackage(root, name) ?? resolvePackage(toolsDir, name)]));
  let found = locate();
  const missing = TOOLS.filter((name) => found[name] === undefined);
  if (missing.length > 0) {
    const npm = npmCommand();
    const args = ['install', '--prefix', toolsDir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', ...wanted];
    const shown = `${npm.shown} ${args.map(quote).join(' ')}`;
    if (!install) {
      return {
        ok: false,
        message: `the build needs ${missing.join(' and ')}, which are not installed; install them with:\n  ${shown}\nor in your project: npm install --save-dev ${wanted.map(quote).join(' ')}`,
      };
    }
    log(`tollgate: the build needs ${missing.join(' and ')}; running:\n  ${shown}`);
    mkdirSync(toolsDir, { recursive: true });
    const installed = spawnSync(npm.file, [...npm.prefix, ...args], { cwd: root, stdio: 'inherit' });
    if (installed.error !== undefined || installed.status !== 0) {
      return { ok: false, message: `installing the build tools failed (${installed.error?.message ?? `npm exited with ${installed.status}`}); run it yourself:\n  ${shown}` };
    }
    found = locate();
    const still = TOOLS.filter((name) => found[name] === undefined);
    if (still.length > 0) return { ok: false, message: `npm ran, but ${still.join(' and ')} still do not resolve from ${toolsDir}` };
  }
  const cli = path.join(found['cmake-js'], 'bin', 'cmake-js');
  const args = [cli, 'compile', `--CDNODE_ADDON_API_DIR=${found['node-addon-api']}`];
  log(`tollgate: building with cmake-js (${found['cmake-js']})`);
  const built = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) {
    return { ok: false, message: 'the native build failed (it needs cmake and a C++17 compiler: apt install cmake g++, apk add cmake g++ make)' };
  }
  return { ok: true, binary: path.join(root, 'build', 'Release', 'tollgate.node') };
}
