// rapport — the command line: serve, migrate, users, tokens, demo data, backup and restore.
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>

#include "access/auth.h"
#include "api/routes.h"
#include "app/app.h"
#include "app/copy.h"
#include "http/log_format.h"
#include "http/server.h"
#include "record/scan_scheduler.h"

#ifndef RAPPORT_VERSION
#define RAPPORT_VERSION "dev"
#endif

namespace fs = std::filesystem;
using namespace rapport;

namespace {

constexpr const char* kPasswordFile = "initial-admin-password";

// `rapport config example`: every key a configuration file may hold. Keys are the long option
// names without "--"; a command's own options go in its section. tests/api/config.test.mjs
// uncomments every line and checks that the binary accepts the result.
constexpr const char* kConfigExample =
    R"(# Rapport configuration (TOML). Read from --config FILE, else $RAPPORT_CONFIG, else
# /etc/rapport/rapport.toml when it exists. An option given on the command line overrides
# the file; an unknown key or a bad value is refused, naming the key.

# Options of every command.
# data = "/var/lib/rapport"                        # data directory (SQLite file, backups)
# database = "postgresql://rapport@db1/rapport"    # PostgreSQL instead of the SQLite file
# log-level = "info"                               # trace, debug, info, warn, error
# phone-region = "CN"                              # region of numbers without a country code

[serve]
# address = "127.0.0.1"                          # 0.0.0.0 listens on every interface
# port = 8080                                      # 0 picks a free one
# static = "/usr/share/rapport/web"                # the built web app
# io-threads = 2
# workers = 8                                      # request worker threads
# read-timeout = 30                                # seconds a request may take to arrive
# max-connections = 10000
# pool-size = 8                                    # PostgreSQL connections (primary, each replica)
# database-replica = ["postgresql://rapport@db2/rapport", "postgresql://rapport@db3/rapport"]
# scan-every = "24h"                               # background duplicate scan; "0" is off
# auth-cache = "5s"                                # how long a credential's user is cached; "0" is off
# list-cache-mib = 32                              # records' text (list pages, reads by id) by id and version; 0 is off
# search-cache-mib = 32                            # search answers kept until the next write; 0 is off
# page-cache-mib = 32                              # whole list pages kept until the next write; 0 is off
# read-map-mib = 256                               # SQLite readers map the file when all of it fits; 0 is never
# wal-sync-beside = false                          # SQLite: a COMMIT's WAL sync beside the next batch (answers still after it)
# import-terms-after-rows = 300000                 # SQLite: a large import into a nearly empty table indexes search after its load; 0 is never
# term-build-part-rows = 250000                    # term rows per write transaction of that build

[demo]
# accounts = 1000
)";

int fail(const Error& e) {
  std::cerr << "error: " << e.message << (e.field.empty() ? "" : " (" + e.field + ")") << "\n";
  return 1;
}

// Log lines to a file or pipe (a service's journal, the benchmark's log) go through stdio's
// buffer and are flushed every second, at once from warnings up, and at exit, instead of one
// write per line: the access log line of every request then costs no system call of its own.
// A terminal keeps the default colour sink, flushed per line.
class BufferedStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

void use_buffered_log_output() {
  if (::isatty(::fileno(stdout))) return;
  auto logger = std::make_shared<spdlog::logger>("", std::make_shared<BufferedStdoutSink>());
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  spdlog::flush_every(std::chrono::seconds(1));
  std::atexit([] {
    spdlog::default_logger_raw()->flush();
    spdlog::shutdown();
  });
}

// Settings shared by every command that opens the data directory.
record::RecordOptions record_options;
storage::StoreOptions store_options;
// How long a command other than serve waits for a lock held by a running server.
constexpr int kCommandBusyTimeoutMs = 30000;

std::unique_ptr<app::App> open_or_exit(const std::string& data, const std::string& database) {
  auto a = app::open_app(data, database, record_options, store_options);
  if (!a.ok()) {
    fail(a.error());
    std::exit(1);
  }
  return std::move(a).value();
}

