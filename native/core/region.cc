// Anonymous regions come straight from mmap: committed up front (no request ever waits on a page
// fault: a first-touch huge page costs milliseconds here) or lazily, page by page, as asked.
#include "region.h"

#include <sys/mman.h>
#include <time.h>

#include <algorithm>

namespace tollgate {

std::unique_ptr<Region> Region::anonymous(size_t size, bool populate, bool huge) noexcept {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_NORESERVE
  flags |= MAP_NORESERVE;
#endif
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (base == MAP_FAILED) return nullptr;
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  // Random keys touch random slots: huge pages keep a large table from thrashing the TLB. A table
  // committed as keys arrive asks for small pages instead, so no first touch zeroes 2 MiB.
  madvise(base, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
  if (populate) commit(base, size);
  return std::unique_ptr<Region>(new (std::nothrow) Region(base, size));
}

std::unique_ptr<Region> Region::map_shared(int fd, size_t size) noexcept {
  if (size == 0) return nullptr;
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return nullptr;
  return std::unique_ptr<Region>(new (std::nothrow) Region(base, size));
}

void Region::commit(void* base, size_t size) noexcept {
#if defined(MADV_POPULATE_WRITE)
  if (madvise(base, size, MADV_POPULATE_WRITE) == 0) return;
#endif
  // Older kernels: write to each page; the memory is zero already, so zero is what we write.
  auto* bytes = static_cast<volatile char*>(base);
  for (size_t offset = 0; offset < size; offset += 4096) bytes[offset] = 0;
}

bool Region::prefault(void* base, size_t size) noexcept {
#if defined(MADV_POPULATE_WRITE)
  return madvise(base, size, MADV_POPULATE_WRITE) == 0;
#elif defined(__linux__)
  // Older headers: the kernel may still know it (value 23 since Linux 5.14).
  return madvise(base, size, 23) == 0;
#else
  (void)base;
  (void)size;
  return false;
#endif
}

void Region::discard(uint64_t offset, uint64_t length) noexcept {
  constexpr uint64_t kPage = 4096;
  const uint64_t begin = (offset + kPage - 1) / kPage * kPage;
  const uint64_t end = std::min<uint64_t>(offset + length, size_) / kPage * kPage;
  if (end > begin) madvise(static_cast<char*>(base_) + begin, end - begin, MADV_DONTNEED);
}

void Region::unmap_gradually() noexcept {
  constexpr size_t kStep = size_t{256} << 10;
  auto* bytes = static_cast<char*>(base_);
  for (size_t offset = 0; offset < size_; offset += kStep) {
    munmap(bytes + offset, std::min(kStep, size_ - offset));
    const timespec pause{0, 50000};
    nanosleep(&pause, nullptr);
  }
  base_ = nullptr;
  size_ = 0;
}

Region::~Region() {
  if (base_ != nullptr) munmap(base_, size_);
}

}  // namespace tollgate
