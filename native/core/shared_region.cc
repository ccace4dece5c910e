// Linux publishes a prepared segment with link(2) from a private temporary name, which is atomic
// and never replaces; elsewhere (macOS) the creator wins with O_EXCL and attachers wait for the
// table's magic number, which format() writes last.
#include "shared_region.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
  // An empty or short file has no table in it (and mapping it would fault on first use).
  if (st.st_size < 4096) {
    out.error = "Shared memory segment '" + name + "' is empty or truncated (" + std::to_string(st.st_size) +
                " bytes); destroy it and retry";
    return out;
  }
  out.region = Region::map_shared(fd, size_t(st.st_size));
  if (!out.region) out.error = describe_errno("Could not map", name);
  return out;
}

#if defined(__linux__)

constexpr const char* kShmDir = "/dev/shm";

std::string path_of(const std::string& name) { return std::string(kShmDir) + "/tollgate." + name; }

// This process's pid namespace, so that a temporary name's pid can be judged by whoever shares it.
std::string pid_namespace() { return std::to_string(pid_namespace_id()); }

std::string mebibytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / double(1 << 20));
  return text;
}

// Gives the segment all its pages now. tmpfs allocates a page when it is first written, and a
// write that finds the filesystem full (a container's 64 MB /dev/shm) faults with SIGBUS, which
// no caller can catch; reserved up front, a full /dev/shm is ENOSPC here and no access later
// lacks its page. Empty if reserved, else why not (`out_of_space` set when it was the room).
std::string reserve(int fd, size_t size, const std::string& name, bool& out_of_space) {
  int result;
  do {
    result = posix_fallocate(fd, 0, off_t(size));  // tmpfs stops at a pending signal: retry
  } while (result == EINTR);
  if (result == 0) return std::string();
  out_of_space = result == ENOSPC || result == ENOMEM;
  if (result != ENOSPC) {
    errno = result;
    return describe_errno("Could not reserve " + mebibytes(size) + " for", name);
  }
  struct statvfs fs {};
  const uint64_t free = fstatvfs(fd, &fs) == 0 ? uint64_t(fs.f_bavail) * fs.f_frsize : 0;
  return "Shared memory segment '" + name + "' needs " + mebibytes(size) + " in " + kShmDir + ", which has " +
         mebibytes(free) +
         " free: give it more room (in Docker `--shm-size`, in Kubernetes a memory-backed "
         "emptyDir on /dev/shm: see the Containers section of tollgate's docs/shared-memory.md), or a "
         "smaller capacity";
}

// Temporary names are "tollgate.<name>.init-<pid namespace>-<pid>-<nonce>".
std::string temporary_prefix(const std::string& name) { return "tollgate." + name + ".init-"; }

// Removes the temporary files of creators that died before publishing (a 4M-key table is
// hundreds of MB of /dev/shm), and returns how many remain: creators of this table at work now. A
// creator in this pid namespace is judged by whether its pid lives; one in another namespace
// (another container sharing /dev/shm) only by age.
int remove_stale_temporaries(const std::string& name) {
  DIR* dir = opendir(kShmDir);
  if (dir == nullptr) return 0;
  int live = 0;
  const std::string prefix = temporary_prefix(name);
  const std::string own_namespace = pid_namespace();
  while (const dirent* entry = readdir(dir)) {
    const std::string file = entry->d_name;
    if (file.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = file.substr(prefix.size());
    const size_t dash1 = rest.find('-');
    const size_t dash2 = dash1 == std::string::npos ? std::string::npos : rest.find('-', dash1 + 1);
    if (dash2 == std::string::npos) continue;
    const std::string ns = rest.substr(0, dash1);
    const long pid = std::strtol(rest.substr(dash1 + 1, dash2 - dash1 - 1).c_str(), nullptr, 10);
    const std::string path = std::string(kShmDir) + "/" + file;
    bool stale;
    if (ns == own_namespace && pid > 0) {
      stale = kill(pid_t(pid), 0) != 0 && errno == ESRCH;
    } else {
      struct stat st {};
      stale = lstat(path.c_str(), &st) == 0 && st.st_uid == geteuid() && time(nullptr) - st.st_mtime > 600;
    }
    if (stale)
      unlink(path.c_str());
    else
      ++live;
  }
  closedir(dir);
  return live;
}

// Workers started together all find no table and all create one: each reserves the whole table in
// its own temporary file, so in a /dev/shm with room for one (a container's 64 MB) all but one, or
// all, run out of room. A creator that ran out of room steps back (its file removed) and, if others
// are at work on the same table or the room is there now (they stepped back too), waits a little
// and tries again; one that finds the table published meanwhile attaches to it. Bounded: at most this many
// waits of 5-35 ms, each at a random length so that two creators do not keep colliding.
constexpr int kMaxCrowdedWaits = 100;

bool room_for(size_t size) {
  struct statvfs fs {};
  return statvfs(kShmDir, &fs) == 0 && uint64_t(fs.f_bavail) * fs.f_frsize >= size;
}

void wait_for_other_creators(uint64_t nonce) {
  const timespec pause{0, long(5'000'000 + nonce % 30'000'000)};
  nanosleep(&pause, nullptr);
}

#else

std::string path_of(const std::string& name) { return "/tollgate." + name; }

#endif

}  // namespace

