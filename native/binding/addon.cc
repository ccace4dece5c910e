// The addon entry: registers the exported functions and constants, and nothing else.
#include <napi.h>

#include "../core/constants.h"
#include "../core/places.h"
#include "../core/policy.h"
#include "places_binding.h"
#include "shared_admin.h"
#include "table_binding.h"

namespace tollgate {
namespace {

// The values the TypeScript engine and the Lua scripts must share with this core, for
// test/package.test.ts to compare with src/common/constants.ts by value.
Napi::Object constants_object(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("maxKeyLength", double(kMaxKeyUnits));
  c.Set("maxBlockMs", double(kMaxBlockMs));
  c.Set("maxShards", double(kMaxShards));
  c.Set("maxCapacity", double(kMaxCapacity));
  c.Set("bucketSlots", double(kBucketSlots));
  c.Set("headroomNum", double(kHeadroomNum));
  c.Set("headroomDen", double(kHeadroomDen));
  c.Set("keysPerAutoShard", double(kKeysPerAutoShard));
  c.Set("maxAutoShards", double(kMaxAutoShards));
  c.Set("maxProduct", double(kMaxProduct));
  c.Set("defaultTopKeysPeriodMs", double(kDefaultTopPeriodMs));
  c.Set("abiVersion", double(kAbiVersion));
  c.Set("closedMessage", kClosedMessage);
  c.Set("maxPlaceHolders", double(kMaxPlaceHolders));
  c.Set("maxPlaces", double(kMaxPlaces));
  Napi::Object detail = Napi::Object::New(env);
  detail.Set("Allowed", double(kDetailAllowed));
  detail.Set("Limit", double(kDetailLimit));
  detail.Set("Remaining", double(kDetailRemaining));
  detail.Set("ResetMs", double(kDetailResetMs));
  detail.Set("RetryAfterMs", double(kDetailRetryAfterMs));
  detail.Set("Size", double(kDetailSize));
  c.Set("detail", detail);
  Napi::Object kinds = Napi::Object::New(env);
  kinds.Set("FixedWindow", double(static_cast<uint32_t>(PolicyKind::kFixedWindow)));
  kinds.Set("SlidingWindow", double(static_cast<uint32_t>(PolicyKind::kSlidingWindow)));
  kinds.Set("TokenBucket", double(static_cast<uint32_t>(PolicyKind::kTokenBucket)));
  kinds.Set("Gcra", double(static_cast<uint32_t>(PolicyKind::kGcra)));
  c.Set("policyCodes", kinds);
  return c;
}

}  // namespace

class TollgateAddon : public Napi::Addon<TollgateAddon> {
 public:
  TollgateAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports,
                {
                    InstanceValue("abiVersion", Napi::Number::New(env, kAbiVersion)),
                    InstanceValue("constants", constants_object(env)),
                    InstanceMethod<&TollgateAddon::Create>("createTable"),
                    InstanceValue("tableFunctions", table_functions(env)),
                    InstanceValue("inspectSharedMemory",
                                  Napi::Function::New(env, InspectSharedMemory, "inspectSharedMemory")),
                    InstanceValue("destroySharedMemory",
                                  Napi::Function::New(env, DestroySharedMemory, "destroySharedMemory")),
                });
    add_places_functions(env, exports);
  }

 private:
  Napi::Value Create(const Napi::CallbackInfo& info) { return CreateTable(info); }
};

}  // namespace tollgate

using tollgate::TollgateAddon;
NODE_API_ADDON(TollgateAddon)
