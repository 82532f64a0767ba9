// Permission decisions: entity scopes, record scope, field access (R-INT-2).
#include <gtest/gtest.h>

#include "access/access.h"
#include "access/auth.h"

namespace rapport::access {
namespace {

Principal principal(const char* permissions, bool admin = false, std::int64_t user = 1,
                    std::int64_t team = 7) {
  json::Document d;
  d.Parse(permissions);
  auto role = parse_role_permissions(d);
  EXPECT_TRUE(role.ok()) << (role.ok() ? "" : role.error().message);
  auto r = std::make_shared<Role>(role.ok() ? role.value() : Role{});
  r->is_admin = admin;
  Principal p;
  p.user_id = user;
  p.team_id = team;
  p.role = r;
  return p;
}

schema::Entity account() {
  schema::Entity e;
  e.name = "account";
  schema::Field name;
  name.name = "name";
  schema::Field bank;
  bank.name = "bank_account";
  bank.sensitive = true;
  e.fields = {name, bank};
  return e;
}

TEST(Access, ScopesPerOperation) {
  auto p = principal(
      R"({"entities":{"account":{"create":true,"read":"team","update":"own","delete":"none"}}})");
  EXPECT_TRUE(can_create(p, "account"));
  EXPECT_EQ(scope_for(p, "account", Op::kRead), Scope::kTeam);
  EXPECT_EQ(scope_for(p, "account", Op::kUpdate), Scope::kOwn);
  EXPECT_EQ(scope_for(p, "account", Op::kDelete), Scope::kNone);
  EXPECT_EQ(scope_for(p, "contact", Op::kRead), Scope::kNone);  // not granted
  EXPECT_FALSE(can_create(p, "contact"));
}

TEST(Access, WildcardGrantAppliesToUnlistedEntities) {
  auto p = principal(R"({"entities":{"*":{"read":"all"},"role":{"read":"none"}}})");
  EXPECT_EQ(scope_for(p, "contact", Op::kRead), Scope::kAll);
  EXPECT_EQ(scope_for(p, "role", Op::kRead), Scope::kNone);
}

TEST(Access, AdministratorMayDoEverything) {
  auto p = principal("{}", true);
  EXPECT_EQ(scope_for(p, "anything", Op::kDelete), Scope::kAll);
  auto e = account();
  EXPECT_EQ(field_access(p, e, e.fields[1]), FieldAccess::kWrite);
}

TEST(Access, RecordScope) {
  auto p = principal("{}", false, /*user=*/1, /*team=*/7);
  EXPECT_TRUE(in_scope(p, Scope::kOwn, 1, 99));
  EXPECT_FALSE(in_scope(p, Scope::kOwn, 2, 7));
  EXPECT_TRUE(in_scope(p, Scope::kTeam, 2, 7));
  EXPECT_TRUE(in_scope(p, Scope::kTeam, 1, 0));
  EXPECT_FALSE(in_scope(p, Scope::kTeam, 2, 8));
  EXPECT_TRUE(in_scope(p, Scope::kAll, 2, 8));
  EXPECT_FALSE(in_scope(p, Scope::kNone, 1, 7));
  auto teamless = principal("{}", false, 1, 0);
  EXPECT_FALSE(in_scope(teamless, Scope::kTeam, 2, 0));  // no team: only own records
}

TEST(Access, SensitiveFieldsHiddenUnlessGranted) {
  auto e = account();
  auto plain = principal(R"({"entities":{"account":{"read":"all"}}})");
  EXPECT_EQ(field_access(plain, e, e.fields[0]), FieldAccess::kWrite);
  EXPECT_EQ(field_access(plain, e, e.fields[1]), FieldAccess::kHidden);
  auto finance = principal(R"({"fields":{"account.bank_account":"read","account.name":"hidden"}})");
  EXPECT_EQ(field_access(finance, e, e.fields[1]), FieldAccess::kRead);
  EXPECT_EQ(field_access(finance, e, e.fields[0]), FieldAccess::kHidden);
}

TEST(Access, FailingPermissionDocumentsNameTheKey) {
  json::Document d;
  d.Parse(R"({"entities":{"account":{"read":"everyone"}}})");
  auto r = parse_role_permissions(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
  EXPECT_NE(r.error().message.find("account.read"), std::string::npos);
  d.Parse(R"({"fields":{"account.bank_account":"maybe"}})");
  ASSERT_FALSE(parse_role_permissions(d).ok());
  d.Parse(R"({"roles":{}})");
  ASSERT_FALSE(parse_role_permissions(d).ok());
  Principal nobody;  // no role at all
  EXPECT_EQ(scope_for(nobody, "account", Op::kRead), Scope::kNone);
}

// Stored token hashes are the hex of BLAKE2b-256 (libsodium's generichash) of the token: the
// principal cache keys on the digest's bytes, the tables on this hex; both must stay one hash.
TEST(Access, TokenHashIsTheHexOfItsDigest) {
  const std::string token = "rpt_0123456789abcdef";
  EXPECT_EQ(token_hash(token), "9ee33e09b030e3afb9ef261127bf531ed8bcaddf99d918a3d2e55a74738e834d");
  EXPECT_EQ(token_hash(token_digest(token)), token_hash(token));
  EXPECT_NE(token_digest(token), token_digest("rpt_0123456789abcdeg"));
}

}  // namespace
}  // namespace rapport::access
