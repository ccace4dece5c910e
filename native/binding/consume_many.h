// consumeMany(keys, cost, limit, out): many keys decided in one boundary crossing.
#pragma once

#include <napi.h>

#include "table_handle.h"

namespace tollgate {

// Writes 1 (allowed) or 0 per key into `out` (a Uint8Array at least as long as `keys`) and
// returns how many were allowed.
Napi::Value consume_many_call(const Napi::CallbackInfo& info, const Handle& h);

}  // namespace tollgate
