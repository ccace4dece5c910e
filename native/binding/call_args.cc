// Reading a table call's arguments (see call_args.h).
#include "call_args.h"

#include <string>

#include "errors.h"

namespace tollgate {

GrowableTable* live_table(const Napi::CallbackInfo& info, const Handle& handle) {
  if (!handle->table) throw coded_type_error(info.Env(), kClosedMessage, "TOLLGATE_CLOSED");
  return handle->table.get();
}

int64_t positive_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index) return 1;
  int64_t value = 0;
  napi_get_value_int64(info.Env(), info[index], &value);
  if (value < 1 || value > (int64_t{1} << 53))
    throw range_error(info.Env(), std::string("Expected a positive integer for ") + name);
  return value;
}

int64_t limit_arg(const Napi::CallbackInfo& info, size_t index, const Policy& policy) {
  if (info.Length() <= index) return policy.limit;
  int64_t value = 0;
  napi_get_value_int64(info.Env(), info[index], &value);
  if (!limit_is_valid(policy, value)) throw range_error(info.Env(), "Expected a valid limit for limit");
  return value;
}

void key_arg(const Napi::CallbackInfo& info, size_t index, KeyBytes& key, const char* name) {
  if (!read_key(info.Env(), info[index], key)) {
    throw type_error(info.Env(), "Expected a non-empty string of at most " + std::to_string(kMaxKeyUnits) +
                                     " characters for " + name);
  }
}

KeyCall read_key_call(const Napi::CallbackInfo& info, const Handle& h, KeyBytes& key) {
  GrowableTable* table = live_table(info, h);
  key_arg(info, kArg, key);
  return KeyCall{table, h->hash(key), h->now()};
}

}  // namespace tollgate
