#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace rapport::parallel {
namespace {

TEST(Parallel, EveryIndexExactlyOnce) {
  for (std::size_t n : {0u, 1u, 63u, 64u, 65u, 1000u, 4999u}) {
    std::vector<std::atomic<int>> seen(n);
    for_ranges(
        n,
        [&](std::size_t b, std::size_t e) {
          ASSERT_LE(b, e);
          for (std::size_t i = b; i < e; ++i) seen[i].fetch_add(1);
        },
        16);
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << "n " << n << " index " << i;
  }
}

TEST(Parallel, RethrowsAChunksExceptionAfterAllChunksFinished) {
  std::atomic<std::size_t> done{0};
  EXPECT_THROW(for_ranges(
                   1000,
                   [&](std::size_t b, std::size_t e) {
                     done += e - b;
                     if (b == 0) throw std::runtime_error("first chunk");
                   },
                   1),
               std::runtime_error);
  EXPECT_EQ(done.load(), 1000u);
}

TEST(Parallel, NestedCallsFromManyThreadsComplete) {
  // the pool is shared: concurrent callers (two imports at once) each get every chunk done
  std::atomic<std::size_t> total{0};
  for_ranges(
      8,
      [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i)
          for_ranges(
              100, [&](std::size_t b2, std::size_t e2) { total += e2 - b2; }, 1);
      },
      1);
  EXPECT_EQ(total.load(), 800u);
}

}  // namespace
}  // namespace rapport::parallel
