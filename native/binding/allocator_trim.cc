// See allocator_trim.h.
#include "allocator_trim.h"

#include <cstdlib>  // defines __GLIBC__ where the C library is glibc

#if defined(__GLIBC__)
#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <thread>
#endif

namespace tollgate {

#if defined(__GLIBC__)
namespace {

// Frees between trims: each trim then walks a heap that lost about 1,024 handles' worth since the
// last, holding the allocator's lock for a fraction of a millisecond.
constexpr uint32_t kTablesPerTrim = 1024;

std::atomic<uint32_t> freed{0};
std::atomic<bool> trimming{false};

// The trim thread runs this library's code: keep the library loaded for the life of the process,
// so that a worker thread's teardown can never unload it under a running trim.
bool pin_library() noexcept {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&pin_library), &self) == 0 || self.dli_fname == nullptr) return false;
  return dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}

}  // namespace

void note_table_freed() noexcept {
  if (freed.fetch_add(1, std::memory_order_relaxed) % kTablesPerTrim != kTablesPerTrim - 1) return;
  static const bool pinned = pin_library();
  if (!pinned || trimming.exchange(true)) return;
  try {
    std::thread([] {
      malloc_trim(0);
      trimming.store(false);
    }).detach();
  } catch (...) {
    trimming.store(false);  // no thread to be had: the pages stay until the next try
  }
}
#else
void note_table_freed() noexcept {}
#endif

}  // namespace tollgate
