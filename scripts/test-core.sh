#!/usr/bin/env bash
# Builds the Node-free C++ core with AddressSanitizer+UBSan and with ThreadSanitizer, and runs its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
  local dir=$1 sanitize=$2; shift 2
  cmake -S native/test -B "$dir" -DSANITIZE="$sanitize" -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$dir" -j 2 >/dev/null
  echo "core ($sanitize): $dir/core_test $*"
  "$dir/core_test" "$@"
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1
run build-asan address,undefined
run build-tsan thread threads
