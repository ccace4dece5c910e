// A places segment's making and checking: its layout, formatting, the check an attacher makes of
// the creator's terms, and opening one by a store's name.
#include <time.h>

#include <new>

#include "places.h"
#include "places_layout.h"
#include "shared_region.h"
#include "table.h"

namespace tollgate {
namespace {

uint64_t align_up(uint64_t value, uint64_t to) { return (value + to - 1) / to * to; }

std::string terms_text(const PlaceTerms& t) {
  return "limit " + std::to_string(t.limit) + ", windowMs " + std::to_string(t.window_ms) + ", concurrency " +
         std::to_string(t.concurrency) + ", leaseMs " + std::to_string(t.lease_ms);
}

// "limit 5, not 6; leaseMs 1000, not 2000": each term that differs.
std::string terms_difference(const PlaceTerms& had, const PlaceTerms& asked) {
  std::string out;
  const auto one = [&out](const char* name, int64_t a, int64_t b) {
    if (a == b) return;
    if (!out.empty()) out += "; ";
    out += std::string(name) + " " + std::to_string(a) + ", not " + std::to_string(b);
  };
  one("limit", had.limit, asked.limit);
  one("windowMs", had.window_ms, asked.window_ms);
  one("concurrency", had.concurrency, asked.concurrency);
  one("leaseMs", had.lease_ms, asked.lease_ms);
  return out;
}

}  // namespace

std::string place_terms_problem(const PlaceTerms& t) {
  if (t.limit < 0 || t.limit > kMaxPlaces) return "limit must be from 0 to " + std::to_string(kMaxPlaces);
  if (t.concurrency < 0 || t.concurrency > kMaxPlaces)
    return "concurrency must be from 0 to " + std::to_string(kMaxPlaces);
  if (t.limit == 0 && t.concurrency == 0) return "limit or concurrency must be set";
  if (t.window_ms < (t.limit > 0 ? 1 : 0) || t.window_ms > kMaxPlaceTermMs) {
    return "windowMs must be from " + std::string(t.limit > 0 ? "1" : "0") + " to 2^50";
  }
  if (t.lease_ms < 1 || t.lease_ms > kMaxPlaceTermMs) return "leaseMs must be from 1 to 2^50";
  return std::string();
}

PlacesLayout PlacesLayout::plan(const PlaceTerms& t) noexcept {
  PlacesLayout l{};
  l.slot_count = uint32_t(t.limit > 0 ? t.limit : t.concurrency);
  l.ring_capacity = uint32_t(t.limit > 0 ? t.limit : 0);
  l.holders_offset = align_up(sizeof(PlacesHeader), 64);
  l.slots_offset = align_up(l.holders_offset + uint64_t{kMaxPlaceHolders} * sizeof(PlaceHolder), 64);
  l.free_offset = align_up(l.slots_offset + uint64_t{l.slot_count} * sizeof(PlaceSlot), 64);
  l.ring_offset = align_up(l.free_offset + uint64_t{l.slot_count} * sizeof(uint32_t), 64);
  // At least a page: an attacher refuses a shorter segment as truncated.
  l.total_size = align_up(l.ring_offset + uint64_t{l.ring_capacity} * sizeof(int64_t), 4096);
  return l;
}

size_t Places::region_size(const PlaceTerms& terms) noexcept {
  return size_t(PlacesLayout::plan(terms).total_size);
}

bool Places::format(void* base, const PlaceTerms& terms) noexcept {
  const PlacesLayout layout = PlacesLayout::plan(terms);
  auto* h = static_cast<PlacesHeader*>(base);
  h->layout_version = kVersion;
  h->holder_size = sizeof(PlaceHolder);
  h->terms = terms;
  h->layout = layout;
  new (&h->changes) std::atomic<uint64_t>(0);
  if (!h->lock.init()) return false;
  h->grants = 0;
  h->recoveries_seen = 0;
  h->pids_checked_at = INT64_MIN;
  h->holder_count = 0;
  h->in_flight = 0;
  h->ring_head = 0;
  h->ring_count = 0;
  // Every slot free; slot 0 on top, so grants fill the slots from the start.
  auto* free = reinterpret_cast<uint32_t*>(static_cast<char*>(base) + layout.free_offset);
  for (uint32_t i = 0; i < layout.slot_count; ++i) free[i] = layout.slot_count - 1 - i;
  h->free_count = layout.slot_count;
  __atomic_store_n(&h->magic, kMagic, __ATOMIC_RELEASE);
  return true;
}

namespace {

// What the first bytes say the segment is, when not a book this build reads: empty if it is one.
std::string identity_problem(const void* base, size_t size) {
  if (size < 4096) return "is empty or truncated";
  const auto* h = static_cast<const PlacesHeader*>(base);
  const uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
  if (magic == Table::kMagic) return "is a rate-limit table, not an upstream account's places";
  if (magic != Places::kMagic) {
    return "is not an upstream account's places (or its creator died before finishing it; destroy it and "
           "retry)";
  }
  if (h->layout_version != Places::kVersion) {
    return "was made by an incompatible version of tollgate (places layout " +
           std::to_string(h->layout_version) + "; this one reads layout " + std::to_string(Places::kVersion) +
           "): stop the processes using it, or give this one another name";
  }
  if (h->holder_size != sizeof(PlaceHolder))
    return "is corrupt (holder size " + std::to_string(h->holder_size) + ")";
  return std::string();
}

}  // namespace

std::string Places::check(const void* base, size_t size, const PlaceTerms& terms) {
  std::string problem = identity_problem(base, size);
  if (!problem.empty()) return problem;
  const auto* h = static_cast<const PlacesHeader*>(base);
  const PlaceTerms& had = h->terms;
  if (had.limit != terms.limit || had.window_ms != terms.window_ms || had.concurrency != terms.concurrency ||
      had.lease_ms != terms.lease_ms) {
    return "was created with other terms (" + terms_difference(had, terms) + "; it has " + terms_text(had) +
           ")";
  }
  // Derived by us from the terms just compared: a mismatch is damage.
  const PlacesLayout expected = PlacesLayout::plan(terms);
  if (!(h->layout == expected) || expected.total_size > size) return "is corrupt or truncated";
  if (!h->lock.looks_sound()) return "is corrupt (its lock is damaged)";
  return std::string();
}

std::string Places::describe(const void* base, size_t size, PlaceTerms& terms) {
  std::string problem = identity_problem(base, size);
  if (!problem.empty()) return problem;
  terms = static_cast<const PlacesHeader*>(base)->terms;
  if (std::string why = place_terms_problem(terms); !why.empty())
    return "is corrupt (its terms: " + why + ")";
  return check(base, size, terms);
}

std::string places_segment_name(const std::string& store_name) { return "places." + store_name; }

OpenedPlaces open_places(const std::string& store_name, unsigned mode, const PlaceTerms& terms) {
  OpenedPlaces out;
  const std::string name = places_segment_name(store_name);
  if (!shared_name_is_valid(name)) {
    out.failure = OpenedPlaces::Failure::kInvalid;
    out.error = "Invalid places store name '" + store_name + "'";
    return out;
  }
  if (std::string problem = place_terms_problem(terms); !problem.empty()) {
    out.failure = OpenedPlaces::Failure::kInvalid;
    out.error = "Invalid place terms: " + problem;
    return out;
  }
  const auto prepare = [&terms](void* base) { return Places::format(base, terms); };
  SharedRegion opened = open_shared_region(name, Places::region_size(terms), mode, true, prepare);
  if (!opened.region) {
    out.failure =
        opened.out_of_space ? OpenedPlaces::Failure::kOutOfSpace : OpenedPlaces::Failure::kSharedMemory;
    out.error = opened.error;
    return out;
  }
#if !defined(__linux__)
  // Elsewhere a creator publishes the segment before formatting it: wait (bounded) for its magic.
  const auto* magic = static_cast<const uint64_t*>(opened.region->base());
  for (int waited = 0; waited < 1000 && __atomic_load_n(magic, __ATOMIC_ACQUIRE) == 0; ++waited) {
    const timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
#endif
  const std::string mismatch = Places::check(opened.region->base(), opened.region->size(), terms);
  if (!mismatch.empty()) {
    out.failure = OpenedPlaces::Failure::kMismatch;
    out.error =
        "Shared memory segment '" + name + "' " + mismatch +
        ". Every process sharing an account's places must give the same terms; if this name belongs to "
        "something else (or an earlier deploy), give the store another name, or, once no process uses it, "
        "remove it with destroySharedPlaces('" +
        store_name + "').";
    return out;
  }
  out.created = opened.created;
  out.places = std::make_unique<Places>(std::move(opened.region), terms);
  return out;
}

}  // namespace tollgate
