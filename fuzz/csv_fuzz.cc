// Fuzz target: CSV imports — charset handling (UTF-8 validation, GB18030 conversion) and the
// RFC 4180 reader. Records written back with quoting must read back the same.
#include <cstdint>
#include <string>
#include <vector>

#include "core/csv.h"

namespace {

std::string write_back(const std::vector<std::vector<std::string>>& rows, char delim) {
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) out += delim;
      out += '"';
      for (char c : row[i]) {
        if (c == '"') out += '"';
        out += c;
      }
      out += '"';
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rapport;
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  for (auto cs : {csv::Charset::kUtf8, csv::Charset::kGb18030}) {
    auto text = csv::to_utf8(raw, cs);
    if (!text.ok()) continue;
    if (csv::invalid_utf8_offset(*text) != std::string_view::npos) __builtin_trap();
    csv::Reader reader(*text);
    char delim = reader.delimiter();
    if (delim != ',' && delim != ';' && delim != '\t') __builtin_trap();
    auto rows = csv::parse_all(*text, delim);
    if (!rows.ok()) continue;
    auto again = csv::parse_all(write_back(*rows, delim), delim);
    if (!again.ok() || *again != *rows) __builtin_trap();
  }
  return 0;
}
