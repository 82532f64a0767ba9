// Composition root: store + migrations + registry + services, default roles.
#include "app/app.h"

#include <filesystem>

#include "core/phone.h"
#include "modules/modules.h"
#include "record/table.h"

namespace rapport::app {

namespace fs = std::filesystem;

std::string database_path(const std::string& data_dir) {
  return (fs::path(data_dir) / "rapport.db").string();
}

namespace {

// Default roles: what a new installation offers before an administrator tailors them.
const char* kDefaultRoles[][3] = {
    {"Administrator", "true", R"({})"},
    {"Sales manager", "false",
     R"({"entities":{"account":{"create":true,"read":"all","update":"all","delete":"team"},
        "contact":{"create":true,"read":"all","update":"all","delete":"team"},
        "interaction":{"create":true,"read":"all","update":"all","delete":"team"},
        "account_profile":{"create":true,"read":"all","update":"all","delete":"team"},
        "duplicate_candidate":{"read":"all","update":"all"},
        "user":{"read":"all"},"team":{"read":"all"},"role":{"read":"all"},
        "saved_view":{"create":true,"read":"own","update":"own","delete":"own"},
        "import_template":{"create":true,"read":"all","update":"own","delete":"own"},
        "import_run":{"read":"own"}},
        "fields":{"account.bank_account":"read"}})"},
    {"Sales", "false",
     R"({"entities":{"account":{"create":true,"read":"team","update":"own","delete":"own"},
        "contact":{"create":true,"read":"team","update":"own","delete":"own"},
        "interaction":{"create":true,"read":"team","update":"own","delete":"own"},
        "account_profile":{"create":true,"read":"team","update":"own","delete":"own"},
        "user":{"read":"all"},"team":{"read":"all"},
        "saved_view":{"create":true,"read":"own","update":"own","delete":"own"},
        "import_template":{"create":true,"read":"all","update":"own","delete":"own"},
        "import_run":{"read":"own"}}})"},
};

Status seed_roles(App& app) {
  auto role = app.registry.get("role");
  {
    RP_ASSIGN(auto tx, app.store->read());
    RP_ASSIGN(auto rows, tx->query("SELECT COUNT(*) FROM \"role\""));
    if (record::as_int(rows.rows[0][0]) > 0) return {};
  }
  for (const auto& r : kDefaultRoles) {
    std::string body = std::string("{\"name\":\"") + r[0] + "\",\"is_admin\":" + r[1] +
                       ",\"permissions\":" + r[2] + "}";
    auto created = app.records->create(app.system, *role, body);
    // Another process starting on the same fresh database may have seeded it first.
    if (!created.ok() && created.error().code == Errc::kDuplicate) return {};
    if (!created.ok()) return std::move(created).error();
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<App>> open_app(const std::string& data_dir, const std::string& database_url,
                                      const record::RecordOptions& options,
                                      const storage::StoreOptions& store_options) {
  if (!phone::known_region(options.phone_region))
    return make_error(
        Errc::kValidation,
        "unknown phone region " + options.phone_region + " (an ISO 3166 alpha-2 code such as CN)",
        "phone-region");
  auto app = std::make_unique<App>();
  std::string url = database_url;
  if (url.empty()) {
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (ec)
      return make_error(Errc::kStorage,
                        "cannot create data directory " + data_dir + ": " + ec.message());
    url = database_path(data_dir);
  }
  RP_ASSIGN(app->store, storage::open_store(url, store_options));
  // Several servers (and command-line tools) may write to one PostgreSQL database: each gets a
  // node number of its own for the ids it generates.
  RP_ASSIGN(int node, app->store->claim_node_id());
  app->ids.set_node(node);
  std::vector<storage::Migration> migrations = access::migrations();
  for (auto& m : record::RecordService::migrations()) migrations.push_back(std::move(m));
  RP_TRY(app->store->migrate(migrations));
  app->auth = std::make_unique<access::AuthService>(*app->store, app->clock);
  RP_TRY(modules::register_all(app->registry, app->hooks, *app->auth));
  app->records = std::make_unique<record::RecordService>(
      *app->store, app->registry, app->hooks, app->events, app->clock, app->ids, options);
  modules::register_actions(app->actions, *app->records, app->registry);
  RP_TRY(app->records->sync_schema());
  app->system = access::system_principal();
  RP_TRY(seed_roles(*app));
  return app;
}

Result<std::int64_t> add_user(App& app, const std::string& username,
                              const std::string& display_name, const std::string& password,
                              const std::string& role_name, const std::string& team_name) {
  auto find_id = [&](const char* table, const std::string& name) -> Result<std::int64_t> {
    RP_ASSIGN(auto tx, app.store->read());
    storage::SqlValue p[] = {name};
    RP_ASSIGN(auto rows, tx->query(std::string("SELECT id FROM \"") + table +
                                       "\" WHERE name = ? AND deleted_at IS NULL",
                                   p));
    if (rows.rows.empty())
      return make_error(Errc::kNotFound, std::string("no ") + table + " named " + name);
    return record::as_int(rows.rows[0][0]);
  };
  RP_ASSIGN(std::int64_t role_id, find_id("role", role_name));
  json::Document body(rapidjson::kObjectType);
  auto& a = body.GetAllocator();
  body.AddMember("username", json::str(username, a), a);
  body.AddMember("display_name", json::str(display_name.empty() ? username : display_name, a), a);
  body.AddMember("role_id", json::str(std::to_string(role_id), a), a);
  body.AddMember("password", json::str(password, a), a);
  if (!team_name.empty()) {
    auto team = find_id("team", team_name);
    std::int64_t team_id;
    if (team.ok()) {
      team_id = *team;
    } else {
      auto created =
          app.records->create(app.system, *app.registry.get("team"),
                              "{\"name\":" + json::stringify(json::str(team_name, a)) + "}");
      if (created.ok()) {
        team_id = created->id;
      } else if (created.error().code == Errc::kDuplicate) {
        RP_ASSIGN(team_id, find_id("team", team_name));  // another process created it just now
      } else {
        return std::move(created).error();
      }
    }
    body.AddMember("team_id", json::str(std::to_string(team_id), a), a);
  }
  RP_ASSIGN(auto created,
            app.records->create(app.system, *app.registry.get("user"), json::stringify(body)));
  return created.id;
}

}  // namespace rapport::app