// The store channel that carries record events between servers: "ORIGIN\nENVELOPE".
constexpr const char* kEventChannel = "rapport_events";

void notify_other_servers(storage::Store& store, const std::string& origin, const record::Event& e,
                          std::string envelope) {
  std::string payload = origin + "\n" + envelope;
  if (payload.size() > storage::Store::kMaxNotifyPayload) {
    record::Event brief = e;  // too many changed fields to list: send the event without them
    brief.changed.clear();
    payload = origin + "\n" + api::ws_envelope(brief);
  }
  if (auto st = store.notify(kEventChannel, payload); !st.ok())
    spdlog::warn("event {} {} not sent to other servers: {}", e.entity, e.id, st.error().message);
}

int serve(const std::string& data, const std::string& database, http::ServerOptions opts,
          std::chrono::milliseconds scan_every, std::chrono::milliseconds auth_cache) {
  // One reader per thread that may read: the workers and the I/O threads (quick reads run there).
  store_options.readers = std::max(1, opts.worker_threads) + std::max(1, opts.io_threads);
  // Term rows a killed server left to build: built once the server listens, not before.
  record_options.term_builds_in_background = true;
  auto app = open_or_exit(data, database);
  app->auth->set_cache_max_age(auth_cache.count());
  http::Router router;
  api::Services services{*app->records, *app->auth, app->registry, &app->actions};
  api::register_routes(router, services);
  http::Server server(opts, router, api::make_ws_acceptor(services));
  // Record events go to this server's WebSocket clients and, through the store (PostgreSQL
  // NOTIFY; nothing on SQLite), to every other server on the same database, whose events come
  // back the same way. The origin tag keeps a server from publishing its own events twice.
  const std::string origin = access::random_token(12);
  app->events.subscribe([&server, &app, origin](const record::Event& e) {
    // Nobody to send it to (no WebSocket open, no other server on SQLite): not even built.
    if (!server.has_subscribers() && !app->store->notifies_others()) return;
    std::string envelope = api::ws_envelope(e);
    server.publish(envelope);
    notify_other_servers(*app->store, origin, e, std::move(envelope));
  });
  auto listening = app->store->listen(kEventChannel, [&server, origin](const std::string& message) {
    auto nl = message.find('\n');
    if (nl == std::string::npos || std::string_view(message).substr(0, nl) == origin) return;
    server.publish(message.substr(nl + 1));
  });
  if (!listening.ok()) return fail(listening.error());
  // A custom field added through another server: load it (its column exists already).
  auto schema_listening =
      app->store->listen(record::RecordService::kSchemaChannel, [&app](const std::string& field) {
        auto added = app->records->reload_custom_fields();
        if (!added.ok())
          spdlog::warn("reloading custom fields after {} failed: {}", field, added.error().message);
        else if (*added > 0)
          spdlog::info("custom field {} added by another server loaded", field);
      });
  if (!schema_listening.ok()) return fail(schema_listening.error());
  // Sessions, tokens, users or roles changed through another server: forget cached principals.
  if (auto st = app->auth->listen_for_changes(); !st.ok()) return fail(st.error());
  // The link to the other servers was lost for a while and is back: what its messages would
  // have brought is re-read — custom fields added meanwhile are loaded, and WebSocket clients
  // are told that events may have been missed, so that they re-read what they show, and cached
  // principals are forgotten (a session or token may have ended meanwhile).
  app->store->on_listen_resumed([&server, &app] {
    app->auth->forget_cached();
    auto added = app->records->reload_custom_fields();
    if (!added.ok())
      spdlog::warn("reloading custom fields after a lost LISTEN connection failed: {}",
                   added.error().message);
    else if (*added > 0)
      spdlog::info("{} custom field(s) added while the LISTEN connection was lost loaded", *added);
    server.publish(api::ws_broadcast_envelope(api::kWsResync));
  });
  std::uint16_t port;
  try {
    port = server.listen();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  std::printf("listening on http://%s:%u\n", opts.address.c_str(), static_cast<unsigned>(port));
  std::ifstream pw(fs::path(data) / kPasswordFile);
  std::string password;
  if (database.empty() && pw && std::getline(pw, password))
    std::printf("log in as admin / %s (from %s)\n", password.c_str(),
                (fs::path(data) / kPasswordFile).c_str());
  std::fflush(stdout);
  // The duplicate review queue fills itself in the background (one server of a database at a
  // time); stopped before the store closes.
  record::ScanScheduler scan(*app->records, app->system, scan_every);
  scan.start();
  // Search and lists with q say index_pending until it is done.
  app->records->start_term_builds();
  server.run();
  app->records->stop_term_builds();
  scan.stop();
  app->store->stop_listening();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Rapport — customer relationship management server"};
  cli.set_version_flag("--version", std::string("rapport ") + RAPPORT_VERSION);
  cli.require_subcommand(1);
  // Options of the whole program are given before or after the command (`rapport serve
  // --database URL`); subcommands made below inherit these two settings.
  cli.fallthrough();
  cli.allow_config_extras(CLI::config_extras_mode::error);
  std::string config_default = "/etc/rapport/rapport.toml";
  if (const char* env = std::getenv("RAPPORT_CONFIG"); env && *env) {
    config_default = env;
    if (!fs::is_regular_file(config_default)) {
      std::cerr << "error: RAPPORT_CONFIG names " << config_default
                << ", which is not a readable file\n";
      return 1;
    }
  }
  cli.set_config("--config", config_default,
                 "TOML file of options (default $RAPPORT_CONFIG, else /etc/rapport/rapport.toml "
                 "if it exists); the command line overrides it; see `rapport config example`")
      ->type_name("FILE");
  std::string data = "var", database, log_level = "info";
  cli.add_option("--data", data, "data directory (default ./var)");
  cli.add_option("--database", database,
                 "database URL instead of the data directory's SQLite file");
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error (the last one given)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "warning", "error", "critical", "off"}));
  cli.add_option("--phone-region", record_options.phone_region,
                 "region of phone numbers written without a country code (default CN)");
  http::ServerOptions opts;
  std::string static_dir = "web/dist";
  auto* serve_cmd = cli.add_subcommand("serve", "serve the API and the web app");
  serve_cmd->add_option("--address", opts.address, "address to listen on");
  serve_cmd->add_option("--port", opts.port, "port (0 picks a free one)");
  serve_cmd->add_option("--static", static_dir, "directory of the built web app");
  serve_cmd->add_option("--io-threads", opts.io_threads, "I/O threads");
  serve_cmd->add_option("--workers", opts.worker_threads, "request worker threads");
  serve_cmd->add_option("--read-timeout", opts.read_timeout_s,
                        "seconds a request may take to arrive (default 30)");
  serve_cmd->add_option("--database-replica", store_options.replicas,
                        "PostgreSQL streaming replica URL for read-only requests (repeatable)");
  serve_cmd
      ->add_option("--pool-size", store_options.pool_size,
                   "PostgreSQL connections per server (primary and each replica; default 8)")
      ->check(CLI::Range(1, 1000));
  serve_cmd
      ->add_option_function<std::size_t>(
          "--list-cache-mib", [](std::size_t mib) { record_options.list_cache_bytes = mib << 20; },
          "MiB of records' text (list pages, reads by id) kept by id and version (default 32; 0: "
          "none)")
      ->check(CLI::Range(0, 65536));
  serve_cmd
      ->add_option_function<std::size_t>(
          "--search-cache-mib",
          [](std::size_t mib) { record_options.search_cache_bytes = mib << 20; },
          "MiB of search answers kept until the next write (default 32; 0: none)")
      ->check(CLI::Range(0, 65536));
  serve_cmd
      ->add_option_function<std::size_t>(
          "--page-cache-mib", [](std::size_t mib) { record_options.page_cache_bytes = mib << 20; },
          "MiB of whole list pages kept until the next write (default 32; 0: none)")
      ->check(CLI::Range(0, 65536));
  serve_cmd
      ->add_option("--import-terms-after-rows", record_options.import_terms_after_rows,
                   "a CSV import of at least this many rows into a nearly empty table builds its "
                   "search terms after its last batch (default 300000; 0: never)")
      ->check(CLI::NonNegativeNumber);
  serve_cmd
      ->add_option("--term-build-part-rows", record_options.term_build_part_rows,
                   "term rows per write transaction of that build (default 250000)")
      ->check(CLI::PositiveNumber);
  serve_cmd
      ->add_option("--read-map-mib", store_options.reader_map_mib,
                   "SQLite: the reader connections memory-map the database file when all of it "
                   "fits in this many MiB (default 256; 0: never), else read it with pread")
      ->check(CLI::Range(0, 65536));
  serve_cmd->add_flag(
      "--wal-sync-beside", store_options.defer_wal_sync,
      "SQLite: a group COMMIT's WAL sync runs beside the next batch's writes; its writes are still "
      "answered only after that sync (default off; bench/README, session 20)");
  serve_cmd
      ->add_option("--max-connections", opts.max_connections,
                   "open connections at most; a new one beyond is answered 503 (default 10000)")
      ->check(CLI::PositiveNumber);

  std::chrono::milliseconds auth_cache{access::kAuthCacheMaxAgeMs};
  serve_cmd
      ->add_option_function<std::string>(
          "--auth-cache",
          [&auth_cache](const std::string& text) {
            auto d = record::parse_duration(text);
            if (!d)
              throw CLI::ValidationError(
                  "--auth-cache", "expects a duration such as 5s, 1m or 0 (off), not " + text);
            auth_cache = *d;
          },
          "answer a session's or token's user from memory for up to this long (5s default; 0: "
          "off); logouts, revocations and user or role changes through any server end it at once")
      ->type_name("DURATION");
  std::chrono::milliseconds scan_every = std::chrono::hours(24);
  serve_cmd
      ->add_option_function<std::string>(
          "--scan-every",
          [&scan_every](const std::string& text) {
            auto d = record::parse_duration(text);
            if (!d)
              throw CLI::ValidationError(
                  "--scan-every",
                  "expects a duration such as 24h, 90m, 30s or 0 (off), not " + text);
            scan_every = *d;
          },
          "run the duplicate scan in the background this often (24h default; 0: off)")
      ->type_name("DURATION");

  auto* migrate_cmd = cli.add_subcommand("migrate", "create or upgrade the database");

  auto* user_cmd = cli.add_subcommand("user", "manage users");
  user_cmd->require_subcommand(1);
  std::string username, password, role = "Sales", display, team;
  auto* user_add =
      user_cmd->add_subcommand("add", "add a user (prints a generated password if none is given)");
  user_add->add_option("username", username)->required();
  user_add->add_option("--password", password);
  user_add->add_option("--role", role, "role name (default Sales)");
  user_add->add_option("--name", display, "display name");
  user_add->add_option("--team", team, "team name (created if missing)");
  auto* user_passwd = user_cmd->add_subcommand("passwd", "set a user's password");
  user_passwd->add_option("username", username)->required();
  user_passwd->add_option("--password", password);
  auto* user_list = user_cmd->add_subcommand("list", "list users");

  auto* token_cmd = cli.add_subcommand("token", "API tokens");
  token_cmd->require_subcommand(1);
  std::string token_name = "cli";
  auto* token_create = token_cmd->add_subcommand("create", "print a new API token for USER");
  token_create->add_option("user", username)->required();
  token_create->add_option("--name", token_name, "what the token is for");
  std::string revoke_name;
  auto* token_revoke =
      token_cmd->add_subcommand("revoke", "delete USER's API tokens (only those called NAME)");
  token_revoke->add_option("user", username)->required();
  token_revoke->add_option("--name", revoke_name, "revoke only the tokens of this name");

  int demo_accounts = 1000;
  auto* demo_cmd = cli.add_subcommand("demo", "create the admin user and seed demo data");
  demo_cmd->add_option("--accounts", demo_accounts, "number of demo accounts (default 1000)");

  std::string file;
  auto* backup_cmd = cli.add_subcommand("backup", "consistent online copy of the database to FILE");
  backup_cmd->add_option("file", file)->required();
  auto* restore_cmd =
      cli.add_subcommand("restore", "replace the database with the backup FILE (server stopped)");
  restore_cmd->add_option("file", file)->required();

  std::string copy_from, copy_to;
  auto* copy_cmd = cli.add_subcommand(
      "copy", "copy an installation's SQLite database into an empty database (PostgreSQL)");
  copy_cmd->add_option("--from", copy_from, "source: sqlite:PATH")->required();
  copy_cmd->add_option("--to", copy_to, "target URL: postgresql://USER@HOST/DB")->required();

  auto* config_cmd = cli.add_subcommand("config", "the configuration file");
  config_cmd->require_subcommand(1);
  auto* config_example =
      config_cmd->add_subcommand("example", "print a commented example configuration file");

  // A command's --help lists its own options; the program's apply to every command.
  std::function<void(CLI::App*)> footers = [&](CLI::App* app) {
    for (CLI::App* sub : app->get_subcommands({})) {
      sub->footer(
          "Every command also takes --config FILE, --data DIR, --database URL, --log-level and "
          "--phone-region (rapport --help).");
      footers(sub);
    }
  };
  footers(&cli);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse KEY" of a key that is no option.
    std::string what = e.what();
    constexpr std::string_view kUnknown = "INI was not able to parse ";
    if (what.rfind(kUnknown, 0) == 0)
      what = "unknown key " + what.substr(kUnknown.size()) + " (see `rapport config example`)";
    std::cerr << "error: config file " << cli.get_config_ptr()->as<std::string>() << ": " << what
              << "\n";
    return 2;
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (config_example->parsed()) {
    std::fputs(kConfigExample, stdout);
    return 0;
  }
  use_buffered_log_output();
  spdlog::set_level(spdlog::level::from_str(log_level));
  // The pattern http::LineFormatter::kLogPattern, written without spdlog's pattern formatter.
  spdlog::set_formatter(std::make_unique<http::LineFormatter>());

  if (serve_cmd->parsed()) {
    if (fs::is_directory(static_dir)) opts.static_dir = static_dir;
    return serve(data, database, opts, scan_every, auth_cache);
  }
  // Every other command may run beside a server writing to the same database: it waits for the
  // write lock (SQLite) or for row locks (PostgreSQL) as long as a person would wait for a
  // command, rather than failing with "database is locked" after the server's 5 s.
  store_options.busy_timeout_ms = kCommandBusyTimeoutMs;
  if (migrate_cmd->parsed()) {
    auto app = open_or_exit(data, database);
    auto v = app->store->schema_version();
    std::printf("database is at schema version %d\n", v.ok() ? *v : -1);
    return 0;
  }
  if (user_add->parsed()) {
    auto app = open_or_exit(data, database);
    bool generated = password.empty();
    if (generated) password = access::random_token(9);
    auto id = app::add_user(*app, username, display, password, role, team);
    if (!id.ok()) return fail(id.error());
    std::printf("user %s added (id %lld)%s%s\n", username.c_str(), static_cast<long long>(*id),
                generated ? ", password: " : "", generated ? password.c_str() : "");
    return 0;
  }
  if (user_passwd->parsed()) {
    auto app = open_or_exit(data, database);
    bool generated = password.empty();
    if (generated) password = access::random_token(9);
    auto tx = app->store->write();
    if (!tx.ok()) return fail(tx.error());
    storage::SqlValue p[] = {username};
    auto rows =
        (*tx)->query("SELECT id FROM \"user\" WHERE username = ? AND deleted_at IS NULL", p);
    if (!rows.ok()) return fail(rows.error());
    if (rows->rows.empty()) return fail(make_error(Errc::kNotFound, "no user " + username));
    auto st = app->auth->set_password(**tx, std::get<std::int64_t>(rows->rows[0][0]), password);
    if (!st.ok()) return fail(st.error());
    auto c = (*tx)->commit();
    if (!c.ok()) return fail(c.error());
    app->auth->changed();
    std::printf("password of %s changed%s%s\n", username.c_str(), generated ? ": " : "",
                generated ? password.c_str() : "");
    return 0;
  }
  if (user_list->parsed()) {
    auto app = open_or_exit(data, database);
    auto tx = app->store->read();
    if (!tx.ok()) return fail(tx.error());
    auto rows = (*tx)->query(
        "SELECT u.username, u.display_name, r.name FROM \"user\" u LEFT JOIN \"role\" r ON r.id = "
        "u.role_id "
        "WHERE u.deleted_at IS NULL ORDER BY u.username");
    if (!rows.ok()) return fail(rows.error());
    for (const auto& r : rows->rows)
      std::printf("%-20s %-24s %s\n", std::get<std::string>(r[0]).c_str(),
                  std::get<std::string>(r[1]).c_str(),
                  r[2].index() == 3 ? std::get<std::string>(r[2]).c_str() : "-");
    return 0;
  }
  if (token_create->parsed()) {
    auto app = open_or_exit(data, database);
    auto token = app->auth->create_token(username, token_name);
    if (!token.ok()) return fail(token.error());
    std::printf("%s\n", token->c_str());
    return 0;
  }
  if (token_revoke->parsed()) {
    auto app = open_or_exit(data, database);
    auto id = app->auth->user_id(username);
    if (!id.ok()) return fail(id.error());
    auto n = app->auth->revoke_tokens(*id, revoke_name);
    if (!n.ok()) return fail(n.error());
    std::printf("%lld token(s) of %s revoked\n", static_cast<long long>(*n), username.c_str());
    return 0;
  }
  if (demo_cmd->parsed()) {
    auto app = open_or_exit(data, database);
    std::string pw = access::random_token(9);
    auto id = app::add_user(*app, "admin", "管理员 Admin", pw, "Administrator");
    if (!id.ok()) return fail(id.error());
    std::ofstream(fs::path(data) / kPasswordFile) << pw << "\n";
    fs::permissions(fs::path(data) / kPasswordFile, fs::perms::owner_read | fs::perms::owner_write);
    std::string sales_pw = access::random_token(9);
    auto sales = app::add_user(*app, "zhangwei", "张伟", sales_pw, "Sales", "华北销售部");
    if (!sales.ok()) return fail(sales.error());
    std::printf("seeding %d demo accounts …\n", demo_accounts);
    std::fflush(stdout);
    std::int64_t sales_team = 0;
    {
      auto tx = app->store->read();
      if (!tx.ok()) return fail(tx.error());
      storage::SqlValue p[] = {*sales};
      auto rows = (*tx)->query("SELECT team_id FROM \"user\" WHERE id = ?", p);
      if (rows.ok() && !rows->rows.empty() && rows->rows[0][0].index() == 1)
        sales_team = std::get<std::int64_t>(rows->rows[0][0]);
    }
    auto st = app::seed_demo(*app, demo_accounts, {{*id, 0}, {*sales, sales_team}});
    if (!st.ok()) return fail(st.error());
    std::printf("demo data ready in %s\nadmin password: %s\nsales user zhangwei password: %s\n",
                data.c_str(), pw.c_str(), sales_pw.c_str());
    return 0;
  }
  if (backup_cmd->parsed()) {
    auto store = storage::open_store(database.empty() ? app::database_path(data) : database);
    if (!store.ok()) return fail(store.error());
    auto st = (*store)->backup_to(file);
    if (!st.ok()) return fail(st.error());
    std::printf("backup written to %s\n", file.c_str());
    return 0;
  }
  if (copy_cmd->parsed()) {
    auto st = app::copy_database(copy_from, copy_to, std::cout, record_options);
    if (!st.ok()) return fail(st.error());
    std::printf("copy verified: every table has the same number of rows on both sides\n");
    return 0;
  }
  if (restore_cmd->parsed()) {
    fs::create_directories(data);
    auto st = storage::restore_store(database.empty() ? app::database_path(data) : database, file);
    if (!st.ok()) return fail(st.error());
    std::printf("restored %s from %s\n", data.c_str(), file.c_str());
    return 0;
  }
  return 0;
}
