// The shared-memory calls that need no table of one's own.
#pragma once

#include <napi.h>

namespace tollgate {

// inspectSharedMemory(name) -> a live shared table's options, stats and heavy hitters.
Napi::Value InspectSharedMemory(const Napi::CallbackInfo& info);

// destroySharedMemory(name) -> whether a segment was removed.
Napi::Value DestroySharedMemory(const Napi::CallbackInfo& info);

}  // namespace tollgate
