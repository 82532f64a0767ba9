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

// 64-bit time-ordered ids: 42 bits of milliseconds since 2024-01-01, 21 bits of sequence.
// Thread-safe; monotonic within one process even if the wall clock steps back.
class IdGenerator {
 public:
  explicit IdGenerator(const Clock& clock) : clock_(clock) {}
  std::int64_t next();

 private:
  const Clock& clock_;
  std::atomic<std::int64_t> last_{0};
};

}  // namespace rapport
