// Each table becomes a handful of JS functions that carry the table itself as their data, so a
// call costs napi_get_cb_info and nothing to unwrap; arguments were validated in TypeScript.
#include "table_binding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "../core/clock.h"
#include "../core/constants.h"
#include "../core/growable_table.h"
#include "../core/region.h"
#include "../core/shared_region.h"
#include "../core/table.h"
#include "key_bytes.h"

namespace tollgate {
namespace {

// Indices into the Float64Array the TypeScript side reads a decision from.
enum Detail { kAllowed = 0, kLimit, kRemaining, kResetMs, kRetryAfterMs, kDetailSize };

struct TableHandle {
  std::unique_ptr<GrowableTable> table;
  Policy policy{};
  bool top_keys = false;
  double* detail = nullptr;       // kDetailSize doubles, kept alive by detail_ref
  const double* clock = nullptr;  // the test clock's one double, or null for the monotonic clock
  Napi::Reference<Napi::Float64Array> detail_ref;
  Napi::Reference<Napi::Float64Array> clock_ref;

  CoarseMonotonicClock host_clock;

  int64_t now() noexcept { return clock != nullptr ? int64_t(clock[0]) : host_clock.now_ms(); }

  // The last short key and its hash: a hot key (one global limit, one busy client) skips
  // SipHash on repeats for the price of a short compare. A handle serves one JS thread.
  static constexpr size_t kHashCacheBytes = 96;  // 48 code units
  uint8_t cached_key[kHashCacheBytes] = {};
  size_t cached_length = 0;
  Hash128 cached_hash{};

  Hash128 hash(const KeyBytes& key) noexcept {
    const size_t length = key.bytes();
    if (length == cached_length && std::memcmp(key.data(), cached_key, length) == 0) return cached_hash;
    const Hash128 h = table->hash(key.data(), length);
    if (length <= kHashCacheBytes) {
      std::memcpy(cached_key, key.data(), length);
      cached_length = length;
      cached_hash = h;
    }
    return h;
  }

  // Shared tables only: what a decision is when its shard lock was not had in time.
  bool lock_fails_open = true;
  int64_t lock_timeout_ms = -1;

  Verdict settle(const Verdict& v, int64_t limit) const noexcept {
    if (!v.lock_failed) return v;
    if (lock_fails_open) return Verdict{true, limit, limit, 0, 0};
    return Verdict{false, limit, 0, 0, std::max<int64_t>(1, lock_timeout_ms)};
  }

  void write(const Verdict& v) const noexcept {
    detail[kAllowed] = v.allowed ? 1 : 0;
    detail[kLimit] = double(v.limit);
    detail[kRemaining] = double(v.remaining);
    detail[kResetMs] = double(v.reset_ms);
    detail[kRetryAfterMs] = v.retry_ms == kNever ? INFINITY : double(v.retry_ms);
  }
};

using Handle = std::shared_ptr<TableHandle>;


int64_t int_arg(napi_env env, napi_value value) {
  int64_t out = 0;
  napi_get_value_int64(env, value, &out);
  return out;
}

// A policy as JavaScript sees it: { kind, limit, windowMs, rateTokens, rateIntervalMs }.
Napi::Object policy_object(Napi::Env env, const Policy& p) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", double(p.kind));
  out.Set("limit", double(p.limit));
  out.Set("windowMs", double(p.window_ms));
  out.Set("rateTokens", double(p.rate_tokens));
  out.Set("rateIntervalMs", double(p.rate_interval_ms));
  return out;
}

// Heavy hitters as [{ key, length, count, denied, error }], unsorted; length in UTF-16 code units.
Napi::Array top_keys_array(Napi::Env env, const std::vector<TopKey>& top) {
  Napi::Array out = Napi::Array::New(env, top.size());
  for (size_t i = 0; i < top.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    // The stored UTF-16 units, which the TypeScript side turns into a string:
    // napi_create_string_utf16 was seen to replace lone surrogates with U+FFFD here.
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

// The counters both stats() and inspectSharedMemory() report.
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
  return out;
}

Napi::Error coded_error(napi_env env, const std::string& message, const char* code) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// The error kinds the TypeScript side throws, with the same codes, for direct calls to the addon.
Napi::Error type_error(napi_env env, const std::string& message) {
  Napi::Error error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "TOLLGATE_INVALID_ARGUMENT"));
  return error;
}

