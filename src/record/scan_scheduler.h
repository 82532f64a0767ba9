// The scheduled duplicate scan (rapport serve --scan-every): a thread of its own that runs
// Deduper::scheduled_scan every `every`, counted from the start of the last recorded run (on any
// server of the database), so a restart does not rescan early. Requests never wait for it: it
// reads and writes in short batches (Deduper::scan_batch) like any other client.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "access/access.h"
#include "record/service.h"

namespace rapport::record {

// "24h", "90m", "30s", "1d", "500ms" or "0" (off) → milliseconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

class ScanScheduler {
 public:
  // `system` owns the queued pairs (an administrator principal).
  ScanScheduler(RecordService& records, access::Principal system, std::chrono::milliseconds every);
  ~ScanScheduler();  // stop()
  ScanScheduler(const ScanScheduler&) = delete;
  ScanScheduler& operator=(const ScanScheduler&) = delete;

  // Starts the thread and registers run_now as the RecordService's scan trigger. With `every`
  // 0 nothing runs on a schedule, only on run_now.
  void start();
  void stop();  // ends a run under way after its current batch (recorded as interrupted)
  // "Scan now": the next run starts at once, whatever its schedule (a run under way finishes
  // first). It is recorded like any scheduled run, so GET /duplicates/scan shows its progress
  // and totals. With another server of the database scanning, that server's run counts.
  void run_now();

 private:
  void loop();

  RecordService& records_;
  access::Principal system_;
  std::chrono::milliseconds every_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;            // guarded by mu_
  bool run_now_ = false;             // guarded by mu_
  std::atomic<bool> cancel_{false};  // tells a run under way to stop after its batch
  std::thread thread_;
};

}  // namespace rapport::record
