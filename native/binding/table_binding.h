// Exposes one native table to JavaScript as a set of functions bound to it.
#pragma once

#include <napi.h>

namespace tollgate {

// The table functions, made once per addon instance (per thread), each taking a table's External
// as its first argument. Made per table, they cost 11 N-API functions, each with callback data and a
// finalizer: 20,000 short-lived limiters left over 100 MiB of allocator arenas behind.
// tableFunctions = { consume, tryConsume, peek, refund, block, reset, consumeMany, topKeys, sweep,
// stats, close, holdShardLock }; the shape is declared once, in src/engine/table-engine.ts.
Napi::Object table_functions(Napi::Env env);

// createTable(config) -> { self, created, creatorPolicy }: `self` is the External the table
// functions take first. With config.shared = { name, mode } the table lives in the named
// shared-memory segment, created or attached; `created` says whether this call made it.
Napi::Value CreateTable(const Napi::CallbackInfo& info);

}  // namespace tollgate
