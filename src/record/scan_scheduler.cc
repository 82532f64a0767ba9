// The scheduled duplicate scan's thread (see scan_scheduler.h).
#include "record/scan_scheduler.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "record/duplicates.h"

namespace rapport::record {

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  if (text == "0") return std::chrono::milliseconds(0);
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data() || n <= 0) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  std::int64_t ms;
  if (unit == "ms")
    ms = 1;
  else if (unit == "s")
    ms = 1000;
  else if (unit == "m")
    ms = 60'000;
  else if (unit == "h")
    ms = 3'600'000;
  else if (unit == "d")
    ms = 86'400'000;
  else
    return std::nullopt;
  if (n > 366LL * 86'400'000 / ms) return std::nullopt;  // at most a year
  return std::chrono::milliseconds(n * ms);
}

ScanScheduler::ScanScheduler(RecordService& records, access::Principal system,
                             std::chrono::milliseconds every)
    : records_(records), system_(std::move(system)), every_(every) {}

ScanScheduler::~ScanScheduler() { stop(); }

void ScanScheduler::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
  records_.set_scan_trigger([this] { run_now(); });
}

void ScanScheduler::run_now() {
  {
    std::lock_guard lock(mu_);
    run_now_ = true;
  }
  cv_.notify_all();
}

void ScanScheduler::stop() {
  records_.set_scan_trigger(nullptr);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ScanScheduler::loop() {
  using std::chrono::milliseconds;
  const bool scheduled = every_.count() > 0;
  // Another server holding the lock, or a failing database: look again after this long.
  const milliseconds retry = scheduled ? std::min(every_, milliseconds(60'000)) : milliseconds(0);
  bool now = false;  // a run asked for by run_now: due whatever the last run
  for (;;) {
    std::optional<milliseconds> wait;  // nullopt: until run_now (nothing scheduled)
    if (now) {
      wait = milliseconds(0);
    } else if (scheduled) {
      wait = milliseconds(0);
      auto last = Deduper(records_).last_scheduled_scan();
      if (!last.ok()) {
        spdlog::warn("duplicate scan: cannot read the last run: {}", last.error().message);
        wait = retry;
      } else if (*last) {
        const Millis due = (*last)->started + every_.count();
        const Millis at = SystemClock().now_ms();
        if (due > at) wait = milliseconds(due - at);
      }
    }
    if (wait && wait->count() == 0) {
      auto run = Deduper(records_).scheduled_scan(system_, kBackgroundScanBatch, &cancel_,
                                                  now ? 0 : every_.count());
      now = false;
      if (!run.ok()) {
        spdlog::warn("duplicate scan failed: {}", run.error().message);
        if (scheduled) wait = retry;
      } else if (!*run) {
        if (scheduled) wait = retry;  // another server is scanning; it records its run
      } else if (!(*run)->error.empty()) {
        spdlog::warn("duplicate scan stopped: {}", (*run)->error);
        if (scheduled) wait = retry;
      } else {
        spdlog::info("duplicate scan: {} records scanned, {} pairs, {} added in {} ms (ran {}..{})",
                     (*run)->scanned, (*run)->pairs, (*run)->added,
                     (*run)->finished - (*run)->started, (*run)->started, (*run)->finished);
        if (scheduled) continue;  // the recorded start makes the next one due `every` later
      }
      if (!scheduled) wait.reset();
    }
    std::unique_lock lock(mu_);
    auto woken = [this] { return stopping_ || run_now_; };
    if (wait)
      cv_.wait_for(lock, *wait, woken);
    else
      cv_.wait(lock, woken);
    if (stopping_) return;
    now = run_now_;
    run_now_ = false;
  }
}

}  // namespace rapport::record
