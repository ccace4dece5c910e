// The cheapest call that still reads its key the way every table call does.
#include "floor_binding.h"

#include "key_bytes.h"

namespace tollgate {

Napi::Value ReadKeyOnly(const Napi::CallbackInfo& info) {
  KeyBytes key;
  return Napi::Boolean::New(info.Env(), read_key(info.Env(), info[0], key));
}

}  // namespace tollgate
