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
#include "table_config.h"

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

template <class Body>
void define(Napi::Object& target, const char* name, const Handle& handle, Body body) {
  target.Set(name, Napi::Function::New(
                       target.Env(),
                       [handle, body](const Napi::CallbackInfo& info) { return body(info, handle); },
                       name));
}


// One shape per kind of call: a decision on one key (consume, tryConsume, peek), a change to one
// key (refund, block, reset), and whole-table calls; consumeMany has its own.

// What a call on one key reads: its table, its hash, an optional positive amount (cost, amount or
// duration; 1 when absent) and an optional limit override.
struct KeyCall {
  GrowableTable* table;
  Hash128 hash;
  const KeyBytes* key;
  int64_t amount;
  int64_t limit;
  int64_t now;
};

KeyCall read_key_call(const Napi::CallbackInfo& info, const Handle& h, KeyBytes& key, const char* amount_name) {
  GrowableTable* table = live_table(info, h);
  key_arg(info, 0, key);
  const int64_t amount = positive_arg(info, 1, amount_name);
  const int64_t limit = limit_arg(info, 2, h->policy);
  return KeyCall{table, h->hash(key), &key, amount, limit, h->now()};
}

// consume(key, cost?, limit?), tryConsume (no detail written) and peek (nothing committed).
template <bool kCommit, bool kWriteDetail>
Napi::Value decide_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key, "cost");
  const KeyText text{key.data(), key.bytes(), uint32_t(key.count)};
  const Verdict v = h->settle(c.table->consume(c.hash, h->policy, c.limit, c.amount, c.now, kCommit,
                                               kCommit ? &text : nullptr),
                              c.limit);
  if (kWriteDetail) h->write(v);
  return Napi::Boolean::New(info.Env(), v.allowed);
}

Napi::Value refund_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key, "amount");
  c.table->refund(c.hash, h->policy, c.limit, c.amount, c.now);
  return info.Env().Undefined();
}

Napi::Value block_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key, "durationMs");
  return Napi::Boolean::New(info.Env(), c.table->block(c.hash, c.now + std::min(c.amount, kMaxBlockMs), c.now));
}

Napi::Value reset_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key, "amount");
  return Napi::Boolean::New(info.Env(), c.table->reset(c.hash, c.now));
}

Napi::Value hold_lock_call(const Napi::CallbackInfo& info, const Handle& h) {
  // NOTE: for crash tests only: takes the key's shard lock and never releases it.
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key, "amount");
  c.table->debug_hold_lock(c.hash);
  return info.Env().Undefined();
}

Napi::Value top_keys_call(const Napi::CallbackInfo& info, const Handle& h) {
  // topKeys() -> [{ key, length, count, denied, error }], unsorted, every shard's summary.
  return top_keys_array(info.Env(), live_table(info, h)->top_keys(h->now()));
}

Napi::Value sweep_call(const Napi::CallbackInfo& info, const Handle& h) {
  return Napi::Number::New(info.Env(), double(live_table(info, h)->sweep(h->now())));
}

Napi::Value stats_call(const Napi::CallbackInfo& info, const Handle& h) {
  const TableStats st = live_table(info, h)->stats();
  Napi::Object out = stats_object(info.Env(), st);
  out.Set("slots", double(st.capacity));
  out.Set("shards", double(st.shards));
  out.Set("lockTimeouts", double(h->table->lock_failures()));
  return out;
}

Napi::Value close_call(const Napi::CallbackInfo& info, const Handle& h) {
  h->table.reset();
  return info.Env().Undefined();
}

Napi::Value consume_many_call(const Napi::CallbackInfo& info, const Handle& h);

