// Reading a table call's arguments. TypeScript validates every argument first; these checks keep
// a direct call to the addon from ever reaching arithmetic the algorithms' bounds exclude, or a
// closed table's unmapped memory.
#pragma once

#include <napi.h>

#include <cstdint>

#include "key_bytes.h"
#include "table_handle.h"

namespace tollgate {

// A table function's arguments: the table's handle first (see table_binding.h), then the call's
// own, which argument kArg + n is.
constexpr size_t kArg = 1;

// The table behind a call; throws TOLLGATE_CLOSED once it was closed.
GrowableTable* live_table(const Napi::CallbackInfo& info, const Handle& handle);

// Argument `index` as a positive integer (cost, amount, duration); 1 when absent, the common case,
// which costs no conversion.
int64_t positive_arg(const Napi::CallbackInfo& info, size_t index, const char* name);

// Argument `index` as a per-call limit valid for `policy`; the policy's own when absent.
int64_t limit_arg(const Napi::CallbackInfo& info, size_t index, const Policy& policy);

// Argument `index` as a key; throws a coded TypeError naming `name` otherwise.
void key_arg(const Napi::CallbackInfo& info, size_t index, KeyBytes& key, const char* name = "key");

// A call on one key: its live table, its hash and the time.
struct KeyCall {
  GrowableTable* table;
  Hash128 hash;
  int64_t now;
};
KeyCall read_key_call(const Napi::CallbackInfo& info, const Handle& h, KeyBytes& key);

}  // namespace tollgate
