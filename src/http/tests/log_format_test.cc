// The log line formatter writes exactly what spdlog's pattern formatter writes for its pattern:
// the same text (date, time, milliseconds, level, message, end of line) and the same coloured
// range (the level), over times across seconds, days and years, in the local time zone.
#include "http/log_format.h"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>

#include <chrono>
#include <string>

namespace rapport::http {
namespace {

struct Formatted {
  std::string text;
  std::size_t color_start = 0;
  std::size_t color_end = 0;
};

Formatted run(spdlog::formatter& f, const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t buf;
  f.format(msg, buf);
  return {std::string(buf.data(), buf.size()), msg.color_range_start, msg.color_range_end};
}

TEST(LineFormatterTest, WritesWhatThePatternFormatterWritesForItsPattern) {
  spdlog::pattern_formatter pattern(LineFormatter::kLogPattern);
  LineFormatter line;
  std::unique_ptr<spdlog::formatter> cloned = line.clone();
  using namespace std::chrono;
  // 2026-11-24 02:19:05 UTC, and times around it: within one second (the kept prefix), the next
  // second, the next day, the turn of a year, and the millisecond edges.
  const std::int64_t base_ms = 1795486745000;
  const std::int64_t offsets_ms[] = {0,
                                     1,
                                     999,
                                     1000,
                                     1001,
                                     59'999,
                                     86'400'000,
                                     3'600'123,
                                     -1,
                                     -1000,
                                     -86400000,
                                     31'536'000'000LL,
                                     7 * 86'400'000LL + 5};
  const spdlog::level::level_enum levels[] = {spdlog::level::info,     spdlog::level::warn,
                                              spdlog::level::err,      spdlog::level::debug,
                                              spdlog::level::critical, spdlog::level::trace};
  int n = 0;
  for (std::int64_t off : offsets_ms) {
    for (auto level : levels) {
      const std::string payload =
          "access 0123456789abcdef GET /api/v1/accounts/" + std::to_string(n++) + " 200 0.089ms";
      spdlog::details::log_msg msg(spdlog::source_loc{}, "", level, payload);
      msg.time = spdlog::log_clock::time_point(milliseconds(base_ms + off));
      const Formatted want = run(pattern, msg);
      const Formatted got = run(line, msg);
      EXPECT_EQ(got.text, want.text) << off;
      EXPECT_EQ(got.color_start, want.color_start) << off;
      EXPECT_EQ(got.color_end, want.color_end) << off;
      EXPECT_EQ(run(*cloned, msg).text, want.text) << off;
    }
  }
  // An empty message.
  spdlog::details::log_msg empty(spdlog::source_loc{}, "", spdlog::level::info, "");
  EXPECT_EQ(run(line, empty).text, run(pattern, empty).text);
}

}  // namespace
}  // namespace rapport::http
