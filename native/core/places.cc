// The book's operations, line for line as src/engine/js/place-book.ts decides (see places.h).
#include "places.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "places_layout.h"
#include "shared_region.h"

namespace tollgate {

// One operation's view of the book, made while holding the lock.
class PlacesBook {
 public:
  PlacesBook(PlacesHeader* h, char* base, int64_t now, uint64_t own_namespace) noexcept
      : h_(h),
        t_(h->terms),
        holders_(reinterpret_cast<PlaceHolder*>(base + h->layout.holders_offset)),
        slots_(reinterpret_cast<PlaceSlot*>(base + h->layout.slots_offset)),
        free_(reinterpret_cast<uint32_t*>(base + h->layout.free_offset)),
        ring_(reinterpret_cast<int64_t*>(base + h->layout.ring_offset)),
        now_(now),
        own_namespace_(own_namespace) {}

  // Takes back lapsed holders' places (counted as answered at the lapse) and frees cooled places.
  void sweep() noexcept {
    // Pids are judged at most once per millisecond: a kill(2) per holder.
    const bool judge_pids = own_namespace_ != 0 && now_ > h_->pids_checked_at;
    if (judge_pids) h_->pids_checked_at = now_;
    const int32_t own_pid = judge_pids ? int32_t(getpid()) : 0;
    for (uint32_t i = 0; i < h_->holder_count;) {
      PlaceHolder& holder = holders_[i];
      int64_t lapsed_at;
      if (holder.lease_until <= now_) {
        lapsed_at = holder.lease_until;
      } else if (judge_pids && holder.pid_namespace == own_namespace_ && holder.pid != own_pid && process_gone(holder.pid)) {
        lapsed_at = now_;
      } else {
        ++i;
        continue;
      }
      take_back(holder, lapsed_at);
      remove(i);  // the last holder moves into i: look at i again
      bump();
    }
    uint32_t cooled = 0;
    while (h_->ring_count > 0 && ring_at(0) <= now_) {
      h_->ring_head = (h_->ring_head + 1) % h_->layout.ring_capacity;
      --h_->ring_count;
      ++cooled;
    }
    if (cooled > 0) bump();
  }

  // The holder's index, or holder_count when there is none.
  uint32_t find(uint64_t id) const noexcept {
    for (uint32_t i = 0; i < h_->holder_count; ++i) {
      if (holders_[i].id == id) return i;
    }
    return h_->holder_count;
  }

  // The holder, renewed, or a new one (null when the table is full).
  PlaceHolder* renew_or_create(uint64_t id) noexcept {
    uint32_t i = find(id);
    if (i == h_->holder_count) {
      if (i == kMaxPlaceHolders) return nullptr;
      holders_[i] = PlaceHolder{id, 0, kNotWaiting, own_namespace_, int32_t(getpid()), 0};
      ++h_->holder_count;
    }
    holders_[i].lease_until = now_ + t_.lease_ms;
    return &holders_[i];
  }

  PlaceHolder* holder(uint32_t i) noexcept { return i < h_->holder_count ? &holders_[i] : nullptr; }

  void acquire(PlaceHolder& h, int64_t waiting_since, PlaceGrant& out) noexcept {
    const int64_t none = INT64_MAX;
    const int64_t in_flight = h_->in_flight;
    const int64_t free = std::min(t_.limit > 0 ? t_.limit - in_flight - int64_t(h_->ring_count) : none,
                                  t_.concurrency > 0 ? t_.concurrency - in_flight : none);
    int64_t ahead = 0;
    for (uint32_t i = 0; i < h_->holder_count; ++i) {
      const PlaceHolder& other = holders_[i];
      if (&other == &h || other.waiting_since == kNotWaiting) continue;
      if (other.waiting_since < waiting_since || (other.waiting_since == waiting_since && other.id < h.id)) ++ahead;
    }
    // The terms keep a free slot whenever `free` is positive; the check guards a damaged book.
    if (ahead < free && h_->free_count > 0) {
      const uint32_t slot = free_[--h_->free_count];
      slots_[slot] = PlaceSlot{h.id, ++h_->grants, 1, 0};
      ++h.places;
      h.waiting_since = kNotWaiting;
      ++h_->in_flight;
      out = PlaceGrant{true, PlaceId{slot, slots_[slot].generation}, kPlacesNever};
      return;
    }
    h.waiting_since = waiting_since;
    // The book changes by itself when the first cooling place frees or a lease lapses.
    int64_t wake_at = h_->ring_count > 0 ? ring_at(0) : kPlacesNever;
    for (uint32_t i = 0; i < h_->holder_count; ++i) {
      if (&holders_[i] != &h) wake_at = std::min(wake_at, holders_[i].lease_until);
    }
    out = PlaceGrant{false, PlaceId{}, wake_at};
  }

