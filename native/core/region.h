// One contiguous block of memory, private or shared between processes; everything inside is
// addressed by offsets, never pointers, so every process can map it at a different address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tollgate {

class Region {
 public:
  // Private anonymous memory, zero-filled; committed now when `populate`, else page by page as it
  // is touched. `huge` asks for transparent huge pages (fewer TLB misses; but a first touch of a
  // 2 MiB page, when not populated, zeroes it all at once). Returns nullptr when the OS refuses.
  static std::unique_ptr<Region> anonymous(size_t size, bool populate, bool huge = true) noexcept;
  // Maps `size` bytes of an open shared-memory file descriptor, read-write and shared. The
  // descriptor may be closed afterwards. Returns nullptr when the OS refuses.
  static std::unique_ptr<Region> map_shared(int fd, size_t size) noexcept;
  // Backs [base, base + size) with memory now, so later accesses never fault.
  static void commit(void* base, size_t size) noexcept;
  // Backs [base, base + size) with memory without writing to it, so it is safe while another
  // thread writes there. False where the OS cannot (no MADV_POPULATE_WRITE: Linux before 5.14,
  // other systems); the pages then fault in as they are first touched.
  static bool prefault(void* base, size_t size) noexcept;

  // Gives the pages of [offset, offset + length) back to the OS (they read as zeros afterwards);
  // both ends are rounded inwards to whole pages. Private anonymous regions only.
  void discard(uint64_t offset, uint64_t length) noexcept;

  // Unmaps the whole region a step at a time (a pause between steps), leaving it empty. Unmapping
  // a large region at once holds the process's memory-map lock for milliseconds, and every page
  // fault of other threads (the JS thread's, V8's) waits for it. For a background thread.
  void unmap_gradually() noexcept;

  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  void* base() const noexcept { return base_; }
  size_t size() const noexcept { return size_; }

 private:
  Region(void* base, size_t size) noexcept : base_(base), size_(size) {}
  void* base_;
  size_t size_;
};

}  // namespace tollgate