Napi::Error range_error(napi_env env, const std::string& message) {
  Napi::Error error = Napi::RangeError::New(env, message);
  error.Set("code", Napi::String::New(env, "TOLLGATE_OUT_OF_RANGE"));
  return error;
}

// TypeScript validates every argument; these checks keep a direct call to the addon from ever
// reaching arithmetic that the algorithms' bounds exclude.
// A missing argument is the common case (cost 1, the policy's limit) and costs no conversion.
int64_t positive_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index) return 1;
  const int64_t value = int_arg(info.Env(), info[index]);
  if (value < 1 || value > (int64_t{1} << 53)) {
    throw range_error(info.Env(), std::string("Expected a positive integer for ") + name);
  }
  return value;
}

int64_t limit_arg(const Napi::CallbackInfo& info, size_t index, const Policy& policy) {
  if (info.Length() <= index) return policy.limit;
  const int64_t value = int_arg(info.Env(), info[index]);
  if (!limit_is_valid(policy, value)) throw range_error(info.Env(), "Expected a valid limit for limit");
  return value;
}

// The table behind a call, or a thrown error if it was closed (TypeScript checks first; this is
// the invariant that keeps a stray call from touching unmapped memory).
GrowableTable* live_table(const Napi::CallbackInfo& info, const Handle& handle) {
  if (!handle->table) {
    Napi::Error error = Napi::TypeError::New(info.Env(), "The limiter is closed; create a new one to make further decisions");
    error.Set("code", Napi::String::New(info.Env(), "TOLLGATE_CLOSED"));
    throw error;
  }
  return handle->table.get();
}

bool key_arg(const Napi::CallbackInfo& info, size_t index, KeyBytes& key) {
  if (!read_key(info.Env(), info[index], key)) {
    throw type_error(info.Env(), "Expected a non-empty string of at most " + std::to_string(kMaxKeyUnits) + " characters for key");
  }
  return true;
}

Napi::Float64Array float64_option(const Napi::Object& config, const char* name, size_t min_length) {
  const Napi::Value value = config.Get(name);
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      value.As<Napi::Float64Array>().ElementLength() < min_length) {
    throw type_error(config.Env(), std::string("Expected a Float64Array for ") + name);
  }
  return value.As<Napi::Float64Array>();
}

int64_t int_option(const Napi::Object& config, const char* name) {
  const Napi::Value value = config.Get(name);
  if (!value.IsNumber()) {
    throw type_error(config.Env(), std::string("Expected a number for ") + name);
  }
  return value.As<Napi::Number>().Int64Value();
}

template <class Body>
void define(Napi::Object& target, const char* name, const Handle& handle, Body body) {
  target.Set(name, Napi::Function::New(
                       target.Env(),
                       [handle, body](const Napi::CallbackInfo& info) { return body(info, handle); },
                       name));
}

}  // namespace