  bool release(uint32_t index, PlaceId place) noexcept {
    PlaceHolder* h = holder(index);
    if (h == nullptr || place.slot >= h_->layout.slot_count) return false;
    PlaceSlot& slot = slots_[place.slot];
    if (slot.in_flight == 0 || slot.holder != h->id || slot.generation != place.generation) return false;
    free_slot(place.slot);
    --h->places;
    h->lease_until = now_ + t_.lease_ms;
    if (t_.limit > 0) cool(now_ + t_.window_ms);
    forget_if_idle(index);
    bump();
    return true;
  }

  void leave(uint32_t index) noexcept {
    PlaceHolder* h = holder(index);
    if (h == nullptr || h->waiting_since == kNotWaiting) return;
    h->waiting_since = kNotWaiting;
    forget_if_idle(index);
    bump();
  }

  PlaceCounts counts() const noexcept {
    PlaceCounts c{h_->in_flight, h_->ring_count, 0, h_->holder_count};
    for (uint32_t i = 0; i < h_->holder_count; ++i) {
      if (holders_[i].waiting_since != kNotWaiting) ++c.waiting;
    }
    return c;
  }

  // After a process died holding the lock (possibly half-way through an operation): rebuilds
  // what is derived from the slots, so that no place is lost or counted twice. A place whose
  // holder is gone cools as answered now.
  void repair() noexcept {
    const PlacesLayout& l = h_->layout;
    if (h_->holder_count > kMaxPlaceHolders) h_->holder_count = kMaxPlaceHolders;
    // A holder removed half-way may appear twice: keep the first.
    for (uint32_t i = 0; i < h_->holder_count;) {
      if (find(holders_[i].id) < i) {
        remove(i);
      } else {
        holders_[i].places = 0;
        ++i;
      }
    }
    if (h_->ring_count > l.ring_capacity) h_->ring_count = l.ring_capacity;
    if (l.ring_capacity > 0) h_->ring_head %= l.ring_capacity;
    h_->in_flight = 0;
    h_->free_count = 0;
    uint32_t orphans = 0;
    for (uint32_t s = l.slot_count; s-- > 0;) {
      PlaceSlot& slot = slots_[s];
      const uint32_t owner = slot.in_flight != 0 ? find(slot.holder) : h_->holder_count;
      if (owner < h_->holder_count) {
        ++holders_[owner].places;
        ++h_->in_flight;
      } else {
        if (slot.in_flight != 0) ++orphans;
        slot.in_flight = 0;
        free_[h_->free_count++] = s;
      }
    }
    // A shift cut short leaves the ring with a time twice, or out of order: sort it again.
    for (uint32_t i = 1; i < h_->ring_count; ++i) {
      const int64_t t = ring_at(i);
      uint32_t j = i;
      for (; j > 0 && ring_at(j - 1) > t; --j) ring_at(j) = ring_at(j - 1);
      ring_at(j) = t;
    }
    // In flight and cooling together never exceed the limit (the window's promise).
    const int64_t room = t_.limit > 0 ? std::max<int64_t>(t_.limit - int64_t(h_->in_flight), 0) : 0;
    if (int64_t(h_->ring_count) > room) h_->ring_count = uint32_t(room);
    for (uint32_t i = 0; i < orphans && int64_t(h_->ring_count) < room; ++i) cool(now_ + t_.window_ms);
    bump();
  }

  void bump() noexcept { h_->changes.fetch_add(1, std::memory_order_release); }

 private:
  static bool process_gone(int32_t pid) noexcept { return pid > 0 && kill(pid_t(pid), 0) == -1 && errno == ESRCH; }

  int64_t& ring_at(uint32_t i) noexcept { return ring_[(h_->ring_head + i) % h_->layout.ring_capacity]; }

  void free_slot(uint32_t s) noexcept {
    slots_[s].in_flight = 0;
    free_[h_->free_count++] = s;
    --h_->in_flight;
  }

