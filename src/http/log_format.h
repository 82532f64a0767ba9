// The server's log line, "2026-11-24T02:19:05.941 info access … 200 0.089ms": spdlog's pattern
// "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v" (local time, milliseconds, the level coloured on a terminal)
// written without the pattern formatter's chain of per-field formatters — the access log writes
// one such line per request.
#pragma once

#include <spdlog/formatter.h>

#include <ctime>
#include <memory>

namespace rapport::http {

// Text of kLogPattern, byte for byte (http/tests/log_format_test.cc compares the two). Like
// spdlog's formatters, one instance is used by one sink under that sink's lock.
class LineFormatter final : public spdlog::formatter {
 public:
  static constexpr const char* kLogPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  // "YYYY-mm-ddTHH:MM:SS." of the second last formatted (local time), kept until it changes.
  std::time_t second_ = -1;
  char prefix_[20] = {};
};

}  // namespace rapport::http
