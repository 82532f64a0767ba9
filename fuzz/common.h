// Shared fixture for the fuzz targets: an entity with every field type and two principals.
#pragma once

#include "access/access.h"
#include "schema/schema.h"

namespace rapport::fuzz {

inline const schema::Entity& entity() {
  static const schema::Entity e =
      schema::parse_entity(R"({"name":"account","title_field":"name","fields":[
    {"name":"name","type":"text","indexed":true,"pattern":"^[^<>]*$","max_length":50},
    {"name":"notes","type":"long_text"},
    {"name":"n","type":"integer","indexed":true,"min":0,"max":100},
    {"name":"d","type":"decimal"},
    {"name":"price","type":"money","indexed":true},
    {"name":"vip","type":"boolean","indexed":true},
    {"name":"day","type":"date","indexed":true},
    {"name":"at","type":"datetime","indexed":true},
    {"name":"kind","type":"enum","options":["a","b"],"indexed":true},
    {"name":"tags","type":"multi_enum","options":["x","y"]},
    {"name":"phones","type":"phone_list"},
    {"name":"emails","type":"email_list"},
    {"name":"addr","type":"address"},
    {"name":"ref","type":"reference","reference":"account"},
    {"name":"extra","type":"json"},
    {"name":"secret","type":"text","sensitive":true,"indexed":true}]})",
                           "fuzz")
          .value();
  return e;
}

inline const access::Principal& sales() {
  static const access::Principal p = [] {
    access::Principal p;
    auto role = std::make_shared<access::Role>();
    role->entities["account"] = {true, access::Scope::kTeam, access::Scope::kOwn,
                                 access::Scope::kNone};
    p.role = role;
    p.user_id = 1;
    p.team_id = 2;
    return p;
  }();
  return p;
}

}  // namespace rapport::fuzz
