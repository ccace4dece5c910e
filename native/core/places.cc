// The book's operations, line for line as src/engine/js/place-book.ts decides (see places.h).
#include "places.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "places_layout.h"
#include "shared_region.h"

namespace tollgate {

// Each count, index and position the book keeps in the segment is read once, checked, and used
// only as checked: the lock keeps other tollgate processes out, but not a stray writer to the
// file, and a value out of range must end the operation (kDamaged), never steer an access
// outside the segment. The atomic load stops the compiler from reading a field again after its check.
template <typename T>
T load_once(const T& field) noexcept {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

// A grant count past 2^53 is damage (a million grants a second reach it in 285 years): below it a
// place's generation is exact in a double as well.
constexpr uint64_t kMaxGrants = uint64_t{1} << 53;

bool same_terms(const PlaceTerms& a, const PlaceTerms& b) noexcept {
  return a.limit == b.limit && a.window_ms == b.window_ms && a.concurrency == b.concurrency &&
         a.lease_ms == b.lease_ms;
}

// One operation's view of the book, made while holding the lock. The counts live in the members
// (checked by load() or rebuilt by repair()) and are written through to the segment as they change.
class PlacesBook {
 public:
  PlacesBook(PlacesHeader* h, char* base, const PlaceTerms& terms, int64_t now,
             uint64_t own_namespace) noexcept
      : h_(h),
        t_(terms),
        l_(PlacesLayout::plan(terms)),
        holders_(reinterpret_cast<PlaceHolder*>(base + l_.holders_offset)),
        slots_(reinterpret_cast<PlaceSlot*>(base + l_.slots_offset)),
        free_(reinterpret_cast<uint32_t*>(base + l_.free_offset)),
        ring_(reinterpret_cast<int64_t*>(base + l_.ring_offset)),
        now_(now),
        own_namespace_(own_namespace) {}

  // What was found out of range, or null.
  const char* damage() const noexcept { return damage_; }

  // Reads the header's counts into the members, checking each against the layout and the others
  // (every operation keeps these invariants); false, with damage() set, when one is out of range.
  bool load() noexcept {
    if (load_once(h_->magic) != Places::kMagic || h_->layout_version != Places::kVersion ||
        h_->holder_size != sizeof(PlaceHolder)) {
      return fail("its header is not a places book of this version");
    }
    if (!same_terms(h_->terms, t_) || !(h_->layout == l_)) return fail("its terms or layout changed");
    holder_count_ = load_once(h_->holder_count);
    if (holder_count_ > kMaxPlaceHolders) return fail("its holder count is out of range");
    in_flight_ = load_once(h_->in_flight);
    free_count_ = load_once(h_->free_count);
    // Every slot is in flight or on the free stack, never both.
    if (in_flight_ > l_.slot_count || free_count_ != l_.slot_count - in_flight_ ||
        (t_.concurrency > 0 && in_flight_ > t_.concurrency)) {
      return fail("its in-flight or free-slot count is out of range");
    }
    ring_head_ = load_once(h_->ring_head);
    ring_count_ = load_once(h_->ring_count);
    const bool head_ok = l_.ring_capacity == 0 ? ring_head_ == 0 : ring_head_ < l_.ring_capacity;
    // In flight and cooling together never exceed the limit (the window's promise).
    if (!head_ok || ring_count_ > l_.ring_capacity ||
        (t_.limit > 0 && int64_t(in_flight_) + ring_count_ > t_.limit)) {
      return fail("its cooling ring's head or count is out of range");
    }
    return true;
  }

  // Takes back lapsed holders' places (counted as answered at the lapse) and frees cooled places.
  bool sweep() noexcept {
    // Pids are judged at most once per millisecond: a kill(2) per holder.
    const bool judge_pids = own_namespace_ != 0 && now_ > h_->pids_checked_at;
    if (judge_pids) h_->pids_checked_at = now_;
    const int32_t own_pid = judge_pids ? int32_t(getpid()) : 0;
    for (uint32_t i = 0; i < holder_count_;) {
      PlaceHolder& holder = holders_[i];
      int64_t lapsed_at;
      if (holder.lease_until <= now_) {
        lapsed_at = holder.lease_until;
      } else if (judge_pids && holder.pid_namespace == own_namespace_ && holder.pid != own_pid &&
                 process_gone(holder.pid)) {
        lapsed_at = now_;
      } else {
        ++i;
        continue;
      }
      if (!take_back(holder, lapsed_at)) return false;
      remove(i);  // the last holder moves into i: look at i again
      bump();
    }
    uint32_t cooled = 0;
    while (ring_count_ > 0 && ring_at(0) <= now_) {
      set_ring_head((ring_head_ + 1) % l_.ring_capacity);
      set_ring_count(ring_count_ - 1);
      ++cooled;
    }
    if (cooled > 0) bump();
    return true;
  }

  // The holder's index, or holder_count when there is none.
  uint32_t find(uint64_t id) const noexcept {
    for (uint32_t i = 0; i < holder_count_; ++i) {
      if (holders_[i].id == id) return i;
    }
    return holder_count_;
  }

  // The holder, renewed, or a new one (null when the table is full).
  PlaceHolder* renew_or_create(uint64_t id) noexcept {
    uint32_t i = find(id);
    if (i == holder_count_) {
      if (i == kMaxPlaceHolders) return nullptr;
      holders_[i] = PlaceHolder{id, 0, kNotWaiting, own_namespace_, int32_t(getpid()), 0};
      set_holder_count(holder_count_ + 1);
    }
    holders_[i].lease_until = now_ + t_.lease_ms;
    return &holders_[i];
  }

  PlaceHolder* holder(uint32_t i) noexcept { return i < holder_count_ ? &holders_[i] : nullptr; }

  void acquire(PlaceHolder& h, int64_t waiting_since, PlaceGrant& out) noexcept {
    const int64_t none = INT64_MAX;
    const int64_t in_flight = in_flight_;
    const int64_t free = std::min(t_.limit > 0 ? t_.limit - in_flight - int64_t(ring_count_) : none,
                                  t_.concurrency > 0 ? t_.concurrency - in_flight : none);
    int64_t ahead = 0;
    for (uint32_t i = 0; i < holder_count_; ++i) {
      const PlaceHolder& other = holders_[i];
      if (&other == &h || other.waiting_since == kNotWaiting) continue;
      if (other.waiting_since < waiting_since || (other.waiting_since == waiting_since && other.id < h.id))
        ++ahead;
    }
    // The terms keep a free slot whenever `free` is positive; the count's check guards a damaged book.
    if (ahead < free && free_count_ > 0) {
      // A holder's places are some of those in flight.
      if (load_once(h.places) > in_flight_) {
        fail("a holder's count of places disagrees with the slots");
        return;
      }
      const uint32_t slot = load_once(free_[free_count_ - 1]);
      if (slot >= l_.slot_count || slots_[slot].in_flight != 0) {
        fail("its free-slot stack names a slot out of range or in flight");
        return;
      }
      const uint64_t grants = load_once(h_->grants);
      if (grants >= kMaxGrants) {
        fail("its grant count is out of range");
        return;
      }
      const uint64_t generation = grants + 1;
      set_free_count(free_count_ - 1);
      h_->grants = generation;
      slots_[slot] = PlaceSlot{h.id, generation, 1, 0};
      ++h.places;
      h.waiting_since = kNotWaiting;
      set_in_flight(in_flight_ + 1);
      out = PlaceGrant{true, PlaceId{slot, generation}, kPlacesNever};
      return;
    }
    h.waiting_since = waiting_since;
    // The book changes by itself when the first cooling place frees or a lease lapses.
    int64_t wake_at = ring_count_ > 0 ? ring_at(0) : kPlacesNever;
    for (uint32_t i = 0; i < holder_count_; ++i) {
      if (&holders_[i] != &h) wake_at = std::min(wake_at, holders_[i].lease_until);
    }
    out = PlaceGrant{false, PlaceId{}, wake_at};
  }

  bool release(uint32_t index, PlaceId place) noexcept {
    PlaceHolder* h = holder(index);
    if (h == nullptr || place.slot >= l_.slot_count) return false;
    PlaceSlot& slot = slots_[place.slot];
    if (slot.in_flight == 0 || slot.holder != h->id || slot.generation != place.generation) return false;
    // Granted after the last grant, or held by a holder that holds none: damage, not a place.
    if (place.generation > load_once(h_->grants)) return fail("a slot's generation is past the grant count");
    const uint32_t places = load_once(h->places);
    if (places == 0 || places > in_flight_)
      return fail("a holder's count of places disagrees with the slots");
    if (!free_slot(place.slot)) return false;
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
    PlaceCounts c{in_flight_, ring_count_, 0, holder_count_};
    for (uint32_t i = 0; i < holder_count_; ++i) {
      if (holders_[i].waiting_since != kNotWaiting) ++c.waiting;
    }
    return c;
  }

  // After a process died holding the lock (possibly half-way through an operation): rebuilds
  // what is derived from the slots, so that no place is lost or counted twice. A place whose
  // holder is gone cools as answered now. Safe on any bytes: every count is first cut to range.
  void repair() noexcept {
    set_holder_count(std::min(load_once(h_->holder_count), kMaxPlaceHolders));
    // A holder removed half-way may appear twice: keep the first.
    for (uint32_t i = 0; i < holder_count_;) {
      if (find(holders_[i].id) < i) {
        remove(i);
      } else {
        holders_[i].places = 0;
        ++i;
      }
    }
    set_ring_count(std::min(load_once(h_->ring_count), l_.ring_capacity));
    set_ring_head(l_.ring_capacity > 0 ? load_once(h_->ring_head) % l_.ring_capacity : 0);
    set_in_flight(0);
    set_free_count(0);
    uint32_t orphans = 0;
    for (uint32_t s = l_.slot_count; s-- > 0;) {
      PlaceSlot& slot = slots_[s];
      const uint32_t owner = slot.in_flight != 0 ? find(slot.holder) : holder_count_;
      if (owner < holder_count_) {
        ++holders_[owner].places;
        set_in_flight(in_flight_ + 1);
      } else {
        if (slot.in_flight != 0) ++orphans;
        slot.in_flight = 0;
        free_[free_count_] = s;
        set_free_count(free_count_ + 1);
      }
    }
    // A shift cut short leaves the ring with a time twice, or out of order: sort it again.
    for (uint32_t i = 1; i < ring_count_; ++i) {
      const int64_t t = ring_at(i);
      uint32_t j = i;
      for (; j > 0 && ring_at(j - 1) > t; --j) ring_at(j) = ring_at(j - 1);
      ring_at(j) = t;
    }
    // In flight and cooling together never exceed the limit (the window's promise).
    const int64_t room = t_.limit > 0 ? std::max<int64_t>(t_.limit - int64_t(in_flight_), 0) : 0;
    if (int64_t(ring_count_) > room) set_ring_count(uint32_t(room));
    for (uint32_t i = 0; i < orphans && int64_t(ring_count_) < room; ++i) cool(now_ + t_.window_ms);
    bump();
  }

  void bump() noexcept { h_->changes.fetch_add(1, std::memory_order_release); }

 private:
  static bool process_gone(int32_t pid) noexcept {
    return pid > 0 && kill(pid_t(pid), 0) == -1 && errno == ESRCH;
  }

  bool fail(const char* what) noexcept {
    if (damage_ == nullptr) damage_ = what;
    return false;
  }

  // Each count as the members hold it, written through to the segment.
  void set_holder_count(uint32_t n) noexcept { h_->holder_count = holder_count_ = n; }
  void set_in_flight(uint32_t n) noexcept { h_->in_flight = in_flight_ = n; }
  void set_free_count(uint32_t n) noexcept { h_->free_count = free_count_ = n; }
  void set_ring_head(uint32_t n) noexcept { h_->ring_head = ring_head_ = n; }
  void set_ring_count(uint32_t n) noexcept { h_->ring_count = ring_count_ = n; }

  // Only for i < ring_capacity: ring_head_ < ring_capacity, so the sum cannot wrap.
  int64_t& ring_at(uint32_t i) noexcept { return ring_[(ring_head_ + i) % l_.ring_capacity]; }

  // Puts slot `s` (< slot_count) back on the free stack. The stack has room whenever a slot is in
  // flight (in flight plus free is every slot): with none in flight the book is damaged.
  bool free_slot(uint32_t s) noexcept {
    if (in_flight_ == 0) return fail("its in-flight or free-slot count is out of range");
    slots_[s].in_flight = 0;
    free_[free_count_] = s;
    set_free_count(free_count_ + 1);
    set_in_flight(in_flight_ - 1);
    return true;
  }

  // A place answered at `until - window_ms` cools until `until`: after every time not later.
  void cool(int64_t until) noexcept {
    if (ring_count_ >= l_.ring_capacity) return;  // the terms never let it fill
    uint32_t i = ring_count_;
    // Releases come in time order, so this almost always stops at once; a lapse may go back.
    for (; i > 0 && ring_at(i - 1) > until; --i) ring_at(i) = ring_at(i - 1);
    ring_at(i) = until;
    set_ring_count(ring_count_ + 1);
  }

  // The holder's places, counted as answered at `lapsed_at`: the one scan of every slot. False
  // (damage) when the holder's count and the slots disagree.
  bool take_back(const PlaceHolder& holder, int64_t lapsed_at) noexcept {
    uint32_t left = load_once(holder.places);
    if (left > in_flight_) return fail("a holder's count of places disagrees with the slots");
    for (uint32_t s = 0; s < l_.slot_count && left > 0; ++s) {
      if (slots_[s].in_flight == 0 || slots_[s].holder != holder.id) continue;
      if (!free_slot(s)) return false;
      --left;
      if (t_.limit > 0) cool(lapsed_at + t_.window_ms);
    }
    return left == 0 || fail("a holder's count of places disagrees with the slots");
  }

  void forget_if_idle(uint32_t index) noexcept {
    const PlaceHolder& h = holders_[index];
    if (h.places == 0 && h.waiting_since == kNotWaiting) remove(index);
  }

  // Holders are kept dense, in no order: the last one fills the gap.
  void remove(uint32_t index) noexcept {
    const uint32_t last = holder_count_ - 1;
    set_holder_count(last);
    if (index != last) holders_[index] = holders_[last];
  }

  PlacesHeader* h_;
  const PlaceTerms t_;
  const PlacesLayout l_;
  PlaceHolder* holders_;
  PlaceSlot* slots_;
  uint32_t* free_;
  int64_t* ring_;
  const int64_t now_;
  const uint64_t own_namespace_;
  // The header's counts as checked (or repaired), kept in step with it.
  uint32_t holder_count_ = 0;
  uint32_t in_flight_ = 0;
  uint32_t free_count_ = 0;
  uint32_t ring_head_ = 0;
  uint32_t ring_count_ = 0;
  const char* damage_ = nullptr;
};

namespace {

// Why `terms` cannot make a book in `region`, or null: then every call fails as damaged.
const char* unsound(const Region& region, const PlaceTerms& terms) {
  if (!place_terms_problem(terms).empty()) return "its terms are invalid";
  if (PlacesLayout::plan(terms).total_size > region.size()) return "it is smaller than its terms need";
  return nullptr;
}

}  // namespace

Places::Places(std::unique_ptr<Region> region, const PlaceTerms& terms) noexcept
    : region_(std::move(region)),
      header_(static_cast<PlacesHeader*>(region_->base())),
      terms_(terms),
      unsound_(unsound(*region_, terms_)),
      own_namespace_(pid_namespace_id()) {}

Places::Places(std::unique_ptr<Region> region) noexcept
    : region_(std::move(region)),
      header_(static_cast<PlacesHeader*>(region_->base())),
      terms_(header_->terms),
      unsound_(unsound(*region_, terms_)),
      own_namespace_(pid_namespace_id()) {}

PlacesStatus Places::damaged(const char* what) noexcept {
  damage_.store(what, std::memory_order_relaxed);
  return PlacesStatus::kDamaged;
}

// Every operation: the lock (or kLockTimeout), a repair if a process died holding it, the book's
// counts checked (or kDamaged), the sweep, then `body` on the book.
template <typename Body>
PlacesStatus Places::with_book(int64_t now, Body body) noexcept {
  if (unsound_ != nullptr) return damaged(unsound_);
  // Bytes that are no lock of ours would make the C library fault or abort inside it.
  if (!header_->lock.looks_sound()) return damaged("its lock is damaged");
  ShardGuard guard(header_->lock, lock_timeout_ms_);
  if (!guard.held()) return PlacesStatus::kLockTimeout;
  PlacesBook book(header_, static_cast<char*>(region_->base()), terms_, now, own_namespace_);
  if (header_->lock.recoveries() != header_->recoveries_seen) {
    book.repair();
    header_->recoveries_seen = header_->lock.recoveries();
  }
  if (!book.load() || !book.sweep()) return damaged(book.damage());
  const PlacesStatus status = body(book);
  return book.damage() != nullptr ? damaged(book.damage()) : status;
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
    if (renewed) h->lease_until = now + terms_.lease_ms;
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