#if defined(__linux__)
uint64_t pid_namespace_id() noexcept {
  // The link reads "pid:[<inode>]"; its digits are the namespace's inode number.
  char link[64] = {};
  const ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
  uint64_t id = 0;
  for (ssize_t i = 0; i < n; ++i) {
    if (link[i] >= '0' && link[i] <= '9') id = id * 10 + uint64_t(link[i] - '0');
  }
  return id;
}
#else
uint64_t pid_namespace_id() noexcept { return 1; }  // no pid namespaces: every process shares one
#endif

bool shared_name_is_valid(const std::string& name) noexcept {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  // Reserved for the temporary names of tables being created.
  if (name.find(".init-") != std::string::npos) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
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
    if (errno == ENOENT)
      return SharedRegion{nullptr, false, "There is no shared memory segment named '" + name + "'"};
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
  int crowded_waits = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      SharedRegion out = map_existing(fd, name);
      close(fd);
      return out;
    }
    if (errno != ENOENT) return SharedRegion{nullptr, false, describe_errno("Could not open", name)};

    // Prepare the table under a name no one else uses, then publish it in one step.
    remove_stale_temporaries(name);
    const HashSeed nonce = random_seed();
    const std::string temporary = std::string(kShmDir) + "/" + temporary_prefix(name) + pid_namespace() +
                                  "-" + std::to_string(getpid()) + "-" + std::to_string(nonce.k0);
    const int tfd = open(temporary.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (tfd < 0) return SharedRegion{nullptr, false, describe_errno("Could not create", name)};
    SharedRegion out;
    if (fchmod(tfd, mode) != 0 || ftruncate(tfd, off_t(size)) != 0) {
      out.error = describe_errno("Could not size", name);
    } else if (std::string why = reserve(tfd, size, name, out.out_of_space); !why.empty()) {
      out.error = why;
    } else {
      out.region = Region::map_shared(tfd, size);
      if (!out.region) {
        out.error = describe_errno("Could not map", name);
      } else {
        if (populate) Region::commit(out.region->base(), size);
        if (!prepare(out.region->base()))
          out.error = "Could not initialise the locks of shared memory segment '" + name + "'";
      }
    }
    close(tfd);
    if (!out.error.empty()) {
      unlink(temporary.c_str());
      out.region.reset();
      if (out.out_of_space && crowded_waits < kMaxCrowdedWaits) {
        // Published meanwhile: attach to it at once. Else others at work, or room freed: wait, retry.
        const bool published = access(path.c_str(), F_OK) == 0;
        if (published || remove_stale_temporaries(name) > 0 || room_for(size)) {
          ++crowded_waits;
          --attempt;  // not a lost race to publish: the attempts bound those
          if (!published) wait_for_other_creators(random_seed().k1);
          continue;
        }
      }
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
  return SharedRegion{
      nullptr, false,
      "Shared memory segment '" + name + "' kept appearing and vanishing; is something destroying it?"};
}

int unlink_shared_region(const std::string& name, std::string& error) {
  remove_stale_temporaries(name);
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
