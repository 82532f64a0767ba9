// Phone index maintenance (see phone_index.h).
#include "record/phone_index.h"

#include <algorithm>

#include "core/json.h"
#include "core/phone.h"
#include "record/table.h"

namespace rapport::record {

using schema::FieldType;
using storage::SqlValue;

bool has_phone_list(const schema::Entity& e) {
  return std::any_of(e.fields.begin(), e.fields.end(),
                     [](const schema::Field& f) { return f.type == FieldType::kPhoneList; });
}

void append_phone_keys(const SqlValue& stored, std::string_view region,
                       std::vector<std::string>& out) {
  if (storage::is_null(stored)) return;
  auto doc = json::parse(as_text(stored));
  if (!doc.ok() || !doc->IsArray()) return;
  for (const auto& entry : doc->GetArray()) {
    const json::Value* v = entry.IsString() ? &entry : json::member(entry, "value");
    if (!v || !v->IsString()) continue;
    auto e164 = phone::to_e164(std::string_view(v->GetString(), v->GetStringLength()), region);
    if (e164.ok()) out.push_back(std::move(e164).value());
  }
}

std::vector<std::string> phone_keys(const schema::Entity& e, const std::vector<SqlValue>& row,
                                    std::string_view region) {
  std::vector<std::string> out;
  size_t col = 0;
  for (const auto& f : e.fields) {
    if (f.type == FieldType::kPhoneList && col < row.size())
      append_phone_keys(row[col], region, out);
    col += column_count(f);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status unindex_phones(storage::Tx& tx, const schema::Entity& e, std::int64_t id) {
  SqlValue p[] = {e.name, id};
  RP_TRY(tx.exec("DELETE FROM phone_index WHERE entity = ? AND record_id = ?", p));
  return {};
}

Status index_phones(storage::Tx& tx, const schema::Entity& e, std::int64_t id,
                    const std::vector<SqlValue>& row, std::string_view region, bool fresh,
                    const SqlValue& account) {
  if (!fresh) RP_TRY(unindex_phones(tx, e, id));
  for (auto& key : phone_keys(e, row, region)) {
    SqlValue p[] = {std::move(key), e.name, id, account};
    RP_TRY(tx.exec(
        "INSERT INTO phone_index (e164, entity, record_id, account_id) VALUES (?, ?, ?, ?)", p));
  }
  return {};
}

}  // namespace rapport::record
