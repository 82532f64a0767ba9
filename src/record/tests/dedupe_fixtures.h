// Test fixtures for duplicate detection: minimal contact and account entities and the match
// profiles the accounts module declares for them (modules/accounts/dedupe.cc).
#pragma once

#include "record/dedupe.h"
#include "schema/schema.h"

namespace rapport::record::dedupe::fixtures {

inline schema::Entity contact_entity() {
  return schema::parse_entity(R"({"name":"contact","title_field":"full_name","fields":[
      {"name":"full_name","type":"text"},
      {"name":"account_id","type":"reference","reference":"account"},
      {"name":"phones","type":"phone_list"},{"name":"emails","type":"email_list"}]})",
                              "t")
      .value();
}
inline schema::Entity account_entity() {
  return schema::parse_entity(R"({"name":"account","title_field":"name","fields":[
      {"name":"name","type":"text"},{"name":"tax_id","type":"text"},
      {"name":"website","type":"text"},{"name":"city","type":"text"},
      {"name":"address","type":"address"},
      {"name":"phones","type":"phone_list"},{"name":"emails","type":"email_list"}]})",
                              "t")
      .value();
}
inline Profile person() {
  Profile p;
  p.kind = Profile::Kind::kPerson;
  p.name_field = "full_name";
  p.company_field = "account_id";
  return p;
}
inline Profile organisation() {
  Profile p;
  p.kind = Profile::Kind::kOrganisation;
  p.name_field = "name";
  p.tax_id_field = "tax_id";
  p.website_field = "website";
  p.city_field = "city";
  p.address_field = "address";
  return p;
}

}  // namespace rapport::record::dedupe::fixtures
