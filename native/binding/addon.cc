// The addon entry: registers the exported functions and nothing else.
#include <napi.h>

#include "floor_binding.h"
#include "table_binding.h"

namespace tollgate {

class TollgateAddon : public Napi::Addon<TollgateAddon> {
 public:
  TollgateAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceValue("abiVersion", Napi::Number::New(env, 3)),
                             InstanceMethod<&TollgateAddon::Create>("createTable"),
                             InstanceValue("inspectSharedMemory",
                                           Napi::Function::New(env, InspectSharedMemory, "inspectSharedMemory")),
                             InstanceValue("destroySharedMemory",
                                           Napi::Function::New(env, DestroySharedMemory, "destroySharedMemory")),
                             // A plain function, made the way each table's functions are made,
                             // so the benchmark floor pays the same call mechanism.
                             InstanceValue("readKeyOnly",
                                           Napi::Function::New(env, ReadKeyOnly, "readKeyOnly")),
                             InstanceValue("createMissFloor",
                                           Napi::Function::New(env, CreateMissFloor, "createMissFloor")),
                         });
  }

 private:
  Napi::Value Create(const Napi::CallbackInfo& info) { return CreateTable(info); }
};

}  // namespace tollgate

using tollgate::TollgateAddon;
NODE_API_ADDON(TollgateAddon)
