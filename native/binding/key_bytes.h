// Reads a JS string key into a stack buffer as its UTF-16 code units: no heap allocation on the hot
// path, and an injective encoding (UTF-8 would fold every lone surrogate into U+FFFD).
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>

#include "../core/constants.h"

namespace tollgate {

// A key's UTF-16 code units, in this machine's byte order, as the table hashes them. Copied as is
// (no transcoding, no narrowing), this is also the cheapest way to read a string through Node-API.
struct KeyBytes {
  // One unit more than allowed, plus the terminator: tells a too-long key from a maximal one.
  alignas(8) char16_t units[kMaxKeyUnits + 2];
  size_t count;  // code units

  const uint8_t* data() const noexcept { return reinterpret_cast<const uint8_t*>(units); }
  size_t bytes() const noexcept { return 2 * count; }
};

// False when `value` is not a string, is empty, or has more than kMaxKeyUnits code units.
inline bool read_key(napi_env env, napi_value value, KeyBytes& out) {
  if (napi_get_value_string_utf16(env, value, out.units, kMaxKeyUnits + 2, &out.count) != napi_ok)
    return false;
  return out.count != 0 && out.count <= kMaxKeyUnits;
}

}  // namespace tollgate
