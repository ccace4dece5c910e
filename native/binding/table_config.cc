// Reading createTable()'s config: see table_config.h.
#include "table_config.h"

#include "../core/shared_region.h"

namespace tollgate {

namespace {

// Typed field readers in the manner of "Expected <what> for <name>".
int64_t integer_field(const Napi::Object& object, const char* name, int64_t min, int64_t max) {
  const Napi::Value value = object.Get(name);
  if (!value.IsNumber()) throw type_error(object.Env(), std::string("Expected a number for ") + name);
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min) && d <= double(max)) || d != double(int64_t(d))) {
    throw range_error(object.Env(), std::string("Expected an integer from ") + std::to_string(min) + " to " +
                                        std::to_string(max) + " for " + name);
  }
  return int64_t(d);
}

bool bool_field(const Napi::Object& object, const char* name) { return object.Get(name).ToBoolean(); }

Napi::Float64Array float64_field(const Napi::Object& object, const char* name, size_t min_length) {
  const Napi::Value value = object.Get(name);
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      value.As<Napi::Float64Array>().ElementLength() < min_length) {
    throw type_error(object.Env(), std::string("Expected a Float64Array for ") + name);
  }
  return value.As<Napi::Float64Array>();
}

constexpr int64_t kMaxSafe = (int64_t{1} << 53) - 1;

Policy read_policy(const Napi::Object& config) {
  Policy p{};
  p.kind = static_cast<PolicyKind>(integer_field(config, "kind", 1, 4));
  p.limit = integer_field(config, "limit", 1, kMaxSafe);
  p.window_ms = integer_field(config, "windowMs", 0, kMaxSafe);
  p.rate_tokens = integer_field(config, "rateTokens", 0, kMaxSafe);
  p.rate_interval_ms = integer_field(config, "rateIntervalMs", 0, kMaxSafe);
  if (!policy_is_valid(p))
    throw range_error(config.Env(), "Expected policy parameters within the documented bounds for kind");
  return p;
}

SharedConfig read_shared(const Napi::Object& spec) {
  SharedConfig s;
  const Napi::Value name = spec.Get("name");
  s.name = name.IsString() ? name.As<Napi::String>().Utf8Value() : std::string();
  if (!shared_name_is_valid(s.name))
    throw range_error(spec.Env(), "Expected a valid shared memory name for shared.name");
  s.mode = unsigned(integer_field(spec, "mode", 0, 0777));
  if ((s.mode & 0600) != 0600)
    throw range_error(spec.Env(), "Expected a mode with owner read and write for shared.mode");
  s.lock_timeout_ms = integer_field(spec, "lockTimeoutMs", -1, int64_t{1} << 31);
  s.lock_fails_open = bool_field(spec, "onLockTimeout");
  return s;
}

}  // namespace

TableConfig read_table_config(const Napi::Value& value, size_t detail_size) {
  if (!value.IsObject()) throw type_error(value.Env(), "Expected an object for config");
  const Napi::Object config = value.As<Napi::Object>();
  TableConfig c;
  c.options.policy = read_policy(config);
  c.options.capacity = uint64_t(integer_field(config, "capacity", 1, int64_t(kMaxCapacity)));
  c.options.shards = uint32_t(integer_field(config, "shards", 0, kMaxShards));
  c.options.evict = bool_field(config, "evict");
  c.options.top_keys = bool_field(config, "topKeys");
  if (c.options.top_keys) c.options.top_period_ms = integer_field(config, "topKeysPeriodMs", 1, kMaxSafe);
  c.preallocate = bool_field(config, "preallocate");
  c.initial_capacity =
      config.Get("initialCapacity").IsUndefined()
          ? c.options.capacity
          : uint64_t(integer_field(config, "initialCapacity", 1, int64_t(c.options.capacity)));
  c.detail = float64_field(config, "detail", detail_size);
  if (!config.Get("clock").IsUndefined()) c.clock = float64_field(config, "clock", 1);
  const Napi::Value shared = config.Get("shared");
  if (shared.IsObject()) {
    c.shared = true;
    c.shared_config = read_shared(shared.As<Napi::Object>());
  }
  c.test_hooks = bool_field(config, "testHooks");
  if (c.test_hooks && !config.Get("fingerprintBits").IsUndefined()) {
    c.fingerprint_bits = unsigned(integer_field(config, "fingerprintBits", 1, 64));
  }
  return c;
}

}  // namespace tollgate
