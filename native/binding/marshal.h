// The JavaScript objects the addon returns: a policy, a table's counters, its heavy hitters.
#pragma once

#include <napi.h>

#include <vector>

#include "../core/table.h"

namespace tollgate {

// { kind, limit, windowMs, rateTokens, rateIntervalMs }
Napi::Object policy_object(Napi::Env env, const Policy& p);

// The counters stats() and inspectSharedMemory() report, slots and shards included.
Napi::Object stats_object(Napi::Env env, const TableStats& st);

// [{ key: '', units, length, count, denied, error }], unsorted; `units` holds the stored UTF-16
// code units (the TypeScript side makes the string), `length` the key's full length.
Napi::Array top_keys_array(Napi::Env env, const std::vector<TopKey>& top);

}  // namespace tollgate
