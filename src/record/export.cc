// Exports beyond CSV: Excel workbooks (libxlsxwriter) and vCard 4 (RFC 6350). Same list query,
// scope and field permissions as export.csv (service.cc). vCards stream like CSV; a workbook is
// a zip that is only complete at its end, so it is built in a temporary file first (its rows
// never all in memory) and then sent from that file.
#include <unistd.h>
#include <xlsxwriter.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "record/import.h"
#include "record/service.h"
#include "record/table.h"

namespace rapport::record {

using schema::Field;
using schema::FieldType;

namespace {

// A temporary file removed when this goes out of scope.
struct TempFile {
  std::string path;
  TempFile() {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/rapport-export-XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd >= 0) {
      close(fd);
      path = tmpl;
    }
  }
  ~TempFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

}  // namespace

Result<RecordService::ExportBody> RecordService::export_xlsx(const access::Principal& p,
                                                             const schema::Entity& e, ListParams lp,
                                                             int max_rows) {
  RP_ASSIGN(auto cols, export_columns(p, e, lp.fields));
  auto file = std::make_shared<TempFile>();
  if (file->path.empty()) return make_error(Errc::kInternal, "cannot create a temporary file");
  lxw_workbook_options opts{};
  opts.constant_memory = LXW_TRUE;  // rows go straight to disk: exports of any size
  std::unique_ptr<lxw_workbook, void (*)(lxw_workbook*)> wb(
      workbook_new_opt(file->path.c_str(), &opts), [](lxw_workbook* w) {
        if (w) workbook_close(w);
      });
  if (!wb) return make_error(Errc::kInternal, "cannot start the workbook");
  std::string sheet_name = e.label_plural.en.empty() ? e.plural : e.label_plural.en;
  if (sheet_name.size() > 31) sheet_name.resize(31);
  lxw_worksheet* ws = workbook_add_worksheet(wb.get(), sheet_name.c_str());
  lxw_format* bold = workbook_add_format(wb.get());
  format_set_bold(bold);
  for (size_t c = 0; c < cols.size(); ++c)
    worksheet_write_string(ws, 0, static_cast<lxw_col_t>(c), cols[c]->name.c_str(), bold);
  worksheet_freeze_panes(ws, 1, 0);
  lxw_row_t r = 0;
  RP_TRY(export_each(p, e, lp, [&](const json::Value& item) -> Status {
    if (r >= static_cast<lxw_row_t>(max_rows))
      return make_error(Errc::kTooLarge,
                        "more than " + std::to_string(max_rows) +
                            " rows do not fit in one Excel sheet; narrow the filter or export CSV",
                        "filter");
    ++r;
    for (size_t c = 0; c < cols.size(); ++c) {
      const Field& f = *cols[c];
      const json::Value* v = json::member(item, f.name);
      if (!v || v->IsNull()) continue;
      auto col = static_cast<lxw_col_t>(c);
      if ((f.type == FieldType::kInteger || f.type == FieldType::kDecimal) && v->IsNumber()) {
        worksheet_write_number(ws, r, col, v->GetDouble(), nullptr);
      } else if (f.type == FieldType::kBoolean && v->IsBool()) {
        worksheet_write_boolean(ws, r, col, v->GetBool(), nullptr);
      } else {
        std::string t = export_text(f, v);
        // Strings are never formulas in a workbook; only the cell limit applies.
        if (t.size() > 32767) t.resize(32767);
        worksheet_write_string(ws, r, col, t.c_str(), nullptr);
      }
    }
    return {};
  }));
  lxw_error err = workbook_close(wb.release());
  if (err != LXW_NO_ERROR)
    return make_error(Errc::kInternal,
                      std::string("writing the workbook failed: ") + lxw_strerror(err));
  auto in = std::make_shared<std::ifstream>(file->path, std::ios::binary);
  if (!*in) return make_error(Errc::kInternal, "cannot read the workbook back");
  // The file is removed when the body (holding `file`) is destroyed.
  return ExportBody([file, in](const ExportWriter& write) -> Status {
    std::string piece(64 * 1024, '\0');
    while (*in) {
      in->read(piece.data(), static_cast<std::streamsize>(piece.size()));
      const auto n = static_cast<std::size_t>(in->gcount());
      if (n == 0) break;
      if (!write(std::string_view(piece.data(), n)))
        return make_error(Errc::kBadRequest, "the export's receiver went away; export stopped");
    }
    if (in->bad()) return make_error(Errc::kInternal, "reading the workbook back failed");
    return {};
  });
}

Result<RecordService::ExportBody> RecordService::export_vcard(const access::Principal& p,
                                                              const schema::Entity& e,
                                                              ListParams lp) {
  bool has_contact_data = false;
  for (const auto& f : e.fields)
    if (f.type == FieldType::kPhoneList || f.type == FieldType::kEmailList) has_contact_data = true;
  if (!has_contact_data)
    return make_error(Errc::kBadRequest, e.plural + " have no phones or emails to put in vCards");
  return export_text_body(
      p, e, std::move(lp), std::string(),
      [&e](std::string& out, const json::Value& item) { out += vcard_of(e, item); });
}

}  // namespace rapport::record
