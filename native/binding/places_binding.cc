// A places store is an External holding its handle, type-tagged so that no other External (a
// table's) is ever read as one. Arguments were validated in TypeScript; these checks keep a
// direct call from crashing or reaching arithmetic the terms exclude.
#include "places_binding.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/clock.h"
#include "../core/constants.h"
#include "../core/places.h"
#include "../core/shared_region.h"
#include "errors.h"

namespace tollgate {
namespace {

struct PlacesHandle {
  std::unique_ptr<Places> places;  // null once closed
  std::string store;               // the store's name, for messages
  std::string segment;             // its segment's name, places.<store>
};

constexpr napi_type_tag kPlacesTag = {0x746f6c6c67617465ULL, 0x706c616365733031ULL};  // "tollgate" "places01"

// Latest `now` accepted: a ManualClock's bound (MAX_CLOCK_MS).
constexpr double kMaxNow = 4503599627370496.0;   // 2^52
constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

PlacesHandle* handle_arg(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  bool tagged = false;
  void* data = nullptr;
  if (info.Length() < 1 || !info[0].IsExternal() ||
      napi_check_object_type_tag(env, info[0], &kPlacesTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, info[0], &data) != napi_ok || data == nullptr) {
    throw type_error(env, "Expected a places handle (from openPlaces) as the first argument");
  }
  return static_cast<PlacesHandle*>(data);
}

Places& live_places(const Napi::CallbackInfo& info) {
  PlacesHandle* h = handle_arg(info);
  if (!h->places) {
    std::string message = kClosedMessage;
    message.replace(message.find("limiter"), 7, "place store");
    throw coded_type_error(info.Env(), message, "TOLLGATE_CLOSED");
  }
  return *h->places;
}

// Argument `index` as a whole number in [min, max].
int64_t integer_arg(const Napi::CallbackInfo& info, size_t index, const char* name, double min, double max) {
  if (!info[index].IsNumber()) throw type_error(info.Env(), std::string("Expected a number for ") + name);
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= min && value <= max) || std::trunc(value) != value) {
    throw range_error(info.Env(), std::string("Expected an integer from ") + std::to_string(int64_t(min)) +
                                      " to " + std::to_string(int64_t(max)) + " for " + name);
  }
  return int64_t(value);
}

int64_t now_arg(const Napi::CallbackInfo& info) { return integer_arg(info, 1, "now", 0, kMaxNow); }

// Up to `capacity - 1` UTF-16 units of a string argument; `length` is capacity - 1 when it was cut.
bool read_units(const Napi::CallbackInfo& info, size_t index, char16_t* text, size_t capacity,
                size_t& length) {
  return info[index].IsString() &&
         napi_get_value_string_utf16(info.Env(), info[index], text, capacity, &length) == napi_ok;
}

// 16 lower-case hex digits, as a number: numbers compare as the strings do.
uint64_t holder_arg(const Napi::CallbackInfo& info) {
  char16_t text[18];
  size_t length = 0;
  bool ok = read_units(info, 2, text, 18, length) && length == 16;
  uint64_t id = 0;
  for (size_t i = 0; ok && i < 16; ++i) {
    const char16_t c = text[i];
    if (c >= u'0' && c <= u'9')
      id = id << 4 | uint64_t(c - u'0');
    else if (c >= u'a' && c <= u'f')
      id = id << 4 | uint64_t(c - u'a' + 10);
    else
      ok = false;
  }
  if (!ok) throw type_error(info.Env(), "Expected 16 lower-case hex digits for holder");
  return id;
}

// "<slot>.<generation>" exactly as acquire wrote it; any other string names no place (its release
// is refused, as PlaceBook refuses an unknown place).
PlaceId place_arg(const Napi::CallbackInfo& info) {
  if (!info[3].IsString()) throw type_error(info.Env(), "Expected a string for place");
  char16_t text[48];
  size_t length = 0;
  const PlaceId none{UINT32_MAX, 0};
  if (!read_units(info, 3, text, 48, length) || length >= 47) return none;
  std::string ascii;
  uint64_t parts[2] = {0, 0};
  int part = 0;
  for (size_t i = 0; i < length; ++i) {
    const char16_t c = text[i];
    if (c == u'.' && part == 0) {
      part = 1;
    } else if (c >= u'0' && c <= u'9') {
      if (parts[part] > (UINT64_MAX - 9) / 10) return none;
      parts[part] = parts[part] * 10 + uint64_t(c - u'0');
    } else {
      return none;
    }
    ascii += char(c);
  }
  if (part != 1 || parts[0] >= UINT32_MAX) return none;
  // Only the canonical spelling ("01.1" is not "1.1", to PlaceBook either).
  if (ascii != std::to_string(parts[0]) + "." + std::to_string(parts[1])) return none;
  return PlaceId{uint32_t(parts[0]), parts[1]};
}

