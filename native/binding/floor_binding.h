// The N-API floor: a call that takes one string key and does nothing else, for benchmarks.
#pragma once

#include <napi.h>

namespace tollgate {

Napi::Value ReadKeyOnly(const Napi::CallbackInfo& info);
Napi::Value CreateMissFloor(const Napi::CallbackInfo& info);

}  // namespace tollgate
