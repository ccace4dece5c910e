// Anonymous regions come straight from mmap, so a table of millions of slots costs only what is touched.
#include "region.h"

#include <sys/mman.h>

namespace tollgate {

std::unique_ptr<Region> Region::anonymous(size_t size) noexcept {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_NORESERVE
  flags |= MAP_NORESERVE;
#endif
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (base == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  // Random keys touch random slots: huge pages keep a large table from thrashing the TLB.
  madvise(base, size, MADV_HUGEPAGE);
#endif
  return std::unique_ptr<Region>(new (std::nothrow) Region(base, size));
}

Region::~Region() { munmap(base_, size_); }

}  // namespace tollgate
