// The composition root: builds every service for one data directory (or database URL) and owns
// them for the life of a command. The only place that sees all layers.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "access/auth.h"
#include "base/clock.h"
#include "record/actions.h"
#include "record/events.h"
#include "record/service.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::app {

struct App {
  SystemClock clock;
  IdGenerator ids{clock};
  std::unique_ptr<storage::Store> store;
  schema::Registry registry;
  record::HookRegistry hooks;
  record::ActionRegistry actions;  // module endpoints, mounted by api/
  record::EventBus events;
  std::unique_ptr<access::AuthService> auth;
  std::unique_ptr<record::RecordService> records;
  access::Principal system;  // acts for command-line tools: administrator, channel "system"
};

// Opens the store under `data_dir` (creating the directory), migrates it, brings entity tables
// up to date and seeds the default roles on first use.
Result<std::unique_ptr<App>> open_app(const std::string& data_dir,
                                      const std::string& database_url = {},
                                      const record::RecordOptions& options = {},
                                      const storage::StoreOptions& store_options = {});
std::string database_path(const std::string& data_dir);

// Creates a user with the named role; returns the id.
Result<std::int64_t> add_user(App& app, const std::string& username,
                              const std::string& display_name, const std::string& password,
                              const std::string& role_name, const std::string& team_name = {});
// Seeds demo data: accounts with Chinese and English names, contacts, communication records.
// Records are spread over `owners` (user id, team id or 0) so that scopes have something to show.
Status seed_demo(App& app, int accounts,
                 const std::vector<std::pair<std::int64_t, std::int64_t>>& owners);

}  // namespace rapport::app
