// Who is asking and what they may do: principals, roles with per-entity CRUD scopes and
// per-field permissions. Pure decisions here; loading users/roles from the store is in auth.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "core/json.h"
#include "schema/schema.h"

namespace rapport::access {

// How far a permission reaches: no records, the user's own, their team's, or all.
enum class Scope { kNone = 0, kOwn = 1, kTeam = 2, kAll = 3 };
enum class Op { kCreate, kRead, kUpdate, kDelete };
// What a role may do with one field.
enum class FieldAccess { kHidden = 0, kRead = 1, kWrite = 2 };

const char* scope_name(Scope s);
std::optional<Scope> parse_scope(std::string_view s);

struct EntityGrant {
  bool create = false;
  Scope read = Scope::kNone, update = Scope::kNone, del = Scope::kNone;
};

// A role's permissions, parsed once from the role record's `permissions` JSON:
//   {"entities": {"account": {"create": true, "read": "all", "update": "team", "delete": "own"},
//                 "*": {…default for entities not listed…}},
//    "fields": {"account.bank_account": "read" | "write" | "hidden"}}
// Immutable after parsing; shared between requests.
struct Role {
  std::int64_t id = 0;
  std::string name;
  bool is_admin = false;
  std::map<std::string, EntityGrant, std::less<>> entities;
  std::map<std::string, FieldAccess, std::less<>> fields;  // "entity.field"
};

Result<Role> parse_role_permissions(const json::Value& permissions);
// Checks a permissions document without keeping it; errors name the offending key.
Status validate_permissions(const json::Value& permissions);

// The authenticated caller of one request.
struct Principal {
  std::int64_t user_id = 0;
  std::string username;
  std::string display_name;
  std::int64_t team_id = 0;
  std::shared_ptr<const Role> role;
  std::string channel = "api";  // "ui" (session), "api" (token), "import", "system"
  std::string csrf_token;       // for session principals
  bool is_admin() const { return role && role->is_admin; }
};

// The process acting for itself (command-line tools, background work such as marking import runs
// indexed): user "system", an administrator role named "system", channel "system".
Principal system_principal();

// Record-level scope the principal has for `op` on `entity`.
Scope scope_for(const Principal& p, std::string_view entity, Op op);
bool can_create(const Principal& p, std::string_view entity);
// Whether a record with these owner/team ids is within `scope` for the principal.
bool in_scope(const Principal& p, Scope scope, std::int64_t owner_id, std::int64_t team_id);
FieldAccess field_access(const Principal& p, const schema::Entity& e, const schema::Field& f);

}  // namespace rapport::access
