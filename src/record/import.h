// Import of CSV (RFC 4180; see core/csv.h) and vCard 4 files into any entity, through the
// normal record pipeline (validation, access, hooks, audit with channel "import", events).
//
// Columns map to fields by an explicit mapping ({"CSV header": "field"}), a saved
// import_template, or by themselves when a header equals a field's name or its en / zh-CN
// label. Cells are converted per field type (money "1,234.50 CNY", lists split on `;`,
// booleans true/false/是/否/1/0, dates 2024/3/5, enum labels). Rows go in batches of
// kImportBatchRows, one transaction each; each row runs inside a savepoint, so an invalid row is
// reported and skipped and never half-written while the valid rows of its batch land. A dry run
// does the same and rolls every batch back. Every run is an import_run record whose counts
// change after each batch (its "updated" event is the progress signal) and whose errors make the
// downloadable report.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "access/access.h"
#include "core/csv.h"
#include "record/service.h"
#include "schema/schema.h"

namespace rapport::record {

constexpr int kImportBatchRows = 5000;
// A CSV import of at least kImportDeferIndexesMinRows rows into a table holding fewer than
// 1/kImportDeferIndexesShare of that builds the table's non-unique indexes once after its last
// batch instead of row by row (Importer::run; bench/README.md "Import throughput", session 14).
constexpr int kImportDeferIndexesMinRows = 10000;
constexpr int kImportDeferIndexesShare = 10;
// Row errors kept in the answer and the stored report (the total is always counted).
constexpr int kMaxImportErrors = 10000;

enum class ImportFormat { kCsv, kVcard };

struct ImportRequest {
  std::string_view body;
  // When set, the body is read from this file (from its start) instead of `body`: a CSV body
  // piece by piece (csv::StreamReader), so it is never held whole in memory.
  std::FILE* body_file = nullptr;
  ImportFormat format = ImportFormat::kCsv;
  csv::Charset charset = csv::Charset::kUtf8;
  bool dry_run = true;
  std::string upsert;        // "", a unique text field (customer_code, external_id) or "email"
  std::string mapping_json;  // {"CSV header": "field" | "field.currency" | "address.city" | ""}
  std::string template_name;
  std::string file_name;
};

class Importer {
 public:
  explicit Importer(RecordService& records) : records_(records) {}

  // Runs the import; answers the JSON summary (see docs/API.md). Errors that concern the whole
  // file (encoding, header, mapping, limits, permissions) fail the call; row errors are listed.
  Result<std::string> run(const access::Principal& p, const schema::Entity& e,
                          const ImportRequest& req);
  // The error report of an import run the caller may read: CSV (UTF-8 with BOM) with the
  // columns row, field, code, message.
  Result<std::string> report_csv(const access::Principal& p, std::int64_t run_id);

 private:
  RecordService& records_;
};

// vCard 4 text (RFC 6350) of one record: FN from the title field; TEL, EMAIL from the first
// phone/email list; TITLE, ORG (department), BDAY, NOTE from fields named title, department,
// birthday, notes/description when the entity has them. `record` is the record's JSON.
std::string vcard_of(const schema::Entity& e, const json::Value& record);

}  // namespace rapport::record
