// The JavaScript objects the addon returns (see marshal.h).
#include "marshal.h"

#include <cstring>

namespace tollgate {

Napi::Object policy_object(Napi::Env env, const Policy& p) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", double(p.kind));
  out.Set("limit", double(p.limit));
  out.Set("windowMs", double(p.window_ms));
  out.Set("rateTokens", double(p.rate_tokens));
  out.Set("rateIntervalMs", double(p.rate_interval_ms));
  return out;
}

Napi::Object stats_object(Napi::Env env, const TableStats& st) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("entries", double(st.entries));
  out.Set("evictions", double(st.evictions));
  out.Set("refused", double(st.refused));
  out.Set("swept", double(st.swept));
  out.Set("lockRecoveries", double(st.lock_recoveries));
  out.Set("memoryBytes", double(st.bytes));
  out.Set("allowed", double(st.allowed));
  out.Set("denied", double(st.denied));
  out.Set("deniedBlocked", double(st.denied_blocked));
  out.Set("nearLimit", double(st.near_limit));
  out.Set("lockContended", double(st.contended));
  out.Set("maxShardEntries", double(st.max_shard_entries));
  out.Set("slots", double(st.capacity));
  out.Set("shards", double(st.shards));
  return out;
}

Napi::Array top_keys_array(Napi::Env env, const std::vector<TopKey>& top) {
  Napi::Array out = Napi::Array::New(env, top.size());
  for (size_t i = 0; i < top.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    // Units, not a string: napi_create_string_utf16 was seen to replace lone surrogates with U+FFFD.
    Napi::Uint16Array units = Napi::Uint16Array::New(env, top[i].key.size() / 2);
    std::memcpy(units.Data(), top[i].key.data(), units.ElementLength() * 2);
    o.Set("key", Napi::String::New(env, ""));
    o.Set("units", units);
    o.Set("length", double(top[i].length));
    o.Set("count", double(top[i].count));
    o.Set("denied", double(top[i].denied));
    o.Set("error", double(top[i].error));
    out.Set(uint32_t(i), o);
  }
  return out;
}

}  // namespace tollgate
