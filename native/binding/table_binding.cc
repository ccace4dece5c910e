// A table is an External holding its handle; one set of JS functions per addon decides on the
// table given as their first argument. Arguments were validated in TypeScript.
#include "table_binding.h"

#include <algorithm>
#include <memory>
#include <string>

#include "../core/region.h"
#include "../core/shared_region.h"
#include "../core/table.h"
#include "allocator_trim.h"
#include "call_args.h"
#include "consume_many.h"
#include "errors.h"
#include "marshal.h"
#include "table_config.h"
#include "table_handle.h"

namespace tollgate {
namespace {

// One shape per kind of call: a decision on one key (consume, tryConsume, peek), a change to one
// key (refund, block, reset), and whole-table calls; consumeMany has its own file.

// consume(key, cost?, limit?), tryConsume (no detail written) and peek (nothing committed).
template <bool kCommit, bool kWriteDetail>
Napi::Value decide_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key);
  const int64_t cost = positive_arg(info, kArg + 1, "cost");
  const int64_t limit = limit_arg(info, kArg + 2, h->policy);
  const KeyText text{key.data(), key.bytes(), uint32_t(key.count)};
  const Verdict v = h->settle(
      c.table->consume(c.hash, h->policy, limit, cost, c.now, kCommit, kCommit ? &text : nullptr), limit);
  if (kWriteDetail) h->write(v);
  return Napi::Boolean::New(info.Env(), v.allowed);
}

// refund(key, amount?, limit?)
Napi::Value refund_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key);
  const int64_t amount = positive_arg(info, kArg + 1, "amount");
  c.table->refund(c.hash, h->policy, limit_arg(info, kArg + 2, h->policy), amount, c.now);
  return info.Env().Undefined();
}

// block(key, durationMs)
Napi::Value block_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key);
  const int64_t duration = positive_arg(info, kArg + 1, "durationMs");
  return Napi::Boolean::New(info.Env(),
                            c.table->block(c.hash, c.now + std::min(duration, kMaxBlockMs), c.now));
}

// reset(key)
Napi::Value reset_call(const Napi::CallbackInfo& info, const Handle& h) {
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key);
  return Napi::Boolean::New(info.Env(), c.table->reset(c.hash, c.now));
}

// holdShardLock(key): NOTE: for crash tests only (a table made with testHooks); takes the key's
// shard lock and never releases it.
Napi::Value hold_lock_call(const Napi::CallbackInfo& info, const Handle& h) {
  if (!h->test_hooks) throw type_error(info.Env(), "holdShardLock needs a table made with testHooks");
  KeyBytes key;
  const KeyCall c = read_key_call(info, h, key);
  c.table->debug_hold_lock(c.hash);
  return info.Env().Undefined();
}

// topKeys() -> every shard's heavy hitters, unsorted.
Napi::Value top_keys_call(const Napi::CallbackInfo& info, const Handle& h) {
  return top_keys_array(info.Env(), live_table(info, h)->top_keys(h->now()));
}

Napi::Value sweep_call(const Napi::CallbackInfo& info, const Handle& h) {
  return Napi::Number::New(info.Env(), double(live_table(info, h)->sweep(h->now())));
}

Napi::Value stats_call(const Napi::CallbackInfo& info, const Handle& h) {
  GrowableTable* table = live_table(info, h);
  Napi::Object out = stats_object(info.Env(), table->stats());
  out.Set("lockTimeouts", double(table->lock_failures()));
  return out;
}

Napi::Value close_call(const Napi::CallbackInfo& info, const Handle& h) {
  // Everything but the handle itself goes now, not when the collector finds the External.
  h->table.reset();
  h->detail_ref.Reset();
  h->clock_ref.Reset();
  h->detail = nullptr;
  h->clock = nullptr;
  return info.Env().Undefined();
}

using Body = Napi::Value (*)(const Napi::CallbackInfo&, const Handle&);

// A table function: its first argument is the External holding the table's handle, so a call
// costs napi_get_cb_info and one external read; nothing to unwrap. (Not `this`: a handle passed
// as `this` needs Function.prototype.call, through which V8 calls the addon the slow way.)
template <Body body>
Napi::Value method(const Napi::CallbackInfo& info) {
  void* data = nullptr;
  if (napi_get_value_external(info.Env(), info[0], &data) != napi_ok || data == nullptr) {
    throw type_error(info.Env(), "Expected a tollgate table's handle as the first argument");
  }
  return body(info, static_cast<Handle>(data));
}

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
  if (!opened.region) {
    throw coded_error(env, opened.error,
                      opened.out_of_space ? "TOLLGATE_OUT_OF_MEMORY" : "TOLLGATE_SHARED_MEMORY");
  }
  const std::string mismatch = Table::check(opened.region->base(), opened.region->size(), c.options);
  if (!mismatch.empty()) {
    // Say how to get out: the segment is someone else's (another app, an older deploy) or stale.
    throw coded_error(
        env,
        "Shared memory segment '" + s.name + "' " + mismatch +
            ". Another program (or an earlier deploy) uses this name: give this limiter another name in "
            "sharedMemory({ name }), or, once no process uses it, remove it with destroySharedMemory('" +
            s.name + "') or `npx tollgate destroy " + s.name +
            "`. `npx tollgate list` shows the tables "
            "that exist, `npx tollgate inspect " +
            s.name + "` what this one holds.",
        "TOLLGATE_STORE_MISMATCH");
  }
  created = opened.created;
  return std::make_unique<GrowableTable>(std::move(opened.region));
}

}  // namespace

Napi::Object table_functions(Napi::Env env) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("consume", Napi::Function::New<method<decide_call<true, true>>>(env, "consume"));
  f.Set("tryConsume", Napi::Function::New<method<decide_call<true, false>>>(env, "tryConsume"));
  f.Set("peek", Napi::Function::New<method<decide_call<false, true>>>(env, "peek"));
  f.Set("refund", Napi::Function::New<method<refund_call>>(env, "refund"));
  f.Set("block", Napi::Function::New<method<block_call>>(env, "block"));
  f.Set("reset", Napi::Function::New<method<reset_call>>(env, "reset"));
  f.Set("consumeMany", Napi::Function::New<method<consume_many_call>>(env, "consumeMany"));
  f.Set("topKeys", Napi::Function::New<method<top_keys_call>>(env, "topKeys"));
  f.Set("sweep", Napi::Function::New<method<sweep_call>>(env, "sweep"));
  f.Set("stats", Napi::Function::New<method<stats_call>>(env, "stats"));
  f.Set("close", Napi::Function::New<method<close_call>>(env, "close"));
  f.Set("holdShardLock", Napi::Function::New<method<hold_lock_call>>(env, "holdShardLock"));
  return f;
}

Napi::Value CreateTable(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  TableConfig config = read_table_config(info[0], kDetailSize);
  auto handle = std::make_unique<TableHandle>();
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
  handle->test_hooks = config.test_hooks;

  // The External owns the handle from here on; its one finalizer closes the table if close() was
  // never called.
  TableHandle* raw = handle.release();
  const Napi::External<TableHandle> self =
      Napi::External<TableHandle>::New(env, raw, [](Napi::Env, TableHandle* h) {
        delete h;
        note_table_freed();
      });
  Napi::Object api = Napi::Object::New(env);
  api.Set("self", self);
  api.Set("created", Napi::Boolean::New(env, created));
  api.Set("creatorPolicy", policy_object(env, raw->table->creator_policy()));
  return api;
}

}  // namespace tollgate
