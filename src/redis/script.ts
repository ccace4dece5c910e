// A Lua script as tollgate sends it: its text, and the SHA that EVALSHA names it by; a
// ScriptRunner (script-runner.ts) runs it.
import { createHash } from 'node:crypto';

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

/** `lua` with its SHA, computed once. */
export const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });
