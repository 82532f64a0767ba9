// Permission decisions: entity scopes and field access, from parsed role documents.
#include "access/access.h"

namespace rapport::access {

const char* scope_name(Scope s) {
  switch (s) {
    case Scope::kNone:
      return "none";
    case Scope::kOwn:
      return "own";
    case Scope::kTeam:
      return "team";
    case Scope::kAll:
      return "all";
  }
  return "none";
}

std::optional<Scope> parse_scope(std::string_view s) {
  if (s == "none") return Scope::kNone;
  if (s == "own") return Scope::kOwn;
  if (s == "team") return Scope::kTeam;
  if (s == "all") return Scope::kAll;
  return std::nullopt;
}

namespace {
Result<Scope> scope_member(const json::Value& grant, const char* key, const std::string& where) {
  const json::Value* v = json::member(grant, key);
  if (!v) return Scope::kNone;
  if (v->IsBool()) return v->GetBool() ? Scope::kAll : Scope::kNone;
  if (v->IsString())
    if (auto s = parse_scope(v->GetString())) return *s;
  return make_error(Errc::kValidation,
                    "permissions: " + where + "." + key + " must be none, own, team or all",
                    "permissions");
}
}  // namespace

Result<Role> parse_role_permissions(const json::Value& doc) {
  Role role;
  if (doc.IsNull()) return role;
  if (!doc.IsObject())
    return make_error(Errc::kValidation, "permissions must be an object", "permissions");
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string_view key = it->name.GetString();
    if (key != "entities" && key != "fields")
      return make_error(Errc::kValidation, "permissions: unknown key " + std::string(key),
                        "permissions");
  }
  if (const json::Value* ents = json::member(doc, "entities")) {
    if (!ents->IsObject())
      return make_error(Errc::kValidation, "permissions.entities must be an object", "permissions");
    for (auto it = ents->MemberBegin(); it != ents->MemberEnd(); ++it) {
      std::string name = it->name.GetString();
      if (!it->value.IsObject())
        return make_error(Errc::kValidation, "permissions.entities." + name + " must be an object",
                          "permissions");
      EntityGrant g;
      RP_ASSIGN(Scope create, scope_member(it->value, "create", name));
      g.create = create != Scope::kNone;
      RP_ASSIGN(g.read, scope_member(it->value, "read", name));
      RP_ASSIGN(g.update, scope_member(it->value, "update", name));
      RP_ASSIGN(g.del, scope_member(it->value, "delete", name));
      role.entities[name] = g;
    }
  }
  if (const json::Value* fields = json::member(doc, "fields")) {
    if (!fields->IsObject())
      return make_error(Errc::kValidation, "permissions.fields must be an object", "permissions");
    // Either flat {"account.bank_account": "read"} or nested {"account": {"bank_account": "read"}}.
    auto add = [&role](const std::string& key, const json::Value& v) -> Status {
      std::string s = v.IsString() ? v.GetString() : "";
      FieldAccess fa;
      if (s == "hidden")
        fa = FieldAccess::kHidden;
      else if (s == "read")
        fa = FieldAccess::kRead;
      else if (s == "write")
        fa = FieldAccess::kWrite;
      else
        return make_error(Errc::kValidation,
                          "permissions.fields." + key + " must be hidden, read or write",
                          "permissions");
      role.fields[key] = fa;
      return {};
    };
    for (auto it = fields->MemberBegin(); it != fields->MemberEnd(); ++it) {
      std::string name = it->name.GetString();
      if (it->value.IsObject()) {
        for (auto f = it->value.MemberBegin(); f != it->value.MemberEnd(); ++f)
          RP_TRY(add(name + "." + f->name.GetString(), f->value));
      } else {
        RP_TRY(add(name, it->value));
      }
    }
  }
  return role;
}

Status validate_permissions(const json::Value& permissions) {
  auto r = parse_role_permissions(permissions);
  if (!r.ok()) return std::move(r).error();
  return {};
}

namespace {
const EntityGrant* grant_for(const Role& role, std::string_view entity) {
  auto it = role.entities.find(entity);
  if (it != role.entities.end()) return &it->second;
  it = role.entities.find("*");
  return it != role.entities.end() ? &it->second : nullptr;
}
}  // namespace

Principal system_principal() {
  auto role = std::make_shared<Role>();
  role->name = "system";
  role->is_admin = true;
  Principal p;
  p.role = std::move(role);
  p.username = "system";
  p.display_name = "system";
  p.channel = "system";
  return p;
}

Scope scope_for(const Principal& p, std::string_view entity, Op op) {
  if (!p.role) return Scope::kNone;
  if (p.role->is_admin) return Scope::kAll;
  const EntityGrant* g = grant_for(*p.role, entity);
  if (!g) return Scope::kNone;
  switch (op) {
    case Op::kCreate:
      return g->create ? Scope::kAll : Scope::kNone;
    case Op::kRead:
      return g->read;
    case Op::kUpdate:
      return g->update;
    case Op::kDelete:
      return g->del;
  }
  return Scope::kNone;
}

bool can_create(const Principal& p, std::string_view entity) {
  return scope_for(p, entity, Op::kCreate) != Scope::kNone;
}

bool in_scope(const Principal& p, Scope scope, std::int64_t owner_id, std::int64_t team_id) {
  switch (scope) {
    case Scope::kAll:
      return true;
    case Scope::kTeam:
      if (p.team_id != 0 && team_id == p.team_id) return true;
      [[fallthrough]];
    case Scope::kOwn:
      return owner_id == p.user_id;
    case Scope::kNone:
      return false;
  }
  return false;
}

FieldAccess field_access(const Principal& p, const schema::Entity& e, const schema::Field& f) {
  if (!p.role) return FieldAccess::kHidden;
  if (p.role->is_admin) return FieldAccess::kWrite;
  std::string key = e.name + "." + f.name;
  auto it = p.role->fields.find(key);
  if (it != p.role->fields.end()) return it->second;
  return f.sensitive ? FieldAccess::kHidden : FieldAccess::kWrite;
}

}  // namespace rapport::access
