// User password handling and role permission validation as record hooks.
#include "modules/admin/hooks.h"

namespace rapport::modules::admin {

void register_hooks(record::HookRegistry& hooks, access::AuthService& auth) {
  record::Hooks user;
  // "password" is write-only input, not a field: take it out before validation, set it after
  // the user row exists, in the same transaction.
  user.prepare = [](record::HookContext& ctx) -> Status {
    if (const json::Value* pw = json::member(ctx.input, "password")) {
      if (!pw->IsString())
        return make_error(Errc::kValidation, "password must be a string", "password");
      ctx.stash["password"] = pw->GetString();
      ctx.input.RemoveMember("password");
      if (static_cast<int>(ctx.stash["password"].size()) < access::kMinPasswordLength)
        return make_error(Errc::kValidation,
                          "password must be at least " +
                              std::to_string(access::kMinPasswordLength) + " characters",
                          "password");
      if (!ctx.principal.is_admin() && ctx.id != ctx.principal.user_id)
        return make_error(Errc::kForbidden, "only administrators set other users' passwords",
                          "password");
    }
    return {};
  };
  user.after_write = [&auth](record::HookContext& ctx) -> Status {
    auto it = ctx.stash.find("password");
    if (it == ctx.stash.end()) return {};
    // A user who changes their own password keeps the session they did it in; every other
    // session of the user ends.
    std::string_view keep =
        ctx.id == ctx.principal.user_id ? std::string_view(ctx.principal.csrf_token) : "";
    return auth.set_password(ctx.tx, ctx.id, it->second, keep);
  };
  // Disabling, deleting or moving a user to another role or team, a new password: cached
  // principals are forgotten here and on the other servers.
  user.after_commit = [&auth](const record::Event&) { auth.changed(); };
  hooks.add("user", std::move(user));

  record::Hooks role;
  role.before_write = [](record::HookContext& ctx) -> Status {
    if (const json::Value* perms = json::member(ctx.values, "permissions"))
      return access::validate_permissions(*perms);
    return {};
  };
  role.after_commit = [&auth](const record::Event&) { auth.changed(); };
  hooks.add("role", std::move(role));
}

}  // namespace rapport::modules::admin
