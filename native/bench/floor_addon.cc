// A separate addon for the benchmarks (never shipped): the physical floors they compare against,
// the cheapest call that reads its key the way every table call does, and that call plus one
// random cache-line read of a table-sized block. Its functions are made as each table's are, so
// the floor pays the same call mechanism.
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "../binding/key_bytes.h"
#include "../core/region.h"

namespace tollgate {
namespace {

Napi::Value ReadKeyOnly(const Napi::CallbackInfo& info) {
  KeyBytes key;
  return Napi::Boolean::New(info.Env(), read_key(info.Env(), info[0], key));
}

// createMissFloor(bytes) -> (key) => number: reads the key, then one 64-byte line of a committed
// block of `bytes` chosen by the key's units (FNV-1a), as a table lookup's one unavoidable miss.
Napi::Value CreateMissFloor(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double requested = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(requested >= 4096 && requested <= double(uint64_t{1} << 34))) {
    throw Napi::RangeError::New(env, "Expected a size from 4096 bytes to 16 GiB for bytes");
  }
  std::shared_ptr<Region> block(Region::anonymous(size_t(requested), true).release());
  if (!block) throw Napi::Error::New(env, "Could not map the floor's block");
  const uint64_t lines = uint64_t(requested) / 64;
  return Napi::Function::New(
      env,
      [block, lines](const Napi::CallbackInfo& call) -> Napi::Value {
        KeyBytes key;
        if (!read_key(call.Env(), call[0], key)) return Napi::Number::New(call.Env(), -1);
        uint64_t h = 1469598103934665603ULL;
        const uint8_t* bytes = key.data();
        for (size_t i = 0; i < key.bytes(); ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
        const auto* line = static_cast<const volatile uint64_t*>(block->base()) + (h % lines) * 8;
        return Napi::Number::New(call.Env(), double(line[0] & 1));
      },
      "missFloor");
}

}  // namespace
}  // namespace tollgate

static Napi::Object InitFloor(Napi::Env env, Napi::Object exports) {
  exports.Set("readKeyOnly", Napi::Function::New(env, tollgate::ReadKeyOnly, "readKeyOnly"));
  exports.Set("createMissFloor", Napi::Function::New(env, tollgate::CreateMissFloor, "createMissFloor"));
  return exports;
}

NODE_API_MODULE(tollgate_floor, InitFloor)
