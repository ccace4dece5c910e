// The core tests' checks: a failed check is reported and counted, and the tests go on.
#pragma once

#include <cstdio>

namespace tollgate_test {

inline int failures = 0;

}  // namespace tollgate_test

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++tollgate_test::failures;                                                    \
    }                                                                               \
  } while (0)

#define CHECK_EQ(a, b)                                                                                      \
  do {                                                                                                      \
    const long long va = (long long)(a), vb = (long long)(b);                                               \
    if (va != vb) {                                                                                         \
      std::fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, va, #b, vb); \
      ++tollgate_test::failures;                                                                            \
    }                                                                                                       \
  } while (0)
