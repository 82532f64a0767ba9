// A fixed pool of worker threads for parallel::for_ranges (see parallel.h).
#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace rapport::parallel {

namespace {

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
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  // The chunks are claimed, not assigned: the caller runs every chunk no pool thread has taken
  // yet and then waits only for the ones in progress, so a pool thread busy with a long job (a
  // Background, another call's chunk) never holds this call up, and a call from inside the pool
  // cannot wait for itself. A job that starts after every chunk was claimed returns at once (the
  // state is shared, so it outlives this call).
  struct State {
    std::size_t n = 0, chunks = 0, step = 0;
    const std::function<void(std::size_t, std::size_t)>* fn = nullptr;
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::condition_variable cv;
    std::size_t done = 0;
    std::exception_ptr error;
  };
  auto st = std::make_shared<State>();
  st->n = n;
  st->chunks = chunks;
  st->step = (n + chunks - 1) / chunks;
  st->fn = &fn;
  auto claim = [](State& s) {
    for (;;) {
      const std::size_t c = s.next.fetch_add(1);
      if (c >= s.chunks) return;
      const std::size_t begin = std::min(s.n, c * s.step), end = std::min(s.n, begin + s.step);
      std::exception_ptr failed;
      try {
        (*s.fn)(begin, end);
      } catch (...) {
        failed = std::current_exception();
      }
      std::lock_guard lock(s.mu);
      if (failed && !s.error) s.error = failed;
      if (++s.done == s.chunks) s.cv.notify_one();
    }
  };
  for (std::size_t c = 1; c < chunks; ++c) p.post([st, claim] { claim(*st); });
  claim(*st);
  std::unique_lock lock(st->mu);
  st->cv.wait(lock, [&] { return st->done == st->chunks; });
  if (st->error) std::rethrow_exception(st->error);
}

struct Background::State {
  std::function<void()> job;
  std::atomic<bool> claimed{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  void run() {
    try {
      job();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
};

Background::Background(std::function<void()> job) : st_(std::make_shared<State>()) {
  st_->job = std::move(job);
  if (pool().size() == 0) return;  // wait() runs it
  pool().post([st = st_] {
    if (!st->claimed.exchange(true)) st->run();
  });
}

Background::~Background() {
  if (!st_) return;
  try {
    wait();
  } catch (...) {  // a destructor does not throw: wait() explicitly to see the job's error
  }
}

void Background::wait() {
  if (!st_) return;
  auto st = std::move(st_);
  if (!st->claimed.exchange(true)) {  // no pool thread has started it: run it here
    st->run();
  } else {
    std::unique_lock lock(st->mu);
    st->cv.wait(lock, [&] { return st->done; });
  }
  if (st->error) std::rethrow_exception(st->error);
}

}  // namespace rapport::parallel
