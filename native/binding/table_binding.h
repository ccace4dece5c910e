// Exposes one native table to JavaScript as a set of functions bound to it.
#pragma once

#include <napi.h>

namespace tollgate {

// createTable(config) -> { consume, tryConsume, peek, refund, block, reset, consumeMany, sweep,
// stats, close }. The shape is declared once, in src/engine/table-engine.ts.
// With config.shared = { name, mode } the table lives in the named shared-memory segment,
// created or attached; the result then also says whether this call `created` it.
Napi::Value CreateTable(const Napi::CallbackInfo& info);

// inspectSharedMemory(name) -> a live shared table's options, stats and heavy hitters.
Napi::Value InspectSharedMemory(const Napi::CallbackInfo& info);

// destroySharedMemory(name) -> whether a segment was removed.
Napi::Value DestroySharedMemory(const Napi::CallbackInfo& info);

}  // namespace tollgate
