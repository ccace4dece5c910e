// Core tests of an account's places (native/core/places.h): the book's decisions as PlaceBook's,
// terms checked on attach, dead holders and dead lockers, a damaged segment refused, threads
// sharing one book.
#include "places_test.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../core/places.h"
#include "../core/places_layout.h"
#include "../core/region.h"
#include "../core/shared_region.h"
#include "../core/table.h"
#include "check.h"

using namespace tollgate;

namespace tollgate_test {
namespace {

std::unique_ptr<Places> make_book(const PlaceTerms& terms) {
  auto region = Region::anonymous(Places::region_size(terms), true, false);
  if (!region || !Places::format(region->base(), terms)) std::abort();
  return std::make_unique<Places>(std::move(region));
}

PlaceGrant ask(Places& p, int64_t now, uint64_t holder, int64_t since) {
  PlaceGrant g;
  CHECK(p.acquire(now, holder, since, g) == PlacesStatus::kOk);
  return g;
}

bool give_back(Places& p, int64_t now, uint64_t holder, PlaceId place) {
  bool released = false;
  CHECK(p.release(now, holder, place, released) == PlacesStatus::kOk);
  return released;
}

PlaceCounts counts(Places& p, int64_t now) {
  PlaceCounts c;
  CHECK(p.counts(now, c) == PlacesStatus::kOk);
  return c;
}

void check_counts(Places& p, int64_t now, uint32_t in_flight, uint32_t cooling, uint32_t waiting,
                  uint32_t holders) {
  const PlaceCounts c = counts(p, now);
  CHECK_EQ(c.in_flight, in_flight);
  CHECK_EQ(c.cooling, cooling);
  CHECK_EQ(c.waiting, waiting);
  CHECK_EQ(c.holders, holders);
}

void test_grants_up_to_limit_then_cooling() {
  auto p = make_book({3, 100, 0, 1000});
  const PlaceGrant a1 = ask(*p, 0, 1, 0), a2 = ask(*p, 0, 1, 0), a3 = ask(*p, 0, 1, 0);
  CHECK(a1.granted && a2.granted && a3.granted);
  CHECK(a1.place.slot != a2.place.slot && a2.place.slot != a3.place.slot && a1.place.slot != a3.place.slot);
  CHECK_EQ(p->version(), 0);  // a grant frees nothing
  // Full: nothing changes by itself but this holder's own lease, which is no help to it.
  const PlaceGrant a4 = ask(*p, 0, 1, 0);
  CHECK(!a4.granted);
  CHECK(a4.wake_at == kPlacesNever);
  const PlaceGrant b = ask(*p, 0, 2, 0);
  CHECK(!b.granted);
  CHECK_EQ(b.wake_at, 1000);  // the other holder's lease
  CHECK(give_back(*p, 10, 1, a1.place));
  CHECK_EQ(p->version(), 1);
  check_counts(*p, 10, 2, 1, 2, 2);
  // The answered place cools until 110: in flight plus cooling is still the limit.
  const PlaceGrant b2 = ask(*p, 20, 2, 0);
  CHECK(!b2.granted);
  CHECK_EQ(b2.wake_at, 110);
  // At 110 it has cooled; holder 1 waits since 0 too, and its id is lower: it goes first.
  CHECK(!ask(*p, 110, 2, 0).granted);
  CHECK_EQ(p->version(), 2);
  CHECK(ask(*p, 110, 1, 0).granted);
  check_counts(*p, 110, 3, 0, 1, 2);
}

void test_concurrency() {
  auto p = make_book({0, 0, 2, 1000});
  const PlaceGrant a1 = ask(*p, 0, 1, 0);
  CHECK(a1.granted && ask(*p, 0, 1, 0).granted);
  const PlaceGrant b = ask(*p, 1, 2, 1);
  CHECK(!b.granted);
  CHECK_EQ(b.wake_at, 1000);
  // Without a window a place frees with its response.
  CHECK(give_back(*p, 5, 1, a1.place));
  check_counts(*p, 5, 1, 0, 1, 2);
  CHECK(ask(*p, 5, 2, 1).granted);
  // Both terms: the tighter one decides.
  auto q = make_book({5, 100, 2, 1000});
  const PlaceGrant c1 = ask(*q, 0, 1, 0);
  CHECK(c1.granted && ask(*q, 0, 1, 0).granted && !ask(*q, 0, 1, 0).granted);
  CHECK(give_back(*q, 1, 1, c1.place));
  CHECK(ask(*q, 1, 1, 0).granted);
  CHECK(!ask(*q, 1, 1, 0).granted);
  check_counts(*q, 1, 2, 1, 1, 1);
}

void test_fifo_by_waiting_since() {
  auto p = make_book({0, 0, 1, 1000});
  const PlaceGrant a = ask(*p, 0, 1, 0);
  CHECK(a.granted);
  CHECK(!ask(*p, 1, 3, 3).granted);  // holder 3 waits since 3
  CHECK(!ask(*p, 2, 2, 5).granted);  // holder 2 since 5
  CHECK(!ask(*p, 2, 4, 1).granted);  // holder 4 since 1, and then leaves
  p->leave(3, 4);
  CHECK_EQ(p->version(), 1);
  CHECK(give_back(*p, 10, 1, a.place));
  CHECK(!ask(*p, 11, 2, 5).granted);  // holder 3 is ahead
  const PlaceGrant c = ask(*p, 12, 3, 3);
  CHECK(c.granted);
  check_counts(*p, 12, 1, 0, 1, 2);  // holder 1 was forgotten with its last place
  CHECK(give_back(*p, 13, 3, c.place));
  CHECK(ask(*p, 14, 2, 5).granted);
  // A leave with no waiter changes nothing, and bumps nothing.
  const uint64_t before = p->version();
  p->leave(15, 2);
  p->leave(15, 99);
  CHECK_EQ(p->version(), before);
}

void test_lease_lapse() {
  auto p = make_book({2, 50, 0, 100});
  const PlaceGrant a1 = ask(*p, 0, 1, 0);
  CHECK(a1.granted && ask(*p, 0, 1, 0).granted);
  check_counts(*p, 99, 2, 0, 0, 1);
  const PlaceGrant b = ask(*p, 99, 2, 99);
  CHECK(!b.granted);
  CHECK_EQ(b.wake_at, 100);
  // At 100 the lease has lapsed: the places count as answered at 100 and cool until 150.
  check_counts(*p, 100, 0, 2, 1, 1);
  CHECK(!give_back(*p, 100, 1, a1.place));
  bool renewed = true;
  CHECK(p->renew(100, 1, renewed) == PlacesStatus::kOk);
  CHECK(!renewed);
  const PlaceGrant b2 = ask(*p, 120, 2, 99);
  CHECK(!b2.granted);
  CHECK_EQ(b2.wake_at, 150);
  CHECK(ask(*p, 150, 2, 99).granted);
  // A renewal keeps a holder past its first lease.
  CHECK(p->renew(200, 2, renewed) == PlacesStatus::kOk);
  CHECK(renewed);
  check_counts(*p, 299, 1, 0, 0, 1);
  check_counts(*p, 300, 0, 1, 0, 0);
}

void test_stale_release_refused() {
  auto p = make_book({0, 0, 1, 1000});
  const PlaceGrant first = ask(*p, 0, 1, 0);
  CHECK(first.granted);
  CHECK(give_back(*p, 1, 1, first.place));
  CHECK(!give_back(*p, 1, 1, first.place));
  const PlaceGrant second = ask(*p, 2, 1, 2);
  CHECK(second.granted);
  CHECK_EQ(second.place.slot, first.place.slot);  // the one slot, granted again
  CHECK(!give_back(*p, 3, 1, first.place));       // the earlier grant's id frees nothing
  CHECK(!give_back(*p, 3, 2, second.place));      // nor another holder
  CHECK(!give_back(*p, 3, 1, PlaceId{99, second.place.generation}));
  check_counts(*p, 3, 1, 0, 0, 1);
  CHECK(give_back(*p, 4, 1, second.place));
  check_counts(*p, 4, 0, 0, 0, 0);
}

void test_holders_full() {
  auto p = make_book({0, 0, 1, 1000});
  for (uint64_t id = 0; id < kMaxPlaceHolders; ++id) ask(*p, 0, id, 0);
  PlaceGrant g;
  CHECK(p->acquire(0, kMaxPlaceHolders, 0, g) == PlacesStatus::kHoldersFull);
  p->leave(1, 5);
  CHECK(p->acquire(1, kMaxPlaceHolders, 0, g) == PlacesStatus::kOk);
  check_counts(*p, 1, 1, 0, kMaxPlaceHolders - 1, kMaxPlaceHolders);
  // At their lease's end all lapse at once.
  check_counts(*p, 1000, 0, 0, 1, 1);
}

void test_terms_checked_on_attach() {
  const PlaceTerms terms{5, 1000, 0, 30000};
  auto region = Region::anonymous(Places::region_size(terms), true, false);
  CHECK(region && Places::format(region->base(), terms));
  CHECK(Places::check(region->base(), region->size(), terms).empty());
  const std::string limit = Places::check(region->base(), region->size(), PlaceTerms{6, 1000, 0, 30000});
  CHECK(limit.find("limit 5, not 6") != std::string::npos);
  const std::string lease = Places::check(region->base(), region->size(), PlaceTerms{5, 1000, 0, 20000});
  CHECK(lease.find("leaseMs 30000, not 20000") != std::string::npos);
  CHECK(lease.find("limit 5, not") == std::string::npos);
  auto* layout_version = reinterpret_cast<uint32_t*>(static_cast<char*>(region->base()) + 8);
  *layout_version = 9;
  CHECK(Places::check(region->base(), region->size(), terms).find("places layout 9") != std::string::npos);
  // A rate-limit table, or anything else, is named for what it is.
  const TableOptions options{100, 1, false, Policy{PolicyKind::kFixedWindow, 5, 1000, 0, 0}};
  auto table = Region::anonymous(TableLayout::plan(100, 1).total_size, false);
  CHECK(table && Table::format(table->base(), options, random_seed()));
  CHECK(Places::check(table->base(), table->size(), terms).find("rate-limit table") != std::string::npos);
  auto zeros = Region::anonymous(8192, false);
  CHECK(Places::check(zeros->base(), zeros->size(), terms).find("is not an upstream account's places") !=
        std::string::npos);
  CHECK(!place_terms_problem(PlaceTerms{0, 0, 0, 10}).empty());
  CHECK(!place_terms_problem(PlaceTerms{kMaxPlaces + 1, 10, 0, 10}).empty());
  CHECK(!place_terms_problem(PlaceTerms{1, 0, 0, 10}).empty());
  CHECK(!place_terms_problem(PlaceTerms{1, 10, 0, 0}).empty());
  CHECK(place_terms_problem(PlaceTerms{0, 0, 1, 10}).empty());
}

void test_shared_segment() {
  const std::string name = "coretest-places-" + std::to_string(getpid());
  std::string error;
  unlink_shared_region(places_segment_name(name), error);
  const PlaceTerms terms{0, 0, 1, 600000};
  OpenedPlaces first = open_places(name, 0600, terms);
  OpenedPlaces second = open_places(name, 0600, terms);
  CHECK(first.places && first.created);
  CHECK(second.places && !second.created);
  OpenedPlaces other = open_places(name, 0600, PlaceTerms{0, 0, 2, 600000});
  CHECK(!other.places && other.failure == OpenedPlaces::Failure::kMismatch);
  CHECK(other.error.find("places." + name) != std::string::npos);
  CHECK(other.error.find("concurrency 1, not 2") != std::string::npos);
  CHECK(open_places("../x", 0600, terms).failure == OpenedPlaces::Failure::kInvalid);
  CHECK(open_places(name, 0600, PlaceTerms{0, 0, 0, 1}).failure == OpenedPlaces::Failure::kInvalid);
  if (!first.places || !second.places) return;
  // Two mappings of one segment: a grant through one is seen through the other.
  CHECK(ask(*first.places, 0, 1, 0).granted);
  CHECK(!ask(*second.places, 1, 2, 1).granted);
#if !defined(__SANITIZE_THREAD__)
  // A holder whose process is gone lapses at once, not at its lease's end.
  const pid_t child = fork();
  if (child == 0) {
    OpenedPlaces mine = open_places(name, 0600, terms);
    PlaceGrant g;
    // Holder 3 takes the place holder 1 frees, then its process dies holding it.
    bool released = false;
    mine.places->release(2, 1, PlaceId{0, 1}, released);
    mine.places->acquire(3, 3, 0, g);
    _exit(released && g.granted ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  check_counts(*second.places, 4, 0, 0, 1, 1);  // holder 3 is gone; holder 2 still waits
  CHECK(ask(*second.places, 4, 2, 1).granted);
#endif
  CHECK_EQ(unlink_shared_region(places_segment_name(name), error), 1);
}

#if !defined(__SANITIZE_THREAD__)
void test_dead_locker_repaired() {
  auto p = make_book({4, 100, 0, 1000});
  CHECK(ask(*p, 0, 1, 0).granted && ask(*p, 0, 1, 0).granted);
  // A live holder of the lock: a call gives up after its timeout, changing nothing.
  std::atomic<bool> holding{false}, die{false};
  std::thread locker([&] {
    p->debug_hold_lock();
    p->debug_spoil_counts();  // as a process killed half-way through an operation
    holding = true;
    while (!die) std::this_thread::yield();
  });
  while (!holding) std::this_thread::yield();
  p->set_lock_timeout(20);
  PlaceCounts c;
  CHECK(p->counts(1, c) == PlacesStatus::kLockTimeout);
  // It dies holding it: the next call recovers the lock and rebuilds the counts from the slots.
  die = true;
  locker.join();
  check_counts(*p, 1, 2, 0, 0, 1);
  CHECK_EQ(p->recoveries(), 1);
  CHECK(ask(*p, 1, 1, 0).granted && ask(*p, 1, 1, 0).granted);
  CHECK(!ask(*p, 1, 1, 0).granted);
}
#endif

// A book whose region is followed by an inaccessible page: an access one past the segment faults.
struct GuardedBook {
  std::unique_ptr<Places> places;
  char* base = nullptr;
  size_t size = 0;  // the book's own bytes (region_size)

  explicit GuardedBook(const PlaceTerms& terms) {
    size = Places::region_size(terms);
    auto region = Region::anonymous(size + 4096, true, false);
    if (!region || !Places::format(region->base(), terms)) std::abort();
    base = static_cast<char*>(region->base());
    if (mprotect(base + size, 4096, PROT_NONE) != 0) std::abort();
    places = std::make_unique<Places>(std::move(region), terms);
    places->set_lock_timeout(0);
  }
  PlacesHeader& header() const { return *reinterpret_cast<PlacesHeader*>(base); }
  PlacesLayout layout() const { return header().layout; }
  PlaceHolder* holders() const { return reinterpret_cast<PlaceHolder*>(base + layout().holders_offset); }
  PlaceSlot* slots() const { return reinterpret_cast<PlaceSlot*>(base + layout().slots_offset); }
  uint32_t* free_stack() const { return reinterpret_cast<uint32_t*>(base + layout().free_offset); }
};

// Whether a call now fails as damaged, naming `what`, and every kind of call fails so alike.
void check_damaged(Places& p, int64_t now, const char* what, const char* spoiled = "") {
  PlaceCounts c;
  const PlacesStatus status = p.counts(now, c);
  const bool named =
      status == PlacesStatus::kDamaged && p.damage() != nullptr && std::strstr(p.damage(), what) != nullptr;
  if (!named)
    std::fprintf(stderr, "  %s: status %d, damage '%s'\n", spoiled, int(status),
                 p.damage() ? p.damage() : "");
  CHECK(named);
  PlaceGrant g;
  bool done = false;
  CHECK(p.acquire(now, 77, now, g) == PlacesStatus::kDamaged && !g.granted);
  CHECK(p.release(now, 77, PlaceId{0, 1}, done) == PlacesStatus::kDamaged);
  CHECK(p.renew(now, 77, done) == PlacesStatus::kDamaged);
  CHECK(p.leave(now, 77) == PlacesStatus::kDamaged);
}

// The outside tester's case: a concurrency-4 account (45,056 bytes), four bytes at offset 41420
// (the free stack's top: the next slot to grant) made the next call write far outside the segment.
void test_damaged_free_stack_regression() {
  const PlaceTerms terms{0, 0, 4, 60000};
  CHECK_EQ(Places::region_size(terms), 45056);
  for (const uint32_t bytes : {0x01010101u, 0x80808080u, 0xffffffffu}) {
    GuardedBook b(terms);
    CHECK_EQ(b.layout().free_offset + 3 * sizeof(uint32_t), 41420);
    std::memcpy(b.base + 41420, &bytes, sizeof bytes);
    PlaceGrant g;
    CHECK(b.places->acquire(0, 1, 0, g) == PlacesStatus::kDamaged);
    CHECK(!g.granted);
    CHECK(b.places->damage() != nullptr && std::strstr(b.places->damage(), "free-slot stack") != nullptr);
  }
  // A free-stack entry naming a slot already in flight is damage too (it would be granted twice).
  GuardedBook b(terms);
  CHECK(ask(*b.places, 0, 1, 0).granted);  // slot 0
  b.free_stack()[b.header().free_count - 1] = 0;
  PlaceGrant g;
  CHECK(b.places->acquire(1, 1, 0, g) == PlacesStatus::kDamaged);
}

// Each count, index and position the segment holds, out of range: every call fails as damaged,
// naming it, and nothing reads or writes outside the segment.
void test_damaged_fields_refused() {
  const PlaceTerms window{4, 100, 0, 1000};
  const PlaceTerms plain{0, 0, 4, 1000};
  const PlaceTerms both{4, 100, 2, 1000};
  // A book whose holder 1 took every place and gave one back (cooling under a window), and then
  // holder 2 asked (a waiter where the place still cools).
  const auto busy = [](const PlaceTerms& terms) {
    auto b = std::make_unique<GuardedBook>(terms);
    std::vector<PlaceGrant> held;
    for (PlaceGrant g = ask(*b->places, 0, 1, 0); g.granted; g = ask(*b->places, 0, 1, 0)) held.push_back(g);
    CHECK(give_back(*b->places, 1, 1, held.at(0).place));
    ask(*b->places, 1, 2, 1);
    return b;
  };
  struct Case {
    const char* name;
    const PlaceTerms* terms;
    void (*spoil)(GuardedBook&);
    const char* what;
  };
  const Case cases[] = {
      {"holder count", &window, [](GuardedBook& b) { b.header().holder_count = 0x01010101; }, "holder count"},
      {"holder count one past the most", &plain,
       [](GuardedBook& b) { b.header().holder_count = kMaxPlaceHolders + 1; }, "holder count"},
      {"in flight", &window, [](GuardedBook& b) { b.header().in_flight = 0x80808080; },
       "in-flight or free-slot count"},
      {"in flight past concurrency", &both,
       [](GuardedBook& b) { b.header().in_flight = 3, b.header().free_count = 1; }, "in-flight"},
      {"free count", &plain, [](GuardedBook& b) { b.header().free_count = 0xffffffff; },
       "in-flight or free-slot count"},
      {"ring head", &window, [](GuardedBook& b) { b.header().ring_head = 4; }, "cooling ring"},
      {"ring count", &window, [](GuardedBook& b) { b.header().ring_count = 0x01010101; }, "cooling ring"},
      {"ring count past the limit", &window, [](GuardedBook& b) { b.header().ring_count = 3; },
       "cooling ring"},
      // No window: no ring at all (a count there once divided by its capacity, 0).
      {"ring count without a ring", &plain, [](GuardedBook& b) { b.header().ring_count = 1; },
       "cooling ring"},
      {"ring head without a ring", &plain, [](GuardedBook& b) { b.header().ring_head = 0x80808080; },
       "cooling ring"},
      {"magic", &window, [](GuardedBook& b) { b.header().magic = 0x0101010101010101ULL; }, "header"},
      {"holder size", &window, [](GuardedBook& b) { b.header().holder_size = 0xffffffff; }, "header"},
      {"terms", &window, [](GuardedBook& b) { b.header().terms.limit = 0x01010101; }, "terms or layout"},
      {"layout", &window, [](GuardedBook& b) { b.header().layout.free_offset = 0x80808080; },
       "terms or layout"},
      {"lock", &window,
       [](GuardedBook& b) { std::memset(static_cast<void*>(&b.header().lock), 0xff, sizeof(ShardLock)); },
       "lock"},
  };
  for (const Case& c : cases) {
    auto b = busy(*c.terms);
    c.spoil(*b);
    check_damaged(*b->places, 2, c.what, c.name);
  }

  // A holder's places past its slots: found when its lease lapses and they are taken back.
  {
    auto b = busy(window);
    b->holders()[0].places = 0xffffffff;
    check_damaged(*b->places, 5000, "a holder's count of places");
  }
  {
    auto b = busy(plain);
    b->holders()[0].places = 4;  // holds 3
    check_damaged(*b->places, 5000, "a holder's count of places");
  }
  // A release by a holder whose count is 0 though a slot names it.
  {
    GuardedBook b(plain);
    const PlaceGrant a = ask(*b.places, 0, 1, 0);
    b.holders()[0].places = 0;
    bool released = false;
    CHECK(b.places->release(1, 1, a.place, released) == PlacesStatus::kDamaged && !released);
  }
  // A holder's count past the places in flight: its next grant is refused.
  {
    GuardedBook b(plain);
    CHECK(ask(*b.places, 0, 1, 0).granted);
    b.holders()[0].places = 0xffffffff;
    PlaceGrant g;
    CHECK(b.places->acquire(1, 1, 1, g) == PlacesStatus::kDamaged && !g.granted);
  }
  // A slot's generation past the grant count; the grant count at its bound.
  {
    GuardedBook b(plain);
    const PlaceGrant a = ask(*b.places, 0, 1, 0);
    b.slots()[a.place.slot].generation = 0x0101010101010101ULL;
    bool released = false;
    CHECK(b.places->release(1, 1, PlaceId{a.place.slot, 0x0101010101010101ULL}, released) ==
          PlacesStatus::kDamaged);
    CHECK(std::strstr(b.places->damage(), "generation") != nullptr);
  }
  {
    GuardedBook b(plain);
    b.header().grants = 0xffffffffffffffffULL;
    PlaceGrant g;
    CHECK(b.places->acquire(0, 1, 0, g) == PlacesStatus::kDamaged && !g.granted);
    CHECK(std::strstr(b.places->damage(), "grant count") != nullptr);
  }
  // Slots that say they are in flight but are on the free stack: taken back twice, the stack
  // would overflow; the in-flight count stops it.
  {
    GuardedBook b(plain);
    CHECK(ask(*b.places, 0, 1, 0).granted);
    for (uint32_t s = 0; s < 4; ++s) b.slots()[s] = PlaceSlot{1, 1, 1, 0};
    b.holders()[0].places = 1;
    PlaceCounts c;
    CHECK(b.places->counts(5000, c) == PlacesStatus::kOk);  // the holder's one place is found first
    b.holders()[0] = PlaceHolder{1, 0, kNotWaiting, 0, 0, 4};
    b.header().holder_count = 1;
    CHECK(b.places->counts(6000, c) == PlacesStatus::kDamaged);
  }
  // A repair (after a dead locker) cuts every count to range first, then the book is sound again.
  {
    auto b = busy(window);
    b->header().holder_count = 0xffffffff;
    b->header().ring_count = 0xffffffff;
    b->header().ring_head = 0x80808080;
    b->header().free_count = 0x01010101;
    b->header().recoveries_seen += 1;  // as if the lock had been taken over since
    PlaceCounts c;
    CHECK(b->places->counts(2, c) == PlacesStatus::kOk);
    CHECK(c.holders <= kMaxPlaceHolders && c.in_flight + c.cooling <= 4);
  }
}

// Random bytes over random places of a busy book, then random calls: each call succeeds or fails
// with a status, and none reaches outside the segment (its guard page) or trips a sanitizer.
void test_random_damage() {
  const PlaceTerms all_terms[] = {{4, 100, 0, 1000}, {0, 0, 4, 1000}, {3, 50, 2, 500}};
  int damaged = 0, ok = 0;
  for (uint32_t seed = 1; seed <= 600; ++seed) {
    std::mt19937 rng(seed);
    const PlaceTerms& terms = all_terms[seed % 3];
    GuardedBook b(terms);
    int64_t now = 0;
    for (uint64_t h = 1; h <= 6; ++h) ask(*b.places, now, h, now);
    // Where the damage goes: each part of the book in turn, the lock's bytes included.
    const PlacesLayout l = b.layout();
    const uint64_t bounds[][2] = {
        {0, l.holders_offset},           {l.holders_offset, l.holders_offset + 6 * sizeof(PlaceHolder)},
        {l.slots_offset, l.free_offset}, {l.free_offset, l.ring_offset},
        {l.ring_offset, b.size},         {0, b.size}};
    const auto& part = bounds[(seed / 3) % 6];
    const uint64_t span = part[1] > part[0] ? part[1] - part[0] : 1;
    for (int w = 0, writes = 1 + int(rng() % 4); w < writes; ++w) {
      const uint64_t at = part[0] + rng() % span;
      const uint32_t pattern[] = {0x01010101u, 0x80808080u, 0xffffffffu, uint32_t(rng())};
      const uint32_t value = pattern[rng() % 4];
      const size_t n = std::min<uint64_t>(4, b.size - at);
      std::memcpy(b.base + at, &value, n);
    }
    for (int op = 0; op < 40; ++op) {
      now += rng() % 300;
      const uint64_t h = 1 + rng() % 8;
      PlacesStatus status;
      PlaceGrant g;
      bool done = false;
      PlaceCounts c;
      switch (rng() % 5) {
        case 0:
          status = b.places->acquire(now, h, now, g);
          break;
        case 1:
          status = b.places->release(now, h, PlaceId{uint32_t(rng() % 6), rng() % 20}, done);
          break;
        case 2:
          status = b.places->renew(now, h, done);
          break;
        case 3:
          status = b.places->leave(now, h);
          break;
        default:
          status = b.places->counts(now, c);
          break;
      }
      if (status == PlacesStatus::kDamaged) {
        ++damaged;
        CHECK(b.places->damage() != nullptr);
      } else if (status == PlacesStatus::kOk) {
        ++ok;
      }
    }
  }
  CHECK(damaged > 0);
  CHECK(ok > 0);
}

void test_threads_share_one_book() {
  // Four threads, two places: never more than two held at once, and every wait ends.
  auto p = make_book({0, 0, 2, int64_t{1} << 40});
  p->set_lock_timeout(-1);
  std::atomic<int> held{0}, most{0};
  std::atomic<int64_t> clock{0};
  std::vector<std::thread> threads;
  for (uint64_t t = 1; t <= 4; ++t) {
    threads.emplace_back([&, t] {
      for (int grants = 0; grants < 300;) {
        const int64_t since = clock.fetch_add(1);
        PlaceGrant g;
        while (p->acquire(clock.load(), t, since, g) == PlacesStatus::kOk && !g.granted)
          std::this_thread::yield();
        const int now_held = held.fetch_add(1) + 1;
        int seen = most.load();
        while (now_held > seen && !most.compare_exchange_weak(seen, now_held)) {
        }
        held.fetch_sub(1);
        bool released = false;
        p->release(clock.load(), t, g.place, released);
        if (!released) ++failures;
        ++grants;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(most.load() <= 2);
  check_counts(*p, clock.load(), 0, 0, 0, 0);
}

}  // namespace

void run_places_tests(TestRunner run) {
  run("places: grants up to the limit, then cooling", test_grants_up_to_limit_then_cooling);
  run("places: concurrency", test_concurrency);
  run("places: FIFO by waiting_since, then id", test_fifo_by_waiting_since);
  run("places: a lapsed lease's places cool from its end", test_lease_lapse);
  run("places: a stale release is refused", test_stale_release_refused);
  run("places: 1024 holders at most", test_holders_full);
  run("places: terms checked on attach", test_terms_checked_on_attach);
  run("places: shared segment; a dead process's holder lapses at once", test_shared_segment);
#if !defined(__SANITIZE_THREAD__)
  run("places: lock timeout; a dead locker's book repaired", test_dead_locker_repaired);
#endif
  run("places: a damaged free stack is refused, not followed (regression: offset 41420)",
      test_damaged_free_stack_regression);
  run("places: each damaged count, index or position is refused, naming it", test_damaged_fields_refused);
  run("places: random bytes over a busy book: every call succeeds or fails, none faults", test_random_damage);
}

void run_places_thread_tests(TestRunner run) {
  run("places: threads share one book", test_threads_share_one_book);
}

}  // namespace tollgate_test