// What a damaged segment says: what was out of range, and the way out.
std::string damaged_message(const std::string& store, const std::string& segment, const char* what) {
  return "Shared memory segment '" + segment + "' is damaged (" +
         (what != nullptr ? what : "a value is out of range") +
         "): nothing was decided. Destroy it with destroySharedPlaces('" + store +
         "') and restart the processes that share the account's places; the next to open it makes a fresh "
         "one";
}

// What a status other than kOk means to the caller.
void throw_if_failed(const Napi::CallbackInfo& info, PlacesStatus status) {
  if (status == PlacesStatus::kOk) return;
  const PlacesHandle* handle = handle_arg(info);
  const std::string& segment = handle->segment;
  if (status == PlacesStatus::kDamaged) {
    throw coded_error(info.Env(), damaged_message(handle->store, segment, handle->places->damage()),
                      "TOLLGATE_SHARED_MEMORY");
  }
  if (status == PlacesStatus::kLockTimeout) {
    throw coded_error(info.Env(),
                      "Shared memory segment '" + segment + "': its lock was not had within " +
                          std::to_string(kPlacesLockTimeoutMs) + " ms (lock held by a stopped process)",
                      "TOLLGATE_SHARED_MEMORY");
  }
  throw coded_error(info.Env(),
                    "Shared memory segment '" + segment + "' has " + std::to_string(kMaxPlaceHolders) +
                        " holders: at most " + std::to_string(kMaxPlaceHolders) +
                        " processes may share an account's places",
                    "TOLLGATE_SHARED_MEMORY");
}

Napi::Value open_places_call(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsString()) throw type_error(env, "Expected a string for name");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const unsigned mode = unsigned(integer_arg(info, 1, "mode", 0, 0777));
  if ((mode & 0600) != 0600) throw range_error(env, "Expected a mode with owner read and write for mode");
  const double places = double(kMaxPlaces), ms = double(kMaxPlaceTermMs);
  const PlaceTerms terms{integer_arg(info, 2, "limit", 0, places), integer_arg(info, 3, "windowMs", 0, ms),
                         integer_arg(info, 4, "concurrency", 0, places),
                         integer_arg(info, 5, "leaseMs", 1, ms)};
  OpenedPlaces opened = open_places(name, mode, terms);
  switch (opened.failure) {
    case OpenedPlaces::Failure::kNone:
      break;
    case OpenedPlaces::Failure::kInvalid:
      throw range_error(env, opened.error);
    case OpenedPlaces::Failure::kOutOfSpace:
      throw coded_error(env, opened.error, "TOLLGATE_OUT_OF_MEMORY");
    case OpenedPlaces::Failure::kMismatch:
      throw coded_error(env, opened.error, "TOLLGATE_STORE_MISMATCH");
    case OpenedPlaces::Failure::kSharedMemory:
      throw coded_error(env, opened.error, "TOLLGATE_SHARED_MEMORY");
  }
  auto handle = std::make_unique<PlacesHandle>();
  handle->places = std::move(opened.places);
  handle->store = name;
  handle->segment = places_segment_name(name);
  // The External owns the handle from here on; its finalizer unmaps if close was never called.
  const Napi::External<PlacesHandle> self =
      Napi::External<PlacesHandle>::New(env, handle.release(), [](Napi::Env, PlacesHandle* h) { delete h; });
  if (napi_type_tag_object(env, self, &kPlacesTag) != napi_ok)
    throw coded_error(env, "Could not tag a places handle", "TOLLGATE_NATIVE_UNAVAILABLE");
  return self;
}

Napi::Value acquire_call(const Napi::CallbackInfo& info) {
  Places& places = live_places(info);
  const int64_t now = now_arg(info);
  const uint64_t holder = holder_arg(info);
  const int64_t waiting_since = integer_arg(info, 3, "waitingSince", -kMaxSafe, kMaxSafe);
  PlaceGrant grant;
  throw_if_failed(info, places.acquire(now, holder, waiting_since, grant));
  if (grant.granted) {
    return Napi::String::New(info.Env(),
                             std::to_string(grant.place.slot) + "." + std::to_string(grant.place.generation));
  }
  return Napi::Number::New(info.Env(), grant.wake_at == kPlacesNever ? -1.0 : double(grant.wake_at));
}

Napi::Value release_call(const Napi::CallbackInfo& info) {
  Places& places = live_places(info);
  const int64_t now = now_arg(info);
  const uint64_t holder = holder_arg(info);
  const PlaceId place = place_arg(info);
  bool released = false;
  throw_if_failed(info, places.release(now, holder, place, released));
  return Napi::Boolean::New(info.Env(), released);
}