  // A place answered at `until - window_ms` cools until `until`: after every time not later.
  void cool(int64_t until) noexcept {
    if (h_->ring_count >= h_->layout.ring_capacity) return;  // the terms never let it fill
    uint32_t i = h_->ring_count;
    // Releases come in time order, so this almost always stops at once; a lapse may go back.
    for (; i > 0 && ring_at(i - 1) > until; --i) ring_at(i) = ring_at(i - 1);
    ring_at(i) = until;
    ++h_->ring_count;
  }

  // The holder's places, counted as answered at `lapsed_at`: the one scan of every slot.
  void take_back(const PlaceHolder& holder, int64_t lapsed_at) noexcept {
    uint32_t left = holder.places;
    for (uint32_t s = 0; s < h_->layout.slot_count && left > 0; ++s) {
      if (slots_[s].in_flight == 0 || slots_[s].holder != holder.id) continue;
      free_slot(s);
      --left;
      if (t_.limit > 0) cool(lapsed_at + t_.window_ms);
    }
  }

  void forget_if_idle(uint32_t index) noexcept {
    const PlaceHolder& h = holders_[index];
    if (h.places == 0 && h.waiting_since == kNotWaiting) remove(index);
  }

  // Holders are kept dense, in no order: the last one fills the gap.
  void remove(uint32_t index) noexcept {
    const uint32_t last = --h_->holder_count;
    if (index != last) holders_[index] = holders_[last];
  }

  PlacesHeader* h_;
  const PlaceTerms t_;
  PlaceHolder* holders_;
  PlaceSlot* slots_;
  uint32_t* free_;
  int64_t* ring_;
  const int64_t now_;
  const uint64_t own_namespace_;
};

Places::Places(std::unique_ptr<Region> region) noexcept
    : region_(std::move(region)),
      header_(static_cast<PlacesHeader*>(region_->base())),
      own_namespace_(pid_namespace_id()) {}

// Every operation: the lock (or kLockTimeout), a repair if a process died holding it, the sweep,
// then `body` on the book.
template <typename Body>
PlacesStatus Places::with_book(int64_t now, Body body) noexcept {
  ShardGuard guard(header_->lock, lock_timeout_ms_);
  if (!guard.held()) return PlacesStatus::kLockTimeout;
  PlacesBook book(header_, static_cast<char*>(region_->base()), now, own_namespace_);
  if (header_->lock.recoveries() != header_->recoveries_seen) {
    book.repair();
    header_->recoveries_seen = header_->lock.recoveries();
  }
  book.sweep();
  return body(book);
}

PlacesStatus Places::acquire(int64_t now, uint64_t holder, int64_t waiting_since, PlaceGrant& out) noexcept {
  return with_book(now, [&](PlacesBook& book) {
    PlaceHolder* h = book.renew_or_create(holder);
    if (h == nullptr) return PlacesStatus::kHoldersFull;
    book.acquire(*h, waiting_since, out);
    return PlacesStatus::kOk;
  });
}

PlacesStatus Places::release(int64_t now, uint64_t holder, PlaceId place, bool& released) noexcept {
  return with_book(now, [&](PlacesBook& book) {
    released = book.release(book.find(holder), place);
    return PlacesStatus::kOk;
  });
}

PlacesStatus Places::renew(int64_t now, uint64_t holder, bool& renewed) noexcept {
  return with_book(now, [&](PlacesBook& book) {
    PlaceHolder* h = book.holder(book.find(holder));
    renewed = h != nullptr;
    if (renewed) h->lease_until = now + header_->terms.lease_ms;
    return PlacesStatus::kOk;
  });
}

PlacesStatus Places::leave(int64_t now, uint64_t holder) noexcept {
  return with_book(now, [&](PlacesBook& book) {
    book.leave(book.find(holder));
    return PlacesStatus::kOk;
  });
}

PlacesStatus Places::counts(int64_t now, PlaceCounts& out) noexcept {
  return with_book(now, [&](PlacesBook& book) {
    out = book.counts();
    return PlacesStatus::kOk;
  });
}

uint64_t Places::version() const noexcept { return header_->changes.load(std::memory_order_acquire); }

uint64_t Places::recoveries() const noexcept { return header_->recoveries_seen; }

void Places::debug_hold_lock() noexcept {
  bool contended = false;
  header_->lock.lock(-1, contended);
}

void Places::debug_spoil_counts() noexcept {
  header_->in_flight += 7;
  header_->free_count = 0;
}

}  // namespace tollgate
