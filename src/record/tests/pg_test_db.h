// A PostgreSQL database for record-layer tests, reached through the Store interface only (no
// libpq here): the cluster of RAPPORT_TEST_PG_URL (make test starts one), else a throw-away
// cluster that tests/pg/start_pg.sh starts on first use and tests/pg/stop_pg.sh removes when the
// process ends. Each test gets a schema of its own (dropped at the end) through the URL's
// search_path, so tests running at once do not meet.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "storage/store.h"

namespace rapport::record::testing {

class PgTestCluster {
 public:
  // The base URL, or empty (with the reason in error()) when no cluster could be started.
  static PgTestCluster& get() {
    static PgTestCluster* cluster = new PgTestCluster();  // lives until exit
    return *cluster;
  }
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }

 private:
  PgTestCluster() {
    if (const char* env = std::getenv("RAPPORT_TEST_PG_URL"); env != nullptr && *env != '\0') {
      url_ = env;
      return;
    }
    std::string cmd = std::string(RAPPORT_SOURCE_DIR) + "/tests/pg/start_pg.sh 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    int rc = p != nullptr ? ::pclose(p) : -1;
    auto nl = out.find('\n');
    if (rc != 0 || nl == std::string::npos) {
      error_ = "tests/pg/start_pg.sh failed: " + out;
      return;
    }
    url_ = out.substr(0, nl);
    dir_ = out.substr(nl + 1);
    while (!dir_.empty() && (dir_.back() == '\n' || dir_.back() == ' ')) dir_.pop_back();
    std::atexit([] { get().stop(); });
  }
  void stop() {
    if (dir_.empty()) return;
    std::string cmd = std::string(RAPPORT_SOURCE_DIR) + "/tests/pg/stop_pg.sh " + dir_;
    [[maybe_unused]] int rc = std::system(cmd.c_str());
    dir_.clear();
  }

  std::string url_;
  std::string dir_;
  std::string error_;
};

// A schema of its own on the test cluster; the URL of a store that works in it (its
// search_path is the schema, then public, where PgStore::open enables pg_trgm).
class PgTestSchema {
 public:
  explicit PgTestSchema(const std::string& label) {
    const auto& cluster = PgTestCluster::get();
    if (cluster.url().empty()) {
      ADD_FAILURE() << cluster.error();
      return;
    }
    name_ = "rp_" + label + "_" + std::to_string(::getpid());
    auto admin = storage::open_store(cluster.url());
    if (!admin.ok()) {
      ADD_FAILURE() << admin.error().message;
      return;
    }
    admin_ = std::move(admin).value();
    exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    exec("CREATE SCHEMA " + name_);
    const std::string& base = cluster.url();
    url_ = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
           name_ + "%2Cpublic";
  }
  ~PgTestSchema() {
    if (admin_) exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
  }
  PgTestSchema(const PgTestSchema&) = delete;
  PgTestSchema& operator=(const PgTestSchema&) = delete;

  bool ok() const { return !url_.empty(); }
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  void exec(const std::string& sql) {
    auto tx = admin_->write();
    ASSERT_TRUE(tx.ok()) << tx.error().message;
    auto r = (*tx)->exec(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.error().message;
    ASSERT_TRUE((*tx)->commit().ok());
  }

  std::unique_ptr<storage::Store> admin_;
  std::string name_;
  std::string url_;
};

}  // namespace rapport::record::testing
