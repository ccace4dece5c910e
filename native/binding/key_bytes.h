// Reads a JS string key into a stack buffer: no heap allocation on the hot path.
#pragma once

#include <node_api.h>

#include <cstddef>

namespace tollgate {

// The TypeScript side caps keys at 1,024 UTF-16 code units, at most 3,072 UTF-8 bytes.
constexpr size_t kMaxKeyBytes = 3072;

struct KeyBytes {
  char data[kMaxKeyBytes + 1];
  size_t length;
};

// False when `value` is not a string or is longer than kMaxKeyBytes once encoded.
inline bool read_key(napi_env env, napi_value value, KeyBytes& out) {
  if (napi_get_value_string_utf8(env, value, out.data, sizeof out.data, &out.length) != napi_ok) {
    return false;
  }
  // A length that fills the buffer may have been cut short, so it is refused.
  return out.length > 0 && out.length < kMaxKeyBytes;
}

}  // namespace tollgate
