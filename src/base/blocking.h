// Waits that are not work. A worker pool of a fixed width runs request handlers that sometimes
// wait for something other than CPU — a write waiting for the group commit that makes it
// durable. A pool registers a BlockingObserver on its threads; code about to wait brackets the
// wait with a ScopedBlocking, and the pool may then run another thread meanwhile, so waiting
// handlers do not keep the others from running (nor bound how many writes share one commit).
// Without an observer on the thread (tests, command-line tools) ScopedBlocking does nothing.
#pragma once

namespace rapport {

class BlockingObserver {
 public:
  virtual ~BlockingObserver() = default;
  virtual void enter() = 0;  // the calling thread is about to wait
  virtual void leave() = 0;  // …and has stopped waiting
};

namespace detail {
inline thread_local BlockingObserver* blocking_observer = nullptr;
}

// The observer of the calling thread's waits (nullptr: none).
inline void set_blocking_observer(BlockingObserver* o) { detail::blocking_observer = o; }

class ScopedBlocking {
 public:
  ScopedBlocking() : observer_(detail::blocking_observer) {
    if (observer_) observer_->enter();
  }
  ~ScopedBlocking() {
    if (observer_) observer_->leave();
  }
  ScopedBlocking(const ScopedBlocking&) = delete;
  ScopedBlocking& operator=(const ScopedBlocking&) = delete;

 private:
  BlockingObserver* observer_;
};

}  // namespace rapport
