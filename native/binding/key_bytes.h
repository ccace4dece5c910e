// Reads a JS string key into a stack buffer as its UTF-16 code units: no heap allocation on the hot
// path, and an injective encoding (UTF-8 would fold every lone surrogate into U+FFFD).
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>

#include "../core/constants.h"

namespace tollgate {

// A key's code units as the table hashes them. Keys whose units all fit one byte (ASCII and
// Latin-1: what V8 stores as one-byte strings) are narrowed to those bytes; other keys keep two
// bytes per unit and are hashed in another domain (`wide`), so the two forms never collide.
struct KeyBytes {
  uint8_t data[2 * kMaxKeyUnits];
  size_t length;  // bytes in data
  size_t units;   // UTF-16 code units of the key
  bool wide;
};

// False when `value` is not a string, is empty, or has more than kMaxKeyUnits code units.
inline bool read_key(napi_env env, napi_value value, KeyBytes& out) {
  // One unit more than allowed (plus the terminator) tells a too-long key from a maximal one.
  char16_t units[kMaxKeyUnits + 2];
  size_t count = 0;
  if (napi_get_value_string_utf16(env, value, units, kMaxKeyUnits + 2, &count) != napi_ok) return false;
  if (count == 0 || count > kMaxKeyUnits) return false;
  char16_t high = 0;
  for (size_t i = 0; i < count; ++i) high |= units[i];
  out.units = count;
  out.wide = high > 0xff;
  if (!out.wide) {
    for (size_t i = 0; i < count; ++i) out.data[i] = uint8_t(units[i]);
    out.length = count;
  } else {
    for (size_t i = 0; i < count; ++i) {
      out.data[2 * i] = uint8_t(units[i] & 0xff);
      out.data[2 * i + 1] = uint8_t(units[i] >> 8);
    }
    out.length = 2 * count;
  }
  return true;
}

}  // namespace tollgate
