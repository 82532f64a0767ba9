// Test fixtures shared by the record layer's tests: the entities every RecordService needs
// (users and teams, which owner_id and team_id refer to), an administrator principal and a
// clock that stands still.
#pragma once

#include <memory>

#include "access/access.h"
#include "base/clock.h"
#include "schema/schema.h"

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

}  // namespace rapport::record::fixtures