Napi::Value renew_call(const Napi::CallbackInfo& info) {
  Places& places = live_places(info);
  const int64_t now = now_arg(info);
  const uint64_t holder = holder_arg(info);
  bool renewed = false;
  throw_if_failed(info, places.renew(now, holder, renewed));
  return Napi::Boolean::New(info.Env(), renewed);
}

Napi::Value leave_call(const Napi::CallbackInfo& info) {
  Places& places = live_places(info);
  const int64_t now = now_arg(info);
  const uint64_t holder = holder_arg(info);
  throw_if_failed(info, places.leave(now, holder));
  return info.Env().Undefined();
}

Napi::Value counts_call(const Napi::CallbackInfo& info) {
  Places& places = live_places(info);
  PlaceCounts c;
  throw_if_failed(info, places.counts(now_arg(info), c));
  Napi::Array out = Napi::Array::New(info.Env(), 4);
  out.Set(uint32_t{0}, double(c.in_flight));
  out.Set(uint32_t{1}, double(c.cooling));
  out.Set(uint32_t{2}, double(c.waiting));
  out.Set(uint32_t{3}, double(c.holders));
  return out;
}

Napi::Value version_call(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(live_places(info).version()));
}

// How long inspectPlaces waits for the lock: a live holder keeps it for microseconds.
constexpr int64_t kInspectLockTimeoutMs = 100;

// inspectPlaces(name) -> { limit, windowMs, concurrency, leaseMs, inFlight, cooling, waiting, holders }:
// attaches to places.<name> only if it exists, reads the creator's terms, and counts as any call
// does (taking the lock; lapsed holders and cooled places are taken back first, on the host's
// monotonic clock, which the stores read too).
Napi::Value inspect_places_call(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsString()) throw type_error(env, "Expected a string for name");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const std::string segment = places_segment_name(name);
  if (!shared_name_is_valid(segment)) throw range_error(env, "Invalid places store name '" + name + "'");
  SharedRegion opened = attach_shared_region(segment);
  if (!opened.region) throw coded_error(env, opened.error, "TOLLGATE_SHARED_MEMORY");
  PlaceTerms terms{};
  const std::string problem = Places::describe(opened.region->base(), opened.region->size(), terms);
  if (!problem.empty())
    throw coded_error(env, "Shared memory segment '" + segment + "' " + problem, "TOLLGATE_STORE_MISMATCH");
  Places places(std::move(opened.region), terms);
  places.set_lock_timeout(kInspectLockTimeoutMs);
  PlaceCounts c;
  const PlacesStatus status = places.counts(monotonic_ms(), c);
  if (status == PlacesStatus::kDamaged)
    throw coded_error(env, damaged_message(name, segment, places.damage()), "TOLLGATE_SHARED_MEMORY");
  if (status != PlacesStatus::kOk) {
    throw coded_error(env,
                      "Shared memory segment '" + segment + "': its lock was not had within " +
                          std::to_string(kInspectLockTimeoutMs) +
                          " ms (held by a stopped process, or very busy); try again",
                      "TOLLGATE_SHARED_MEMORY");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("limit", double(terms.limit));
  out.Set("windowMs", double(terms.window_ms));
  out.Set("concurrency", double(terms.concurrency));
  out.Set("leaseMs", double(terms.lease_ms));
  out.Set("inFlight", double(c.in_flight));
  out.Set("cooling", double(c.cooling));
  out.Set("waiting", double(c.waiting));
  out.Set("holders", double(c.holders));
  return out;
}

Napi::Value close_call(const Napi::CallbackInfo& info) {
  handle_arg(info)->places.reset();  // unmapped now, not when the collector finds the External
  return info.Env().Undefined();
}

}  // namespace

void add_places_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("openPlaces", Napi::Function::New<open_places_call>(env, "openPlaces"));
  exports.Set("placesAcquire", Napi::Function::New<acquire_call>(env, "placesAcquire"));
  exports.Set("placesRelease", Napi::Function::New<release_call>(env, "placesRelease"));
  exports.Set("placesRenew", Napi::Function::New<renew_call>(env, "placesRenew"));
  exports.Set("placesLeave", Napi::Function::New<leave_call>(env, "placesLeave"));
  exports.Set("placesCounts", Napi::Function::New<counts_call>(env, "placesCounts"));
  exports.Set("placesVersion", Napi::Function::New<version_call>(env, "placesVersion"));
  exports.Set("placesClose", Napi::Function::New<close_call>(env, "placesClose"));
  exports.Set("inspectPlaces", Napi::Function::New<inspect_places_call>(env, "inspectPlaces"));
}

}  // namespace tollgate
