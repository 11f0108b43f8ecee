#pragma once

// An invariant of a fuzz target: when it does not hold, say which and abort, so that libFuzzer
// keeps the input as a crash.

#include <cstdio>
#include <cstdlib>

#define RIVER_FUZZ_CHECK(cond)                                                                   \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);          \
      std::abort();                                                                              \
    }                                                                                            \
  } while (false)
