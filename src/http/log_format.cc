// LineFormatter: the log line of kLogPattern with the date and time of day written once per
// second rather than field by field for every line.
#include "http/log_format.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/details/os.h>

#include <chrono>

namespace rapport::http {
namespace {

void two_digits(char* at, int n) {
  at[0] = static_cast<char>('0' + n / 10 % 10);
  at[1] = static_cast<char>('0' + n % 10);
}

}  // namespace

void LineFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using std::chrono::duration_cast;
  const auto since_epoch = msg.time.time_since_epoch();
  const auto secs = duration_cast<std::chrono::seconds>(since_epoch);
  const std::time_t now = static_cast<std::time_t>(secs.count());
  if (now != second_) {
    const std::tm tm = spdlog::details::os::localtime(now);
    const int year = tm.tm_year + 1900;
    two_digits(prefix_, year / 100);
    two_digits(prefix_ + 2, year % 100);
    prefix_[4] = '-';
    two_digits(prefix_ + 5, tm.tm_mon + 1);
    prefix_[7] = '-';
    two_digits(prefix_ + 8, tm.tm_mday);
    prefix_[10] = 'T';
    two_digits(prefix_ + 11, tm.tm_hour);
    prefix_[13] = ':';
    two_digits(prefix_ + 14, tm.tm_min);
    prefix_[16] = ':';
    two_digits(prefix_ + 17, tm.tm_sec);
    prefix_[19] = '.';
    second_ = now;
  }
  dest.append(prefix_, prefix_ + sizeof prefix_);
  const auto millis =
      static_cast<int>(duration_cast<std::chrono::milliseconds>(since_epoch - secs).count());
  char ms[4] = {static_cast<char>('0' + millis / 100), static_cast<char>('0' + millis / 10 % 10),
                static_cast<char>('0' + millis % 10), ' '};
  dest.append(ms, ms + sizeof ms);
  msg.color_range_start = dest.size();
  const auto& level = spdlog::level::to_string_view(msg.level);
  dest.append(level.data(), level.data() + level.size());
  msg.color_range_end = dest.size();
  dest.push_back(' ');
  dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
  const std::string_view eol = spdlog::details::os::default_eol;
  dest.append(eol.data(), eol.data() + eol.size());
}

std::unique_ptr<spdlog::formatter> LineFormatter::clone() const {
  return std::make_unique<LineFormatter>();
}

}  // namespace rapport::http
