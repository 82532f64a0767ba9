// A list page's records written as JSON text straight from the columns of their rows
// (Tx::each_row), without a DOM or rapidjson's writer: each shown field's key is escaped once per
// page, values are appended to one pre-sized string. The text is exactly what write_json and
// write_record give for the same row and the same shown fields (tests/row_json_test.cc compares
// them for every field kind): hidden fields are never written, because only the shown fields'
// columns are read at all.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record {

// Appends `s` as a JSON string (quotes included), escaped as rapidjson's Writer escapes it:
// '"', '\\' and the control characters; other bytes as they are.
void append_json_string(std::string& out, std::string_view s);

// Writes the record of `row` (a select_list row) with rapidjson's writer: the fields flagged in
// `shown`, then deleted_at and merged_into when set. Single records (GET by id, phone lookup) use
// it; RecordJson gives the same text for list pages.
void write_record(json::Writer& w, const schema::Entity& e, const std::vector<char>& shown,
                  const std::vector<storage::SqlValue>& row);

class RecordJson {
 public:
  // `shown`: one flag per field of `e` (shown_fields), fixed for the page.
  RecordJson(const schema::Entity& e, const std::vector<char>& shown);
  // Appends the record of `row` (a select_list row): its shown fields, then deleted_at and
  // merged_into when set.
  void append(std::string& out, std::span<const storage::SqlView> row) const;

 private:
  struct Part {
    const schema::Field* field;
    size_t col;
    std::string key;  // `"name":`, escaped
  };
  std::vector<Part> parts_;
  size_t internal_col_;  // deleted_at; merged_into after it
};

}  // namespace rapport::record
