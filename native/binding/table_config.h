// The createTable() config object, read once into a plain struct: every field checked here, with a
// coded error naming it, so the table code never sees a JS value.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "../core/table.h"
#include "errors.h"

namespace tollgate {

struct SharedConfig {
  std::string name;
  unsigned mode = 0600;
  int64_t lock_timeout_ms = -1;  // -1: wait for ever
  bool lock_fails_open = true;   // onLockTimeout 'allow'
};

struct TableConfig {
  TableOptions options{};
  uint64_t initial_capacity = 0;  // in process: keys the first generation is sized for
  bool preallocate = false;
  bool shared = false;
  SharedConfig shared_config;
  bool test_hooks = false;
  unsigned fingerprint_bits = 64;  // test hooks only
  Napi::Float64Array detail;       // kDetailSize doubles the TypeScript side reads a decision from
  Napi::Float64Array clock;        // empty: the monotonic clock
};

// Reads and checks `value`; throws a coded TypeError or RangeError naming the field.
TableConfig read_table_config(const Napi::Value& value, size_t detail_size);

}  // namespace tollgate
