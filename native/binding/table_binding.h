// Exposes one native table to JavaScript as a set of functions bound to it.
#pragma once

#include <napi.h>

namespace tollgate {

// createTable(config) -> { consume, tryConsume, peek, refund, block, reset, consumeMany, sweep,
// stats, close }. The shape is declared once, in src/engine/native-addon.ts.
Napi::Value CreateTable(const Napi::CallbackInfo& info);

}  // namespace tollgate