// The table a config asks for: a shared segment created or attached, or an in-process table.
std::unique_ptr<GrowableTable> open_table(napi_env env, const TableConfig& c, bool& created) {
  const size_t size = TableLayout::plan(c.options.capacity, c.options.shards, c.options.top_keys).total_size;
  if (!c.shared) {
    // In process: the table starts with room for `initialCapacity` keys and doubles as keys
    // arrive, up to `capacity` (preallocate: the whole first generation now, committed).
    created = true;
    auto table = GrowableTable::in_process(c.options, c.initial_capacity, c.preallocate, random_seed());
    if (!table) throw coded_error(env, "Could not map memory for the table", "TOLLGATE_OUT_OF_MEMORY");
    return table;
  }
  const TableOptions& options = c.options;
  const auto prepare = [&options](void* base) { return Table::format(base, options, random_seed()); };
  const SharedConfig& s = c.shared_config;
  SharedRegion opened = open_shared_region(s.name, size, s.mode, c.preallocate, prepare);
  if (!opened.region) throw coded_error(env, opened.error, "TOLLGATE_SHARED_MEMORY");
  const std::string mismatch = Table::check(opened.region->base(), opened.region->size(), c.options);
  if (!mismatch.empty()) {
    // Say how to get out: the segment is someone else's (another app, an older deploy) or stale.
    throw coded_error(env,
                      "Shared memory segment '" + s.name + "' " + mismatch +
                          ". Another program (or an earlier deploy) uses this name: give this limiter another name in "
                          "sharedMemory({ name }), or, once no process uses it, remove it with destroySharedMemory('" +
                          s.name + "') or `npx tollgate destroy " + s.name + "`. `npx tollgate list` shows the tables "
                          "that exist, `npx tollgate inspect " + s.name + "` what this one holds.",
                      "TOLLGATE_STORE_MISMATCH");
  }
  created = opened.created;
  return std::make_unique<GrowableTable>(std::move(opened.region));
}

}  // namespace

Napi::Value CreateTable(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  TableConfig config = read_table_config(info[0], kDetailSize);
  auto handle = std::make_shared<TableHandle>();
  handle->policy = config.options.policy;
  handle->detail = config.detail.Data();
  handle->detail_ref = Napi::Persistent(config.detail);
  if (!config.clock.IsEmpty()) {
    handle->clock = config.clock.Data();
    handle->clock_ref = Napi::Persistent(config.clock);
  }
  if (config.shared) {
    handle->lock_timeout_ms = config.shared_config.lock_timeout_ms;
    handle->lock_fails_open = config.shared_config.lock_fails_open;
  }
  bool created = false;
  handle->table = open_table(env, config, created);
  handle->table->set_lock_timeout(handle->lock_timeout_ms);
  if (config.test_hooks) handle->table->debug_fingerprint_bits(config.fingerprint_bits);

  Napi::Object api = Napi::Object::New(env);
  define(api, "consume", handle, decide_call<true, true>);
  define(api, "tryConsume", handle, decide_call<true, false>);
  define(api, "peek", handle, decide_call<false, true>);
  define(api, "refund", handle, refund_call);
  define(api, "block", handle, block_call);
  define(api, "reset", handle, reset_call);
  define(api, "consumeMany", handle, consume_many_call);
  define(api, "topKeys", handle, top_keys_call);
  define(api, "sweep", handle, sweep_call);
  define(api, "stats", handle, stats_call);
  define(api, "close", handle, close_call);
  if (config.test_hooks) define(api, "holdShardLock", handle, hold_lock_call);
  api.Set("created", Napi::Boolean::New(env, created));
  api.Set("creatorPolicy", policy_object(env, handle->table->creator_policy()));
  return api;
}

namespace {

Napi::Value consume_many_call(const Napi::CallbackInfo& info, const Handle& h) {
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
        const Verdict v = h->settle(table->consume(hashes[j], h->policy, limit, cost, now, true, &texts[first + j]), limit);
        out[first + j] = v.allowed ? 1 : 0;
        allowed += v.allowed ? 1 : 0;
      }
    }
    if (bounded) table->set_lock_timeout(h->lock_timeout_ms);
    return Napi::Number::New(env, allowed);
  }

}  // namespace

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
