// Shared full-text helpers of the SQLite and PostgreSQL backends.
#include "storage/text_search.h"

#include <algorithm>

namespace rapport::storage::detail {

bool valid_identifier(std::string_view name) {
  if (name.empty() || name.size() > 58) return false;  // room for "_fts" within 63 bytes
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  if (!first(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return first(c) || (c >= '0' && c <= '9'); });
}

Result<std::string> fts_table(std::string_view entity) {
  if (!valid_identifier(entity)) {
    return make_error(Errc::kInternal,
                      "invalid entity name for full-text index: '" + std::string(entity) + "'");
  }
  return "\"" + std::string(entity) + "_fts\"";
}

std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::vector<std::string_view> split_terms(std::string_view q) {
  std::vector<std::string_view> terms;
  std::size_t start = 0;
  std::size_t i = 0;
  auto flush = [&](std::size_t end) {
    if (end > start) terms.push_back(q.substr(start, end - start));
  };
  while (i < q.size()) {
    std::size_t sep = 0;
    char c = q[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      sep = 1;
    } else if (q.substr(i, 3) == "\xE3\x80\x80") {
      sep = 3;
    }
    if (sep != 0) {
      flush(i);
      i += sep;
      start = i;
    } else {
      ++i;
    }
  }
  flush(q.size());
  return terms;
}

std::string like_pattern(std::string_view term) {
  std::string out = "%";
  for (char c : term) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  return out;
}

}  // namespace rapport::storage::detail
