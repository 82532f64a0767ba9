#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
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

// Holds every pool thread with a Background job until release() (or, as a bound against a hang,
// 20 s: `held_out` then tells that nothing released them in time).
class PoolHeld {
 public:
  PoolHeld() {
    for (std::size_t i = 0; i < pool_threads(); ++i)
      jobs_.push_back(std::make_unique<Background>([this] {
        std::unique_lock lock(mu_);
        ++started_;
        cv_.notify_all();
        if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return released_; }))
          held_out_ = true;
      }));
    std::unique_lock lock(mu_);  // every pool thread is in a job now
    cv_.wait(lock, [&] { return started_ == pool_threads(); });
  }
  // True when a pool thread's job ran out its time without release().
  bool release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    for (auto& j : jobs_) j->wait();
    return held_out_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t started_ = 0;
  bool released_ = false, held_out_ = false;
  std::vector<std::unique_ptr<Background>> jobs_;
};

TEST(Parallel, ForRangesRunsTheChunksABusyPoolHasNotTakenOnTheCaller) {
  if (pool_threads() == 0) GTEST_SKIP() << "no pool threads";
  PoolHeld held;
  std::vector<std::atomic<int>> seen(1000);
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> elsewhere{false};
  for_ranges(
      seen.size(),
      [&](std::size_t b, std::size_t e) {
        if (std::this_thread::get_id() != caller) elsewhere = true;
        for (std::size_t i = b; i < e; ++i) seen[i].fetch_add(1);
      },
      1);
  // without claiming, a chunk queued behind the held threads is waited for until they time out
  EXPECT_FALSE(held.release()) << "for_ranges waited for the busy pool";
  EXPECT_FALSE(elsewhere.load());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].load(), 1) << i;
}

TEST(Parallel, BackgroundRunsBesideTheCallerAndWaitRethrows) {
  std::atomic<int> ran{0};
  Background ok([&] { ++ran; });
  ok.wait();
  EXPECT_EQ(ran.load(), 1);
  ok.wait();  // a second wait returns at once
  EXPECT_EQ(ran.load(), 1);
  Background failing([] { throw std::runtime_error("job"); });
  EXPECT_THROW(failing.wait(), std::runtime_error);
  {
    Background dropped([&] { ++ran; });
  }  // the destructor waits for it
  EXPECT_EQ(ran.load(), 2);
}

TEST(Parallel, BackgroundNoPoolThreadTookRunsInWaitOnTheCaller) {
  if (pool_threads() == 0) GTEST_SKIP() << "no pool threads";
  PoolHeld held;
  std::thread::id ran_on;
  Background job([&] {
    ran_on = std::this_thread::get_id();
    // a nested for_ranges inside a job completes too
    std::atomic<std::size_t> total{0};
    for_ranges(
        100, [&](std::size_t b, std::size_t e) { total += e - b; }, 1);
    EXPECT_EQ(total.load(), 100u);
  });
  job.wait();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_FALSE(held.release());
}

}  // namespace
}  // namespace rapport::parallel