Napi::Value CreateTable(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw type_error(env, "Expected a config object");
  const Napi::Object config = info[0].As<Napi::Object>();

  auto handle = std::make_shared<TableHandle>();
  handle->policy.kind = static_cast<PolicyKind>(int_option(config, "kind"));
  handle->policy.limit = int_option(config, "limit");
  handle->policy.window_ms = int_option(config, "windowMs");
  handle->policy.rate_tokens = int_option(config, "rateTokens");
  handle->policy.rate_interval_ms = int_option(config, "rateIntervalMs");
  if (!policy_is_valid(handle->policy)) throw range_error(env, "Invalid policy parameters");
  const int64_t capacity = int_option(config, "capacity");
  const int64_t shards = int_option(config, "shards");
  if (capacity < 1 || uint64_t(capacity) > Table::kMaxCapacity || shards < 0 || shards > int64_t{kMaxShards}) {
    throw range_error(env, "capacity or shards out of range");
  }

  Napi::Float64Array detail = float64_option(config, "detail", kDetailSize);
  handle->detail = detail.Data();
  handle->detail_ref = Napi::Persistent(detail);
  if (!config.Get("clock").IsUndefined()) {
    Napi::Float64Array clock = float64_option(config, "clock", 1);
    handle->clock = clock.Data();
    handle->clock_ref = Napi::Persistent(clock);
  }

  TableOptions options{uint64_t(capacity), uint32_t(shards), config.Get("evict").ToBoolean(), handle->policy};
  options.top_keys = config.Get("topKeys").ToBoolean();
  if (options.top_keys) {
    options.top_period_ms = int_option(config, "topKeysPeriodMs");
    if (options.top_period_ms < 1) throw range_error(env, "topKeysPeriodMs out of range");
  }
  const bool populate = config.Get("preallocate").ToBoolean();
  const size_t size = TableLayout::plan(options.capacity, options.shards, options.top_keys).total_size;
  const auto prepare = [&options](void* base) { return Table::format(base, options, random_seed()); };
  bool created = true;
  const Napi::Value shared = config.Get("shared");
  if (shared.IsObject()) {
    const Napi::Object spec = shared.As<Napi::Object>();
    const Napi::Value name_value = spec.Get("name");
    const std::string name = name_value.IsString() ? name_value.As<Napi::String>().Utf8Value() : std::string();
    const int64_t mode = int_option(spec, "mode");
    if (!shared_name_is_valid(name)) throw range_error(env, "Invalid shared memory name");
    if (mode < 0 || mode > 0777 || (mode & 0600) != 0600) throw range_error(env, "Invalid mode");
    handle->lock_timeout_ms = int_option(spec, "lockTimeoutMs");
    if (handle->lock_timeout_ms < -1 || handle->lock_timeout_ms > (int64_t{1} << 31)) throw range_error(env, "Invalid lockTimeoutMs");
    handle->lock_fails_open = spec.Get("onLockTimeout").ToBoolean();
    SharedRegion opened = open_shared_region(name, size, unsigned(mode), populate, prepare);
    if (!opened.region) throw coded_error(env, opened.error, "TOLLGATE_SHARED_MEMORY");
    const std::string mismatch = Table::check(opened.region->base(), opened.region->size(), options);
    if (!mismatch.empty()) {
      throw coded_error(env, "Shared memory segment '" + name + "' " + mismatch, "TOLLGATE_STORE_MISMATCH");
    }
    created = opened.created;
    handle->table = std::make_unique<GrowableTable>(std::move(opened.region));
  } else {
    // In process: the table starts with room for `initialCapacity` keys and doubles as keys
    // arrive, up to `capacity` (preallocate: the whole capacity now, committed).
    const int64_t initial = config.Get("initialCapacity").IsUndefined() ? capacity : int_option(config, "initialCapacity");
    if (initial < 1 || initial > capacity) throw range_error(env, "initialCapacity out of range");
    handle->table = GrowableTable::in_process(options, uint64_t(initial), populate, random_seed());
    if (!handle->table) throw coded_error(env, "Could not map memory for the table", "TOLLGATE_OUT_OF_MEMORY");
  }
  handle->table->set_lock_timeout(handle->lock_timeout_ms);
  handle->top_keys = options.top_keys;

  Napi::Object api = Napi::Object::New(env);
  // consume(key, cost?, limit?) and tryConsume: one shape, differing in whether the detail is written.
  const auto consuming = [](bool write_detail) {
    return [write_detail](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
      GrowableTable* table = live_table(info, h);
      KeyBytes key;
      key_arg(info, 0, key);
      const int64_t cost = positive_arg(info, 1, "cost");
      const int64_t limit = limit_arg(info, 2, h->policy);
      const KeyText text{key.data(), key.bytes(), uint32_t(key.count)};
      const Verdict v = h->settle(table->consume(h->hash(key), h->policy, limit, cost, h->now(), true, &text), limit);
      if (write_detail) h->write(v);
      return Napi::Boolean::New(info.Env(), v.allowed);
    };
  };
  define(api, "consume", handle, consuming(true));
  define(api, "tryConsume", handle, consuming(false));
  define(api, "peek", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    GrowableTable* table = live_table(info, h);
    KeyBytes key;
    key_arg(info, 0, key);
    const int64_t cost = positive_arg(info, 1, "cost");
    const int64_t limit = limit_arg(info, 2, h->policy);
    const Verdict v = h->settle(table->consume(h->hash(key), h->policy, limit, cost, h->now(), false), limit);
    h->write(v);
    return Napi::Boolean::New(info.Env(), v.allowed);
  });
  define(api, "refund", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    GrowableTable* table = live_table(info, h);
    KeyBytes key;
    key_arg(info, 0, key);
    const int64_t amount = positive_arg(info, 1, "amount");
    const int64_t limit = limit_arg(info, 2, h->policy);
    table->refund(h->hash(key), h->policy, limit, amount, h->now());
    return info.Env().Undefined();
  });
  define(api, "block", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    GrowableTable* table = live_table(info, h);
    KeyBytes key;
    key_arg(info, 0, key);
    const int64_t duration = std::min(positive_arg(info, 1, "durationMs"), kMaxBlockMs);
    const int64_t limit = limit_arg(info, 2, h->policy);
    const int64_t now = h->now();
    return Napi::Boolean::New(info.Env(), table->block(h->hash(key), h->policy, limit, now + duration, now));
  });
  define(api, "reset", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    GrowableTable* table = live_table(info, h);
    KeyBytes key;
    key_arg(info, 0, key);
    return Napi::Boolean::New(info.Env(), table->reset(h->hash(key), h->now()));
  });
  define(api, "consumeMany", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    // consumeMany(keys, cost, limit, out: Uint8Array) -> allowed count; one boundary crossing.
    // Two phases: every key is read (and validated) exactly once before anything is decided, and
    // nothing that can run JavaScript (getters, proxies) runs after the table and `out` are
    // taken, so a getter that closes the limiter or detaches `out` can do no harm.
    const napi_env env = info.Env();
    live_table(info, h);
    const napi_value keys = info[0];
    bool is_array = false;
    uint32_t count = 0;
    if (napi_is_array(env, keys, &is_array) != napi_ok || !is_array || napi_get_array_length(env, keys, &count) != napi_ok) {
      throw type_error(env, "Expected an array of strings for keys");
    }
    const int64_t cost = positive_arg(info, 1, "cost");
    const int64_t limit = limit_arg(info, 2, h->policy);
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
    const Napi::Value out_value = info[3];
    if (!out_value.IsTypedArray() || out_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        out_value.As<Napi::Uint8Array>().ElementLength() < count) {
      throw type_error(env, "Expected a Uint8Array as long as keys for out");
    }
    uint8_t* out = out_value.As<Napi::Uint8Array>().Data();
    const int64_t now = h->now();
    uint32_t allowed = 0;
    // Keys go through in groups whose cache misses overlap: hash all and fetch their tags, then
    // locate and fetch their slots, then decide. A random key otherwise waits for each miss in turn.
    constexpr uint32_t kGroup = 16;
    Hash128 hashes[kGroup];
    for (uint32_t first = 0; first < count; first += kGroup) {
      const uint32_t n = std::min(kGroup, count - first);
      for (uint32_t j = 0; j < n; ++j) {
        const KeyText& t = texts[first + j];
        hashes[j] = table->hash(t.data, t.bytes);
        table->prefetch(hashes[j]);
      }
      for (uint32_t j = 0; j < n; ++j) table->prefetch_slot(hashes[j]);
      for (uint32_t j = 0; j < n; ++j) {
        const Verdict v = h->settle(table->consume(hashes[j], h->policy, limit, cost, now, true, &texts[first + j]), limit);
        out[first + j] = v.allowed ? 1 : 0;
        allowed += v.allowed ? 1 : 0;
      }
    }
    return Napi::Number::New(env, allowed);
  });
  define(api, "topKeys", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    // topKeys() -> [{ key, length, count, denied, error }], unsorted, every shard's summary.
    return top_keys_array(info.Env(), live_table(info, h)->top_keys(h->now()));
  });
  define(api, "sweep", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    return Napi::Number::New(info.Env(), double(live_table(info, h)->sweep(h->now())));
  });
  define(api, "stats", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    const TableStats st = live_table(info, h)->stats();
    Napi::Object out = stats_object(info.Env(), st);
    out.Set("capacity", double(st.capacity));
    out.Set("shards", double(st.shards));
    out.Set("lockTimeouts", double(h->table->lock_failures()));
    return out;
  });
  api.Set("created", Napi::Boolean::New(env, created));
  api.Set("creatorPolicy", policy_object(env, handle->table->creator_policy()));
  if (config.Get("testHooks").ToBoolean()) {
    // NOTE: for crash tests only: takes the key's shard lock and never releases it.
    define(api, "holdShardLock", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
      GrowableTable* table = live_table(info, h);
      KeyBytes key;
      key_arg(info, 0, key);
      table->debug_hold_lock(h->hash(key));
      return info.Env().Undefined();
    });
  }
  define(api, "close", handle, [](const Napi::CallbackInfo& info, const Handle& h) -> Napi::Value {
    h->table.reset();
    return info.Env().Undefined();
  });
  return api;
}

