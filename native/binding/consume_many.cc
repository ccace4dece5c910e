// consumeMany: see consume_many.h.
#include "consume_many.h"

#include <algorithm>
#include <string>
#include <vector>

#include "call_args.h"
#include "errors.h"

namespace tollgate {

Napi::Value consume_many_call(const Napi::CallbackInfo& info, const Handle& h) {
  // consumeMany(keys, cost, limit, out: Uint8Array) -> allowed count; one boundary crossing.
  // Two phases: every key is read (and validated) exactly once before anything is decided, and
  // nothing that can run JavaScript (getters, proxies) runs after the table and `out` are
  // taken, so a getter that closes the limiter or detaches `out` can do no harm.
  const napi_env env = info.Env();
  live_table(info, h);
  const napi_value keys = info[kArg];
  bool is_array = false;
  uint32_t count = 0;
  if (napi_is_array(env, keys, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, keys, &count) != napi_ok) {
    throw type_error(env, "Expected an array of strings for keys");
  }
  const int64_t cost = positive_arg(info, kArg + 1, "cost");
  const int64_t limit = limit_arg(info, kArg + 2, h->policy);
  thread_local std::vector<uint8_t> bytes;
  thread_local std::vector<size_t> offsets;
  thread_local std::vector<KeyText> texts;
  bytes.clear();
  offsets.clear();
  texts.clear();
  KeyBytes key;
  for (uint32_t i = 0; i < count; ++i) {
    napi_value item;
    if (napi_get_element(env, keys, i, &item) != napi_ok || !read_key(env, item, key)) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) throw Napi::Error::New(env);  // a getter threw: pass its error on
      throw type_error(env, "Expected a non-empty string of at most " + std::to_string(kMaxKeyUnits) +
                                " characters for keys[" + std::to_string(i) + "]");
    }
    offsets.push_back(bytes.size());
    texts.push_back(KeyText{nullptr, key.bytes(), uint32_t(key.count)});
    bytes.insert(bytes.end(), key.data(), key.data() + key.bytes());
  }
  // Pointers only now that `bytes` has stopped growing.
  for (size_t i = 0; i < texts.size(); ++i) texts[i].data = bytes.data() + offsets[i];
  // No JavaScript runs from here on.
  GrowableTable* table = live_table(info, h);
  const Napi::Value out_value = info[kArg + 3];
  if (!out_value.IsTypedArray() || out_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      out_value.As<Napi::Uint8Array>().ElementLength() < count) {
    throw type_error(env, "Expected a Uint8Array as long as keys for out");
  }
  uint8_t* out = out_value.As<Napi::Uint8Array>().Data();
  const int64_t now = h->now();
  uint32_t allowed = 0;
  // A whole batch waits for held shards at most lockTimeoutMs in all, not once per key: each
  // key gets what is left of the budget, and once it is spent a held shard is not waited for
  // (its keys are decided by onLockTimeout) while the other shards' keys go on as usual.
  const bool bounded = h->lock_timeout_ms >= 0;
  const int64_t started_ns = bounded ? monotonic_ns() : 0;
  int64_t budget_left = h->lock_timeout_ms;
  // Keys go through in groups whose cache misses overlap: hash all and start fetching both
  // buckets of each, then decide. A random key otherwise waits for its miss alone.
  constexpr uint32_t kGroup = 16;
  Hash128 hashes[kGroup];
  for (uint32_t first = 0; first < count; first += kGroup) {
    const uint32_t n = std::min(kGroup, count - first);
    for (uint32_t j = 0; j < n; ++j) {
      const KeyText& t = texts[first + j];
      hashes[j] = table->hash(t.data, t.bytes);
      table->prefetch(hashes[j]);
    }
    for (uint32_t j = 0; j < n; ++j) {
      if (bounded) {
        const int64_t spent_ms = (monotonic_ns() - started_ns + 999999) / 1000000;
        const int64_t left = std::max<int64_t>(0, h->lock_timeout_ms - spent_ms);
        if (left != budget_left) table->set_lock_timeout(budget_left = left);
      }
      const Verdict v =
          h->settle(table->consume(hashes[j], h->policy, limit, cost, now, true, &texts[first + j]), limit);
      out[first + j] = v.allowed ? 1 : 0;
      allowed += v.allowed ? 1 : 0;
    }
  }
  if (bounded) table->set_lock_timeout(h->lock_timeout_ms);
  return Napi::Number::New(env, allowed);
}

}  // namespace tollgate
