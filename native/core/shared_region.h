// Named POSIX shared-memory segments that hold a table: created race-free, attached by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "region.h"

namespace tollgate {

struct SharedRegion {
  std::unique_ptr<Region> region;  // null on failure
  bool created = false;            // this call made the segment (and ran `prepare` on it)
  std::string error;               // why it failed, naming the segment
  bool out_of_space = false;       // it failed because the memory for it could not be reserved
};

// This process's pid namespace (Linux: the inode number of /proc/self/ns/pid), so that a pid
// written into a segment is judged only by processes that see the same pids. 0 when it cannot be
// read (no /proc): then no pid may be judged. 1 on systems without pid namespaces.
uint64_t pid_namespace_id() noexcept;

// Whether `name` is acceptable: 1 to 200 of [A-Za-z0-9._-], not starting with '.', so a name can
// never climb out of the shared-memory namespace or collide with a temporary one.
bool shared_name_is_valid(const std::string& name) noexcept;

// Attaches to the segment `name`, or creates it with `size` bytes and permission bits `mode`.
// A new segment is fully prepared (`prepare` formats it) before any other process can see it:
// many processes racing to create end with one segment, never a half-initialised one.
// The whole size is reserved at creation, `populate` or not (Linux): a shared-memory filesystem
// without the room (a container's /dev/shm) fails here, with `out_of_space`, and leaves nothing
// behind, instead of faulting (SIGBUS) at a later first touch of a page.
// NOTE: a segment owned by another user, or that is not a regular file, is refused.
SharedRegion open_shared_region(const std::string& name, size_t size, unsigned mode, bool populate,
                                const std::function<bool(void*)>& prepare);

// Attaches to an existing segment only (for inspection): never creates one.
SharedRegion attach_shared_region(const std::string& name);

// Removes the name; processes still attached keep their mapping until they close. Returns 1 if
// removed, 0 if there was no such segment, -1 on error (with `error` set).
int unlink_shared_region(const std::string& name, std::string& error);

}  // namespace tollgate
