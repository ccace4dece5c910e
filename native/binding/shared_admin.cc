// The shared-memory calls that need no table of one's own: destroy a segment, inspect a live one.
#include "shared_admin.h"

#include <string>

#include "../core/clock.h"
#include "../core/shared_region.h"
#include "../core/table.h"
#include "errors.h"
#include "marshal.h"

namespace tollgate {

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
  if (!problem.empty())
    throw coded_error(env, "Shared memory segment '" + name + "' " + problem, "TOLLGATE_STORE_MISMATCH");
  Table table(opened.region->base());
  const TableStats st = table.stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("capacity", double(options.capacity));
  out.Set("shards", double(st.shards));
  out.Set("evict", options.evict);
  out.Set("policy", policy_object(env, options.policy));
  out.Set("topKeys", options.top_keys);
  out.Set("topKeysPeriodMs", double(options.top_period_ms));
  out.Set("stats", stats_object(env, st));
  out.Set("top", top_keys_array(env, table.top_keys(monotonic_ms())));
  return out;
}

}  // namespace tollgate
