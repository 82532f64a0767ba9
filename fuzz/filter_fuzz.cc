// Fuzz target: the JSON filter language, sort and cursor parsing (GET /api/v1/{entity}?filter=).
#include <cstdint>
#include <string>

#include "common.h"
#include "record/query.h"

namespace {
class Dialect : public rapport::storage::Dialect {
 public:
  std::string column_type(rapport::storage::ColumnType) const override { return "TEXT"; }
  std::vector<std::string> fts_create(std::string_view) const override { return {}; }
  std::string ilike() const override { return "LIKE"; }
  std::string fts_condition(std::string_view, std::string_view,
                            std::vector<rapport::storage::SqlValue>&) const override {
    return "1 = 0";
  }
  std::string fts_key_counts(std::string_view, std::string_view, int,
                             std::vector<rapport::storage::SqlValue>&) const override {
    return {};
  }
  std::string fts_page(std::string_view, std::string_view, int,
                       const rapport::storage::FtsPosition*, int,
                       std::vector<rapport::storage::SqlValue>&) const override {
    return {};
  }
  std::string fts_window_end(std::string_view, std::string_view, int,
                             const rapport::storage::FtsPosition*, int,
                             std::vector<rapport::storage::SqlValue>&) const override {
    return {};
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rapport;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const Dialect dialect;
  auto doc = json::parse(text);
  if (doc.ok()) {
    std::vector<storage::SqlValue> params;
    auto sql = record::compile_filter(*doc, fuzz::entity(), fuzz::sales(), dialect, params);
    if (sql.ok()) {
      // Every placeholder has a bound value; no value text leaks into the SQL.
      size_t marks = 0;
      for (char c : *sql) marks += c == '?';
      if (marks != params.size()) __builtin_trap();
    }
  }
  auto keys = record::parse_sort(text, fuzz::entity(), fuzz::sales());
  if (keys.ok()) {
    auto values = record::decode_cursor(text, keys->size());
    if (values.ok()) {
      std::vector<storage::SqlValue> params;
      record::after_cursor(*keys, *values, params);
    }
  }
  return 0;
}
