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
  if (every_.count() <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void ScanScheduler::stop() {
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
  // Another server holding the lock, or a failing database: look again after this long.
  const milliseconds retry = std::min(every_, milliseconds(60'000));
  for (;;) {
    milliseconds wait(0);
    auto last = Deduper(records_).last_scheduled_scan();
    if (!last.ok()) {
      spdlog::warn("duplicate scan: cannot read the last run: {}", last.error().message);
      wait = retry;
    } else if (*last) {
      const Millis due = (*last)->started + every_.count();
      const Millis now = SystemClock().now_ms();
      if (due > now) wait = milliseconds(due - now);
    }
    if (wait.count() == 0) {
      auto run =
          Deduper(records_).scheduled_scan(system_, kBackgroundScanBatch, &cancel_, every_.count());
      if (!run.ok()) {
        spdlog::warn("duplicate scan failed: {}", run.error().message);
        wait = retry;
      } else if (!*run) {
        wait = retry;  // another server is scanning; it records its run
      } else if (!(*run)->error.empty()) {
        spdlog::warn("duplicate scan stopped: {}", (*run)->error);
        wait = retry;
      } else {
        spdlog::info("duplicate scan: {} records scanned, {} pairs, {} added in {} ms (ran {}..{})",
                     (*run)->scanned, (*run)->pairs, (*run)->added,
                     (*run)->finished - (*run)->started, (*run)->started, (*run)->finished);
        continue;  // the recorded start makes the next one due `every` later
      }
    }
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, wait, [this] { return stopping_; })) return;
  }
}

}  // namespace rapport::record
