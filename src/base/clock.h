// Clock and id generation: injected so tests can control time and ids.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace rapport {

// Milliseconds since the Unix epoch, UTC.
using Millis = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis now_ms() const override;
};

// ISO 8601 UTC with milliseconds: 2026-11-22T15:04:05.123Z
std::string format_iso8601(Millis ms);
// Parses "YYYY-MM-DD" (date) or "YYYY-MM-DDThh:mm[:ss[.fff]](Z|±hh:mm)". False when malformed.
bool parse_iso8601(const std::string& text, Millis& out, bool date_only);

// 64-bit time-ordered ids: 42 bits of milliseconds since 2024-01-01, 13 bits of sequence and
// 8 bits of node: the generating process's number (Store::claim_node_id), which keeps the ids of
// several servers on one database apart. Beyond 8192 ids in one millisecond the sequence runs on
// into the next millisecond's. Thread-safe; monotonic within one process even if the wall clock
// steps back.
class IdGenerator {
 public:
  static constexpr int kNodeBits = 8;
  static constexpr int kNodes = 1 << kNodeBits;
  explicit IdGenerator(const Clock& clock) : clock_(clock) {}
  std::int64_t next();
  // 0 <= node < kNodes; set before the first next().
  void set_node(int node) { node_ = node & (kNodes - 1); }

 private:
  const Clock& clock_;
  std::atomic<std::int64_t> last_{0};  // milliseconds << 13 | sequence
  int node_ = 0;
};

}  // namespace rapport
