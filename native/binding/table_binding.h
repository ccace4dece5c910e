// Exposes one native table to JavaScript as a set of functions bound to it.
#pragma once

#include <napi.h>

namespace tollgate {

// createTable(config) -> { consume, tryConsume, peek, refund, block, reset, consumeMany, topKeys,
// sweep, stats, close, created, creatorPolicy }. The shape is declared once, in
// src/engine/table-engine.ts. With config.shared = { name, mode } the table lives in the named
// shared-memory segment, created or attached; `created` says whether this call made it.
Napi::Value CreateTable(const Napi::CallbackInfo& info);

}  // namespace tollgate
