#pragma once

// The chunk of the wire-protocol benchmark's `bench` stream (../shared/bench/README.md): its
// index, the wall-clock time in microseconds at which it was handed to append, and a payload.
// Described, so River writes it straight into the event's buffer, members in this order.

#include <boost/describe/class.hpp>

#include <cstdint>
#include <string>

namespace bench {

struct bench_chunk {
  std::int64_t i = 0;
  std::int64_t t = 0;
  std::string p;
};
BOOST_DESCRIBE_STRUCT(bench_chunk, (), (i, t, p))

}  // namespace bench
