// The table alone, without Node or V8: inserts N distinct keys ("user:N", built per call) into a
// default-grown in-process table (1,024 keys doubling to N) and prints each call over 20 ms wall
// or over 0.25 ms of the thread's own CPU time, with the generation before and after, and the
// call's minor page faults and involuntary context switches. Build and run from the
// repository root:
//   g++ -O2 -std=c++17 -pthread -Inative/core bench/experiments/growth-probe.cc native/core/*.cc -o
//   /tmp/growth-probe /tmp/growth-probe 5000000
#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <string>

#include "growable_table.h"
using namespace tollgate;
static double now_ms() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static rusage usage() {
  rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return u;
}
static double cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
int main(int argc, char** argv) {
  const uint64_t N = argc > 1 ? std::stoull(argv[1]) : 5000000;
  const Policy fixed{PolicyKind::kFixedWindow, 1000000000, 600000, 0, 0};
  auto t = GrowableTable::in_process(TableOptions{N, 0, true, fixed}, 1024, false, HashSeed{1, 2});
  char buf[32];
  int slow = 0, slow_cpu = 0;
  for (uint64_t i = 0; i < N; ++i) {
    int n = snprintf(buf, sizeof buf, "user:%llu", (unsigned long long)(1000000 + i));
    const uint64_t cap0 = t->current_capacity();
    const rusage u0 = usage();
    const double c0 = cpu_ms(), t0 = now_ms();
    Hash128 h = t->hash(buf, n);
    t->consume(h, fixed, 1000000000, 1, 1000, true);
    const double w = now_ms() - t0, c = cpu_ms() - c0;
    if (w > 1) ++slow;
    if (c > 1) ++slow_cpu;
    if (w > 20 || c > 0.25) {
      const rusage u1 = usage();
      printf(
          "%llu: %.2f ms (thread cpu %.2f, minor faults %ld, involuntary switches %ld) gen %llu -> %llu "
          "entries %llu\n",
          (unsigned long long)i, w, c, u1.ru_minflt - u0.ru_minflt, u1.ru_nivcsw - u0.ru_nivcsw,
          (unsigned long long)cap0, (unsigned long long)t->current_capacity(),
          (unsigned long long)t->stats().entries);
    }
  }
  printf("calls > 1 ms: %d; with over 1 ms of the thread's own CPU time: %d\n", slow, slow_cpu);
}
