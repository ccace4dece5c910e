// Linux publishes a prepared segment with link(2) from a private temporary name, which is atomic
// and never replaces; elsewhere (macOS) the creator wins with O_EXCL and attachers wait for the
// table's magic number, which format() writes last.
#include "shared_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "siphash.h"

namespace tollgate {
namespace {

std::string describe_errno(const std::string& what, const std::string& name) {
  return what + " shared memory segment '" + name + "': " + std::strerror(errno);
}

// Maps an open segment after checking it is ours to trust.
SharedRegion map_existing(int fd, const std::string& name) {
  SharedRegion out;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    out.error = describe_errno("Could not inspect", name);
    return out;
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    out.error = "Shared memory segment '" + name + "' is not a segment this user created; refusing to attach";
    return out;
  }
  out.region = Region::map_shared(fd, size_t(st.st_size));
  if (!out.region) out.error = describe_errno("Could not map", name);
  return out;
}

#if defined(__linux__)

std::string path_of(const std::string& name) { return "/dev/shm/tollgate." + name; }

#else

std::string path_of(const std::string& name) { return "/tollgate." + name; }

#endif

}  // namespace

bool shared_name_is_valid(const std::string& name) noexcept {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

SharedRegion attach_shared_region(const std::string& name) {
#if defined(__linux__)
  const int fd = open(path_of(name).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
#else
  const int fd = shm_open(path_of(name).c_str(), O_RDWR, 0);
#endif
  if (fd < 0) {
    if (errno == ENOENT) return SharedRegion{nullptr, false, "There is no shared memory segment named '" + name + "'"};
    return SharedRegion{nullptr, false, describe_errno("Could not open", name)};
  }
  SharedRegion out = map_existing(fd, name);
  close(fd);
  return out;
}

#if defined(__linux__)

SharedRegion open_shared_region(const std::string& name, size_t size, unsigned mode, bool populate,
                                const std::function<bool(void*)>& prepare) {
  const std::string path = path_of(name);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      SharedRegion out = map_existing(fd, name);
      close(fd);
      return out;
    }
    if (errno != ENOENT) return SharedRegion{nullptr, false, describe_errno("Could not open", name)};

    // Prepare the table under a name no one else uses, then publish it in one step.
    const HashSeed nonce = random_seed();
    const std::string temporary = path + ".init-" + std::to_string(getpid()) + "-" + std::to_string(nonce.k0);
    const int tfd = open(temporary.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (tfd < 0) return SharedRegion{nullptr, false, describe_errno("Could not create", name)};
    SharedRegion out;
    if (fchmod(tfd, mode) != 0 || ftruncate(tfd, off_t(size)) != 0) {
      out.error = describe_errno("Could not size", name);
    } else {
      out.region = Region::map_shared(tfd, size);
      if (!out.region) {
        out.error = describe_errno("Could not map", name);
      } else {
        if (populate) Region::commit(out.region->base(), size);
        if (!prepare(out.region->base())) out.error = "Could not initialise the locks of shared memory segment '" + name + "'";
      }
    }
    close(tfd);
    if (!out.error.empty()) {
      unlink(temporary.c_str());
      out.region.reset();
      return out;
    }
    const int linked = link(temporary.c_str(), path.c_str());
    const int link_errno = errno;
    unlink(temporary.c_str());
    if (linked == 0) {
      out.created = true;
      return out;
    }
    out.region.reset();
    errno = link_errno;
    if (link_errno != EEXIST) return SharedRegion{nullptr, false, describe_errno("Could not publish", name)};
    // Another process published first: attach to theirs.
  }
  return SharedRegion{nullptr, false, "Shared memory segment '" + name + "' kept appearing and vanishing; is something destroying it?"};
}

int unlink_shared_region(const std::string& name, std::string& error) {
  if (unlink(path_of(name).c_str()) == 0) return 1;
  if (errno == ENOENT) return 0;
  error = describe_errno("Could not destroy", name);
  return -1;
}

#else

SharedRegion open_shared_region(const std::string& name, size_t size, unsigned mode, bool populate,
                                const std::function<bool(void*)>& prepare) {
  const std::string path = path_of(name);
  const int fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, mode);
  if (fd >= 0) {
    SharedRegion out;
    if (fchmod(fd, mode) != 0 || ftruncate(fd, off_t(size)) != 0) {
      out.error = describe_errno("Could not size", name);
    } else if (!(out.region = Region::map_shared(fd, size))) {
      out.error = describe_errno("Could not map", name);
    } else {
      if (populate) Region::commit(out.region->base(), size);
      if (!prepare(out.region->base())) {
        out.region.reset();
        out.error = "Could not initialise the locks of shared memory segment '" + name + "'";
      } else {
        out.created = true;
      }
    }
    close(fd);
    if (!out.created) shm_unlink(path.c_str());
    return out;
  }
  if (errno != EEXIST) return SharedRegion{nullptr, false, describe_errno("Could not create", name)};
  const int afd = shm_open(path.c_str(), O_RDWR, 0);
  if (afd < 0) return SharedRegion{nullptr, false, describe_errno("Could not open", name)};
  // The creator may still be sizing it: wait (bounded) for a non-empty segment.
  SharedRegion out;
  for (int waited = 0; waited < 2000; ++waited) {
    struct stat st {};
    if (fstat(afd, &st) == 0 && st.st_size > 0) break;
    const timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
  out = map_existing(afd, name);
  close(afd);
  return out;
}

int unlink_shared_region(const std::string& name, std::string& error) {
  if (shm_unlink(path_of(name).c_str()) == 0) return 1;
  if (errno == ENOENT) return 0;
  error = describe_errno("Could not destroy", name);
  return -1;
}

#endif

}  // namespace tollgate
