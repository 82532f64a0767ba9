// System clock, ISO 8601 formatting/parsing and the time-ordered id generator.
#include "base/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace rapport {

Millis SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_iso8601(Millis ms) {
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = static_cast<int>(ms - static_cast<Millis>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

namespace {
bool digits(const std::string& s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}
int days_in_month(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}
}  // namespace

bool parse_iso8601(const std::string& s, Millis& out, bool date_only) {
  int y, mo, d, h = 0, mi = 0, sec = 0, msec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
  size_t pos = 10;
  int offset_min = 0;
  if (date_only) {
    if (s.size() != 10) return false;
  } else {
    if (s.size() < 16 || (s[10] != 'T' && s[10] != ' ') || !digits(s, 11, 2, h) || s[13] != ':' ||
        !digits(s, 14, 2, mi))
      return false;
    pos = 16;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, sec)) return false;
      pos += 3;
      if (pos < s.size() && s[pos] == '.') {
        size_t start = ++pos;
        int val = 0, n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (n < 3) val = val * 10 + (s[pos] - '0'), ++n;
          ++pos;
        }
        if (pos == start) return false;
        while (n < 3) val *= 10, ++n;
        msec = val;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return false;
    if (pos == s.size()) return false;  // a datetime must say its offset
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
    } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
      int oh, om;
      if (!digits(s, pos + 1, 2, oh) || !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
        return false;
      offset_min = (s[pos] == '+' ? 1 : -1) * (oh * 60 + om);
    } else {
      return false;
    }
  }
  // days from civil (Howard Hinnant's algorithm)
  int yy = y - (mo <= 2);
  int era = (yy >= 0 ? yy : yy - 399) / 400;
  unsigned yoe = static_cast<unsigned>(yy - era * 400);
  unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  long long days = static_cast<long long>(era) * 146097 + static_cast<long long>(doe) - 719468;
  out = ((days * 86400 + h * 3600LL + mi * 60LL + sec) - offset_min * 60LL) * 1000 + msec;
  return true;
}

std::int64_t IdGenerator::next() {
  constexpr std::int64_t kEpoch = 1704067200000;  // 2024-01-01T00:00:00Z
  std::int64_t candidate = (clock_.now_ms() - kEpoch) << (21 - kNodeBits);
  std::int64_t prev = last_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t next = candidate > prev ? candidate : prev + 1;
    if (last_.compare_exchange_weak(prev, next, std::memory_order_relaxed))
      return next << kNodeBits | node_;
  }
}

}  // namespace rapport