Napi::Value DestroySharedMemory(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string();
  if (!shared_name_is_valid(name)) throw range_error(env, "Invalid shared memory name");
  std::string error;
  const int removed = unlink_shared_region(name, error);
  if (removed < 0) throw coded_error(env, error, "TOLLGATE_SHARED_MEMORY");
  return Napi::Boolean::New(env, removed == 1);
}

Napi::Value InspectSharedMemory(const Napi::CallbackInfo& info) {
  // inspectSharedMemory(name) -> { capacity, shards, evict, policy, topKeys, periodMs, stats, top }
  const Napi::Env env = info.Env();
  const std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string();
  if (!shared_name_is_valid(name)) throw range_error(env, "Invalid shared memory name");
  SharedRegion opened = attach_shared_region(name);
  if (!opened.region) throw coded_error(env, opened.error, "TOLLGATE_SHARED_MEMORY");
  TableOptions options{};
  const std::string problem = Table::describe(opened.region->base(), opened.region->size(), options);
  if (!problem.empty()) throw coded_error(env, "Shared memory segment '" + name + "' " + problem, "TOLLGATE_STORE_MISMATCH");
  Table table(opened.region->base());
  const TableStats st = table.stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("capacity", double(options.capacity));
  out.Set("shards", double(st.shards));
  out.Set("evict", options.evict);
  out.Set("policy", policy_object(env, options.policy));
  out.Set("topKeys", options.top_keys);
  out.Set("topKeysPeriodMs", double(options.top_period_ms));
  Napi::Object stats = stats_object(env, st);
  stats.Set("slots", double(st.capacity));
  out.Set("stats", stats);
  out.Set("top", top_keys_array(env, table.top_keys(monotonic_ms())));
  return out;
}

}  // namespace tollgate
