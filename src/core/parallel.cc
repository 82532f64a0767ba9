// A fixed pool of worker threads for parallel::for_ranges (see parallel.h).
#include "core/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rapport::parallel {

namespace {

// Set on the pool's threads: a for_ranges called from a chunk runs serially there (waiting for
// the pool from inside the pool could wait forever).
thread_local bool t_in_pool = false;

class Pool {
 public:
  explicit Pool(std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  std::size_t size() const { return threads_.size(); }
  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    t_in_pool = true;
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

std::size_t configured_threads() {
  if (const char* env = std::getenv("RAPPORT_THREADS"); env && *env) {
    long n = std::strtol(env, nullptr, 10);
    if (n >= 1) return static_cast<std::size_t>(std::min(n, 8L)) - 1;
  }
  std::size_t hw = std::thread::hardware_concurrency();
  return hw <= 1 ? 0 : std::min<std::size_t>(hw - 1, 7);
}

Pool& pool() {
  static Pool p(configured_threads());
  return p;
}

}  // namespace

std::size_t pool_threads() { return pool().size(); }

void for_ranges(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                std::size_t min_chunk) {
  if (n == 0) return;
  Pool& p = pool();
  std::size_t chunks =
      std::min(p.size() + 1, std::max<std::size_t>(1, n / std::max<std::size_t>(min_chunk, 1)));
  if (chunks <= 1 || t_in_pool) {
    fn(0, n);
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::size_t left = chunks - 1;
  std::exception_ptr error;
  auto run = [&](std::size_t begin, std::size_t end) {
    try {
      fn(begin, end);
    } catch (...) {
      std::lock_guard lock(mu);
      if (!error) error = std::current_exception();
    }
  };
  const std::size_t step = (n + chunks - 1) / chunks;
  for (std::size_t c = 1; c < chunks; ++c) {
    const std::size_t begin = std::min(n, c * step), end = std::min(n, begin + step);
    p.post([&, begin, end] {
      run(begin, end);
      std::lock_guard lock(mu);
      if (--left == 0) cv.notify_one();
    });
  }
  run(0, std::min(n, step));
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return left == 0; });
  if (error) std::rethrow_exception(error);
}

}  // namespace rapport::parallel
