// Test fixtures shared by the record layer's tests: the entities every RecordService needs
// (users and teams, which owner_id and team_id refer to), an administrator principal, a clock
// that stands still, and a record's text as rapidjson writes it from its stored row.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "access/access.h"
#include "base/clock.h"
#include "core/json.h"
#include "record/row_json.h"
#include "record/table.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record::fixtures {

// A clock that stands still at `now` until a test moves it.
class FixedClock : public Clock {
 public:
  Millis now_ms() const override { return now; }
  Millis now = 1795000000000;
};

// Adds the "user" and "team" entities that records' owner and team fields refer to.
inline void add_users_and_teams(schema::Registry& registry) {
  registry.add(schema::parse_entity(R"({"name":"user","title_field":"username","fields":[
      {"name":"username","type":"text"}]})",
                                    "t")
                   .value());
  registry.add(schema::parse_entity(R"({"name":"team","title_field":"name","fields":[
      {"name":"name","type":"text"}]})",
                                    "t")
                   .value());
}

// An administrator ("tester", user 0) calling through the API.
inline access::Principal admin_principal() {
  auto role = std::make_shared<access::Role>();
  role->is_admin = true;
  access::Principal p;
  p.role = role;
  p.user_id = 0;
  p.username = "tester";
  p.channel = "api";
  return p;
}

// The text of record `id` as write_record (rapidjson) writes it from the stored row for `p`
// with the fields `only` (comma list, empty: all) — what GET by id answered before it was
// written from the columns or copied from the record text cache.
inline std::string reference_text(storage::Store& store, const schema::Entity& e,
                                  const access::Principal& p, std::int64_t id,
                                  std::string_view only) {
  auto tx = store.read().value();
  const storage::SqlValue key[] = {id};
  auto rows =
      tx->query("SELECT " + select_list(e) + " FROM " + quote(e.name) + " WHERE \"id\" = ?", key)
          .value();
  if (rows.rows.size() != 1) return "(no such record)";
  std::set<std::string> wanted;
  for (std::string_view rest = only; !rest.empty();) {
    const size_t c = rest.find(',');
    wanted.emplace(rest.substr(0, c));
    rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
  }
  std::vector<char> shown;
  for (const auto& f : e.fields)
    shown.push_back(
        (wanted.empty() || wanted.count(f.name) || f.name == "id" || f.name == "version") &&
        access::field_access(p, e, f) != access::FieldAccess::kHidden);
  json::Buffer buf;
  json::Writer w(buf);
  write_record(w, e, shown, rows.rows[0]);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rapport::record::fixtures
