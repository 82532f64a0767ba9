// Unit tests of the PostgreSQL backend through the Store interface, against a real PostgreSQL 15
// cluster that this binary starts (initdb + pg_ctl into a temp dir, loopback, a free port) on
// first use and removes at the end; each test works in a database of its own.
// RAPPORT_TEST_PG_URL=postgresql://postgres@127.0.0.1:PORT/postgres (e.g. from
// tests/pg/start_pg.sh) uses that cluster instead, which saves a cluster start per process when
// ctest runs each test on its own; the test databases are then dropped at the end.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/blocking.h"
#include "storage/postgres/pg_store.h"
#include "storage/store.h"

namespace rapport::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string tail(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

// One throw-away cluster per test binary run, started on first use. initdb and pg_ctl refuse to
// run as root; as root they run as Debian's `postgres` user, which owns the temp dir.
class PgCluster {
 public:
  static PgCluster& get() {
    static PgCluster* cluster = new PgCluster();  // stopped by PgEnvironment::TearDown
    return *cluster;
  }
  static PgCluster* started() { return instance_started_ ? &get() : nullptr; }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::string url(const std::string& db) const { return base_url_ + db; }

  // A fresh empty database; its URL.
  std::string create_database() {
    std::lock_guard lock(mu_);
    std::string name =
        "rapport_test_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
    PGconn* c = PQconnectdb(url("postgres").c_str());
    std::string err;
    if (PQstatus(c) != CONNECTION_OK) {
      err = PQerrorMessage(c);
    } else {
      PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK) err = PQresultErrorMessage(r);
      PQclear(r);
    }
    PQfinish(c);
    if (!err.empty()) ADD_FAILURE() << "CREATE DATABASE " << name << ": " << err;
    created_.push_back(name);
    return url(name);
  }

  // Runs one statement on `db` outside any Store (to act as another client or an admin).
  std::string admin(const std::string& db_url, const std::string& sql) {
    PGconn* c = PQconnectdb(db_url.c_str());
    std::string out;
    if (PQstatus(c) == CONNECTION_OK) {
      PGresult* r = PQexec(c, sql.c_str());
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
      if (PQresultStatus(r) == PGRES_FATAL_ERROR)
        ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
      PQclear(r);
    } else {
      ADD_FAILURE() << PQerrorMessage(c);
    }
    PQfinish(c);
    return out;
  }

  void stop() {
    if (external_) {
      PGconn* c = PQconnectdb(url("postgres").c_str());
      for (const auto& db : created_) {
        PQclear(PQexec(c, ("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)").c_str()));
      }
      PQfinish(c);
      return;
    }
    if (dir_.empty()) return;
    run(bin("pg_ctl") + " -D " + (dir_ / "data").string() + " -m immediate -w stop");
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }

 private:
  PgCluster() {
    instance_started_ = true;
    start();
  }

  std::string bin(const char* tool) const { return std::string(kPgBin) + "/" + tool; }

  // Runs a shell command, as the postgres user when we are root. Output goes to the log.
  int run(const std::string& cmd) const {
    std::string full = as_postgres_ ? "runuser -u postgres -- " + cmd : cmd;
    full += " >>" + (dir_ / "cmd.log").string() + " 2>&1";
    return std::system(full.c_str());
  }

  void start() {
    if (const char* external = std::getenv("RAPPORT_TEST_PG_URL"); external && *external) {
      std::string u = external;
      auto slash = u.rfind('/');
      if (!u.starts_with("postgresql://") || slash < 13) {
        error_ = "RAPPORT_TEST_PG_URL must look like postgresql://USER@HOST:PORT/DB";
        return;
      }
      base_url_ = u.substr(0, slash + 1);
      external_ = true;
      return;
    }
    if (!fs::exists(bin("initdb"))) {
      error_ = bin("initdb") +
               " not found: the PostgreSQL tests need PostgreSQL 15 (`scripts/bootstrap.sh "
               "--test` installs the postgresql package)";
      return;
    }
    char tmpl[] = "/tmp/rapport_pgtest_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr || ::chown(tmpl, pw->pw_uid, pw->pw_gid) != 0) {
        error_ = "running as root, but there is no `postgres` user to run initdb as";
        return;
      }
      as_postgres_ = true;
    }
    std::string data = (dir_ / "data").string();
    if (run(bin("initdb") + " -D " + data +
            " -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8") != 0) {
      error_ = "initdb failed: " + tail(dir_ / "cmd.log");
      return;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      std::string opts = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " +
                         dir_.string() + " -c fsync=off -c max_connections=200";
      if (run(bin("pg_ctl") + " -D " + data + " -l " + (dir_ / "server.log").string() +
              " -w -t 60 -o \"" + opts + "\" start") == 0) {
        base_url_ = "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/";
        return;
      }
    }
    error_ = "pg_ctl start failed: " + tail(dir_ / "server.log");
  }

  static inline bool instance_started_ = false;
  std::mutex mu_;
  fs::path dir_;
  bool as_postgres_ = false;
  bool external_ = false;
  std::string base_url_;
  std::vector<std::string> created_;
  int port_ = 0;
  int databases_ = 0;
  std::string error_;
};

class PgEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (auto* c = PgCluster::started()) c->stop();
  }
};
[[maybe_unused]] const auto* const kPgEnvironment =
    ::testing::AddGlobalTestEnvironment(new PgEnvironment);

std::unique_ptr<Store> open_ok(const std::string& url, StoreOptions options = {}) {
  auto store = open_store(url, options);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
  return store.ok() ? std::move(store).value() : nullptr;
}

std::unique_ptr<Tx> begin_write(Store& store) {
  auto tx = store.write();
  EXPECT_TRUE(tx.ok()) << (tx.ok() ? "" : tx.error().message);
  return tx.ok() ? std::move(tx).value() : nullptr;
}

std::unique_ptr<Tx> begin_read(Store& store) {
  auto tx = store.read();
  EXPECT_TRUE(tx.ok()) << (tx.ok() ? "" : tx.error().message);
  return tx.ok() ? std::move(tx).value() : nullptr;
}

void exec_ok(Tx& tx, std::string_view sql, std::vector<SqlValue> params = {}) {
  auto r = tx.exec(sql, params);
  ASSERT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
}

Rows query_ok(Tx& tx, std::string_view sql, std::vector<SqlValue> params = {}) {
  auto r = tx.query(sql, params);
  EXPECT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Rows{};
}

std::int64_t count(Store& store, const std::string& table) {
  auto tx = begin_read(store);
  auto rows = tx->query("SELECT count(*) FROM " + table);
  EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
  return rows.ok() ? std::get<std::int64_t>(rows->rows[0][0]) : -1;
}

const Migration kPeople{1, "people", {"CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT)"}};

// Each test gets a database of its own on the shared cluster, with table t.
class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = PgCluster::get();
    ASSERT_TRUE(cluster.ok()) << cluster.error();
    url_ = cluster.create_database();
    store_ = open_ok(url_);
    ASSERT_NE(store_, nullptr);
    auto tx = begin_write(*store_);
    exec_ok(*tx,
            "CREATE TABLE t(id BIGINT PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "
            "email TEXT UNIQUE, name TEXT NOT NULL)");
    ASSERT_TRUE(tx->commit().ok());
  }

  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_F(PgStoreTest, RoundTripsEverySqlValueType) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "CREATE TABLE v(i BIGINT, r DOUBLE PRECISION, s TEXT, n TEXT)");
  std::vector<SqlValue> params{std::int64_t{-9007199254740993}, 0.1 + 0.2,
                               std::string("héllo 'x' \"y\" \\ 字节"), std::monostate{}};
  auto changed = tx->exec("INSERT INTO v VALUES (?, ?, ?, ?)", params);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_EQ(*changed, 1);
  Rows rows = query_ok(*tx, "SELECT i, r, s, n FROM v");
  EXPECT_EQ(rows.columns, (std::vector<std::string>{"i", "r", "s", "n"}));
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(rows.rows[0], params);  // the double survives bit for bit
  ASSERT_TRUE(tx->commit().ok());
}

// Every read and write is a round trip: with a no-wait routing (an I/O thread trying a quick
// request) both are refused at once and say so, so the request runs again on a worker.
TEST_F(PgStoreTest, NoWaitRoutingRefusesEveryReadAndWrite) {
  ReadRouting routing;
  routing.no_wait = true;
  routing.share_reads = true;
  ScopedReadRouting scope(routing);
  auto read = store_->read();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, Errc::kBusy);
  EXPECT_TRUE(routing.would_wait);
  routing.would_wait = false;
  auto write = store_->write();
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().code, Errc::kBusy);
  EXPECT_TRUE(routing.would_wait);
  routing.no_wait = false;  // on a worker: reads as usual
  EXPECT_TRUE(store_->read().ok());
}

// Dialect::bulk_insert is a plain INSERT here: a multi-row insert failing in the middle writes
// nothing, and the dropped transaction leaves nothing either.
TEST_F(PgStoreTest, BulkInsertFailingMidStatementChangesNothing) {
  EXPECT_EQ(store_->dialect().bulk_insert(), "INSERT");
  {
    auto tx = begin_write(*store_);
    auto r = tx->exec(store_->dialect().bulk_insert() +
                      " INTO t(email, name) VALUES ('a@x.cn', 'a'), ('b@x.cn', 'b'), "
                      "('a@x.cn', 'again'), ('c@x.cn', 'c')");
    ASSERT_FALSE(r.ok());
  }
  EXPECT_EQ(count(*store_, "t"), 0);
}

TEST_F(PgStoreTest, ResultTypesFollowTheColumnType) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "CREATE TABLE n(a INTEGER, b BIGINT)");
  exec_ok(*tx, "INSERT INTO n VALUES (?, ?)", {std::int64_t{2}, std::int64_t{5000000000}});
  Rows r = query_ok(*tx,
                    "SELECT 1::smallint, 2::int, sum(b), 1.5::numeric, 2.5::real, true, false, "
                    "'x'::varchar, now()::date IS NOT NULL, avg(a) FROM n");
  ASSERT_EQ(r.rows.size(), 1u);
  const auto& row = r.rows[0];
  EXPECT_EQ(row[0], SqlValue(std::int64_t{1}));
  EXPECT_EQ(row[1], SqlValue(std::int64_t{2}));
  EXPECT_EQ(row[2], SqlValue(std::int64_t{5000000000}));  // SUM(bigint) is numeric
  EXPECT_EQ(row[3], SqlValue(1.5));
  EXPECT_EQ(row[4], SqlValue(2.5));
  EXPECT_EQ(row[5], SqlValue(std::int64_t{1}));  // booleans are 0/1 as on SQLite
  EXPECT_EQ(row[6], SqlValue(std::int64_t{0}));
  EXPECT_EQ(row[7], SqlValue(std::string("x")));
  EXPECT_EQ(row[8], SqlValue(std::int64_t{1}));
  EXPECT_EQ(row[9], SqlValue(2.0));
}

TEST_F(PgStoreTest, FailingNulInTextIsValidationAndLeavesTheTxUsable) {
  auto tx = begin_write(*store_);
  auto r = tx->exec("INSERT INTO t(name) VALUES (?)", {{SqlValue(std::string("a\0b", 3))}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
  exec_ok(*tx, "INSERT INTO t(name) VALUES ('ok')");
  EXPECT_TRUE(tx->commit().ok());
  EXPECT_EQ(count(*store_, "t"), 1);
}

TEST_F(PgStoreTest, SqliteIntegerAndRealInTableDdlAre64Bit) {
  auto tx = begin_write(*store_);
  // Migrations are written once for both backends with SQLite's type names.
  exec_ok(*tx,
          "CREATE TABLE big(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, r REAL, "
          "\"INTEGER\" TEXT)");
  exec_ok(*tx, "ALTER TABLE big ADD COLUMN later integer");
  const std::int64_t huge = 1LL << 40;
  exec_ok(*tx, "INSERT INTO big VALUES (?, ?, ?, 'INTEGER', ?)", {huge, huge + 1, 0.1, huge + 2});
  Rows r = query_ok(*tx, "SELECT id, at, r, \"INTEGER\", later FROM big");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0],
            (std::vector<SqlValue>{huge, huge + 1, 0.1, std::string("INTEGER"), huge + 2}));
  Rows types = query_ok(*tx,
                        "SELECT data_type FROM information_schema.columns WHERE table_name = "
                        "'big' AND column_name = 'r'");
  EXPECT_EQ(types.rows[0][0], SqlValue(std::string("double precision")));
  ASSERT_TRUE(tx->commit().ok());
}

TEST_F(PgStoreTest, ExecReturnsRowsChangedAndZeroForDdlAndQueries) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "INSERT INTO t(name) VALUES ('a')");
  exec_ok(*tx, "INSERT INTO t(name) VALUES ('b')");
  auto updated = tx->exec("UPDATE t SET name = 'c'");
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(*updated, 2);
  auto ddl = tx->exec("CREATE INDEX t_name ON t(name)");
  ASSERT_TRUE(ddl.ok());
  EXPECT_EQ(*ddl, 0);
  auto select = tx->exec("SELECT * FROM t");
  ASSERT_TRUE(select.ok());
  EXPECT_EQ(*select, 0);
}

TEST_F(PgStoreTest, CommitPersistsAndDestructorRollsBack) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('kept')");
    ASSERT_TRUE(tx->commit().ok());
  }
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('dropped')");
  }
  EXPECT_EQ(count(*store_, "t"), 1);
  store_.reset();
  store_ = open_ok(url_);
  EXPECT_EQ(count(*store_, "t"), 1);
}

TEST_F(PgStoreTest, FailingUseAfterCommit) {
  auto tx = begin_write(*store_);
  ASSERT_TRUE(tx->commit().ok());
  EXPECT_EQ(tx->exec("INSERT INTO t(name) VALUES ('x')").error().code, Errc::kInternal);
  EXPECT_EQ(tx->commit().error().code, Errc::kInternal);
}

TEST_F(PgStoreTest, FailingUniqueViolationIsDuplicateNamingTheField) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(id, email, name) VALUES (1, 'a@x.org', 'A')");
    exec_ok(*tx, "CREATE TABLE pair(a BIGINT, b TEXT, PRIMARY KEY (a, b))");
    exec_ok(*tx, "CREATE TABLE rec(id BIGINT PRIMARY KEY, \"code\" TEXT, deleted_at TEXT)");
    // The record layer's unique index: live records only.
    exec_ok(*tx,
            "CREATE UNIQUE INDEX IF NOT EXISTS \"ix_rec__code\" ON \"rec\" (\"code\") "
            "WHERE deleted_at IS NULL");
    exec_ok(*tx, "INSERT INTO pair VALUES (1, 'x')");
    exec_ok(*tx, "INSERT INTO rec VALUES (1, 'C-1', '2026-01-01'), (2, 'C-1', NULL)");
    ASSERT_TRUE(tx->commit().ok());
  }
  struct Case {
    const char* sql;
    const char* field;
  } cases[] = {
      {"INSERT INTO t(id, email, name) VALUES (2, 'a@x.org', 'B')", "email"},
      {"INSERT INTO t(id, name) VALUES (1, 'C')", "id"},
      {"INSERT INTO pair VALUES (1, 'x')", "a"},
      {"INSERT INTO rec VALUES (3, 'C-1', NULL)", "code"},
  };
  for (const auto& c : cases) {
    auto tx = begin_write(*store_);
    auto dup = tx->exec(c.sql);
    ASSERT_FALSE(dup.ok()) << c.sql;
    EXPECT_EQ(dup.error().code, Errc::kDuplicate) << c.sql;
    EXPECT_EQ(dup.error().field, c.field) << c.sql;
    // PostgreSQL aborts the transaction: later statements and the commit report the error.
    auto later = tx->exec("INSERT INTO t(name) VALUES ('later')");
    ASSERT_FALSE(later.ok());
    EXPECT_EQ(later.error().code, Errc::kDuplicate);
    EXPECT_NE(later.error().message.find("earlier error"), std::string::npos);
    auto committed = tx->commit();
    ASSERT_FALSE(committed.ok());
    EXPECT_EQ(committed.error().code, Errc::kDuplicate);
  }
  EXPECT_EQ(count(*store_, "t"), 1);
  // The connections went back to the pool rolled back and usable.
  auto tx = begin_write(*store_);
  exec_ok(*tx, "INSERT INTO t(id, email, name) VALUES (2, 'b@x.org', 'B')");
  EXPECT_TRUE(tx->commit().ok());
  EXPECT_EQ(count(*store_, "t"), 2);
}

TEST_F(PgStoreTest, FailingNotNullIsValidationNamingTheField) {
  auto tx = begin_write(*store_);
  auto r = tx->exec("INSERT INTO t(email) VALUES ('a@x.org')");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
  EXPECT_EQ(r.error().field, "name");
}

TEST_F(PgStoreTest, FailingForeignKeyAndCheckAreValidation) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx,
            "CREATE TABLE child(id BIGINT PRIMARY KEY, t_id BIGINT REFERENCES t(id), "
            "n BIGINT CHECK (n > 0))");
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_write(*store_);
  auto r = tx->exec("INSERT INTO child(id, t_id) VALUES (1, 42)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
  EXPECT_EQ(r.error().field, "t_id");
  auto tx2 = begin_write(*store_);
  auto c = tx2->exec("INSERT INTO child(id, n) VALUES (1, -1)");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kValidation);
}

TEST_F(PgStoreTest, FailingMultipleStatementsAndBadSql) {
  auto tx = begin_write(*store_);
  auto multi = tx->exec("INSERT INTO t(name) VALUES ('a'); DELETE FROM t");
  ASSERT_FALSE(multi.ok());
  EXPECT_EQ(multi.error().code, Errc::kInternal);
  auto params = tx->exec("INSERT INTO t(name) VALUES (?)");
  ASSERT_FALSE(params.ok());
  EXPECT_EQ(params.error().code, Errc::kInternal);
  // Refused before reaching the server: the transaction is intact.
  EXPECT_TRUE(tx->exec("INSERT INTO t(name) VALUES ('a'); -- trailing comment").ok());
  EXPECT_TRUE(tx->exec("INSERT INTO t(name) VALUES ('b');;  /* c */ ").ok());
  ASSERT_TRUE(tx->commit().ok());
  EXPECT_EQ(count(*store_, "t"), 2);

  auto bad_tx = begin_write(*store_);
  auto bad = bad_tx->query("SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kStorage);
  auto missing_tx = begin_write(*store_);
  auto missing = missing_tx->query("SELECT * FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kStorage);
}

TEST_F(PgStoreTest, FailingWriteOnReader) {
  auto tx = begin_read(*store_);
  auto r = tx->exec("INSERT INTO t(name) VALUES ('a')");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kStorage);
}

TEST_F(PgStoreTest, QuestionMarksInLiteralsIdentifiersAndCommentsAreNotPlaceholders) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "CREATE TABLE \"q?t\"(\"a?\" TEXT, b TEXT, c TEXT)");
  exec_ok(*tx, "INSERT INTO \"q?t\"(\"a?\", b, c) VALUES ('what?', ?, E'it\\'s?') -- really?\n",
          {std::string("param")});
  Rows r = query_ok(*tx,
                    "SELECT \"a?\", b, c, '?''?' FROM \"q?t\" /* ? /* nested ? */ ? */ "
                    "WHERE \"a?\" = 'what?' AND b = ? AND c LIKE ? ESCAPE '\\' AND $$?$$ = '?'",
                    {std::string("param"), std::string("it\\'s%")});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0], (std::vector<SqlValue>{std::string("what?"), std::string("param"),
                                              std::string("it's?"), std::string("?'?")}));
}

TEST_F(PgStoreTest, CachedSelectStarSurvivesAnAddedColumn) {
  StoreOptions options;
  options.pool_size = 1;  // one connection, so the cached statement is reused
  auto store = open_ok(url_, options);
  {
    auto tx = begin_write(*store);
    exec_ok(*tx, "INSERT INTO t(id, name) VALUES (1, 'a')");
    EXPECT_EQ(query_ok(*tx, "SELECT * FROM t").columns.size(), 3u);
    exec_ok(*tx, "ALTER TABLE t ADD COLUMN extra TEXT");
    ASSERT_TRUE(tx->commit().ok());
  }
  // PostgreSQL refuses the stale statement once; the next transaction prepares it afresh.
  for (int i = 0; i < 2; ++i) {
    auto tx = begin_read(*store);
    auto rows = tx->query("SELECT * FROM t");
    if (rows.ok()) {
      EXPECT_EQ(rows->columns.size(), 4u);
      return;
    }
  }
  ADD_FAILURE() << "SELECT * kept failing after ALTER TABLE";
}

TEST_F(PgStoreTest, MoreThanNinePlaceholders) {
  auto tx = begin_write(*store_);
  exec_ok(*tx,
          "CREATE TABLE wide(c1 BIGINT, c2 BIGINT, c3 BIGINT, c4 BIGINT, c5 BIGINT, c6 BIGINT, "
          "c7 BIGINT, c8 BIGINT, c9 BIGINT, c10 BIGINT, c11 TEXT, c12 BIGINT)");
  std::vector<SqlValue> values;
  for (int i = 1; i <= 12; ++i) {
    values.push_back(i == 11 ? SqlValue(std::string("eleven")) : SqlValue(std::int64_t{i * 10}));
  }
  exec_ok(*tx, "INSERT INTO wide VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values);
  Rows r = query_ok(*tx, "SELECT * FROM wide WHERE c10 = ? AND c11 = ? AND c12 = ?",
                    {std::int64_t{100}, std::string("eleven"), std::int64_t{120}});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0], values);
}

TEST_F(PgStoreTest, PortableQueryShapesOfTheRecordLayer) {
  auto tx = begin_write(*store_);
  exec_ok(*tx,
          "CREATE TABLE \"user\" (\"id\" BIGINT PRIMARY KEY, \"name\" TEXT, "
          "\"role\" TEXT, deleted_at TEXT)");
  exec_ok(*tx,
          "INSERT INTO \"user\" VALUES (1, 'Ann_a', 'admin', NULL), (2, NULL, NULL, NULL), "
          "(3, 'anna', 'sales', '2026-01-01T00:00:00Z')");
  Rows asc = query_ok(*tx,
                      "SELECT \"id\" FROM \"user\" ORDER BY \"name\" ASC NULLS FIRST, "
                      "\"id\" DESC NULLS LAST LIMIT ?",
                      {std::int64_t{10}});
  ASSERT_EQ(asc.rows.size(), 3u);
  EXPECT_EQ(asc.rows[0][0], SqlValue(std::int64_t{2}));
  Rows like = query_ok(*tx,
                       "SELECT \"id\" FROM \"user\" WHERE \"name\" " + store_->dialect().ilike() +
                           " ? ESCAPE '\\' AND deleted_at IS NULL",
                       {std::string("%N\\_A%")});
  ASSERT_EQ(like.rows.size(), 1u);
  EXPECT_EQ(like.rows[0][0], SqlValue(std::int64_t{1}));
}

// The snapshot is taken at the read's first statement (which carries the deferred BEGIN).
TEST_F(PgStoreTest, ReaderSeesOneSnapshotWhileWriterCommits) {
  auto reader = begin_read(*store_);
  Rows before = query_ok(*reader, "SELECT count(*) FROM t");
  EXPECT_EQ(before.rows[0][0], SqlValue(std::int64_t{0}));
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('new')");
    ASSERT_TRUE(tx->commit().ok());
  }
  Rows rows = query_ok(*reader, "SELECT count(*) FROM t");
  EXPECT_EQ(rows.rows[0][0], SqlValue(std::int64_t{0}));
  reader.reset();
  EXPECT_EQ(count(*store_, "t"), 1);
}

// Round trips a caller waits for: BEGIN travels with the first statement, a statement not yet
// prepared is prepared in the same pipeline, a read's end is not waited for; a transaction
// that runs nothing sends nothing. The answer to the unawaited end is read by the next user of
// the connection, which finds it idle (not "idle in transaction").
TEST_F(PgStoreTest, ReadsWaitForOneRoundTripPerStatement) {
  StoreOptions options;
  options.pool_size = 1;
  auto opened = postgres::PgStore::open(url_, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  postgres::PgStore& store = **opened;
  {
    auto w = begin_write(store);
    exec_ok(*w, "INSERT INTO t(id, name) VALUES (7, 'seven')");
    ASSERT_TRUE(w->commit().ok());
  }
  const std::string sql = "SELECT name FROM t WHERE id = ? AND name <> 'rt-test'";
  for (int round = 0; round < 2; ++round) {  // first: not prepared yet; then: cached
    const auto before = store.round_trips();
    {
      auto tx = begin_read(store);
      Rows rows = query_ok(*tx, sql, {std::int64_t{7}});
      ASSERT_EQ(rows.rows.size(), 1u);
      EXPECT_EQ(rows.rows[0][0], SqlValue(std::string("seven")));
      ASSERT_TRUE(tx->commit().ok());
    }
    EXPECT_EQ(store.round_trips() - before, 1u) << "round " << round;
  }
  // Two statements in one read: two round trips, one snapshot (checked above).
  auto before = store.round_trips();
  {
    auto tx = begin_read(store);
    query_ok(*tx, sql, {std::int64_t{7}});
    query_ok(*tx, sql, {std::int64_t{8}});
  }  // destroyed without commit: rolled back without waiting
  EXPECT_EQ(store.round_trips() - before, 2u);
  // Nothing run: nothing sent.
  before = store.round_trips();
  { ASSERT_TRUE(begin_read(store)->commit().ok()); }
  { auto unused = begin_write(store); }
  EXPECT_EQ(store.round_trips(), before);
  // A write: BEGIN with the statement, then the waited COMMIT.
  before = store.round_trips();
  {
    auto w = begin_write(store);
    exec_ok(*w, "UPDATE t SET name = 'seven' WHERE id = ?", {std::int64_t{7}});
    ASSERT_TRUE(w->commit().ok());
  }
  EXPECT_EQ(store.round_trips() - before, 2u);
  // The unawaited end reaches the server at once: the read's backend turns idle (its snapshot
  // released) while the connection waits unused in the pool.
  std::int64_t pid = 0;
  {
    auto tx = begin_read(store);
    pid = std::get<std::int64_t>(query_ok(*tx, "SELECT pg_backend_pid()").rows[0][0]);
  }
  std::string state;
  for (int i = 0; i < 200 && state != "idle"; ++i) {  // polled: up to 20 s on a loaded machine
    auto tx = begin_read(*store_);
    Rows rows = query_ok(*tx, "SELECT state FROM pg_stat_activity WHERE pid = ?", {pid});
    state = rows.rows.empty() ? "" : std::get<std::string>(rows.rows[0][0]);
    if (state != "idle") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(state, "idle");
  // …and the next user of that connection reads the answer and proceeds.
  auto tx = begin_read(store);
  EXPECT_EQ(query_ok(*tx, "SELECT pg_backend_pid()").rows[0][0], SqlValue(pid));
}

// Tx::query_many: every statement, the deferred BEGIN and the Parse of statements not prepared
// yet go in one pipeline: one round trip, each statement's rows in the order asked.
TEST_F(PgStoreTest, QueryManyIsOneRoundTripAnsweringEachStatementInOrder) {
  StoreOptions options;
  options.pool_size = 1;
  auto opened = postgres::PgStore::open(url_, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  postgres::PgStore& store = **opened;
  {
    auto w = begin_write(store);
    exec_ok(*w, "INSERT INTO t(id, name) VALUES (7, 'seven'), (8, 'eight')");
    ASSERT_TRUE(w->commit().ok());
  }
  const std::string by_id = "SELECT name FROM t WHERE id = ? AND name <> 'query-many'";
  const std::string counted = "SELECT count(*) FROM t WHERE name <> ?";
  const std::vector<SqlValue> seven{std::int64_t{7}}, eight{std::int64_t{8}},
      none{std::string("none")};
  const std::vector<Tx::Query> queries{{by_id, seven}, {counted, none}, {by_id, eight}};
  for (int round = 0; round < 2; ++round) {  // first: nothing prepared; then: cached
    const auto before = store.round_trips();
    auto tx = begin_read(store);
    auto answers = tx->query_many(queries);
    ASSERT_TRUE(answers.ok()) << answers.error().message;
    EXPECT_EQ(store.round_trips() - before, 1u) << "round " << round;
    ASSERT_EQ(answers->size(), 3u);
    EXPECT_EQ((*answers)[0].rows, (std::vector<std::vector<SqlValue>>{{std::string("seven")}}));
    EXPECT_EQ((*answers)[1].rows, (std::vector<std::vector<SqlValue>>{{std::int64_t{2}}}));
    EXPECT_EQ((*answers)[2].rows, (std::vector<std::vector<SqlValue>>{{std::string("eight")}}));
    EXPECT_EQ((*answers)[1].columns, (std::vector<std::string>{"count"}));
    // In the transaction: a later statement sees the same snapshot and runs.
    EXPECT_EQ(query_ok(*tx, counted, none).rows[0][0], SqlValue(std::int64_t{2}));
    ASSERT_TRUE(tx->commit().ok());
  }
}

// A statement failing in the middle of a pipeline: the call answers that statement's error
// (the later ones did not run), the transaction is aborted as after a failed query(), and the
// connection (the pool's only one) serves the next transaction, its prepared statements intact.
// A statement refused before anything is sent (wrong parameter count) sends none of them and
// leaves the transaction usable.
TEST_F(PgStoreTest, FailingQueryManyMidwayAnswersItsErrorAndLeavesTheConnectionUsable) {
  StoreOptions options;
  options.pool_size = 1;
  auto opened = postgres::PgStore::open(url_, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  postgres::PgStore& store = **opened;
  {
    auto w = begin_write(store);
    exec_ok(*w, "INSERT INTO t(id, name) VALUES (7, 'seven')");
    ASSERT_TRUE(w->commit().ok());
  }
  const std::string by_id = "SELECT name FROM t WHERE id = ? AND name <> 'failing-many'";
  const std::string divide = "SELECT 10 / (? - 1) AS q";  // prepares; fails when run with 1
  const std::vector<SqlValue> seven{std::int64_t{7}}, one{std::int64_t{1}}, three{std::int64_t{3}};
  for (const std::string& bad : {std::string("SELECT * FROM no_such_table WHERE id = ?"), divide}) {
    auto tx = begin_read(store);
    const std::vector<Tx::Query> queries{{by_id, seven}, {bad, one}, {by_id, seven}};
    auto answers = tx->query_many(queries);
    ASSERT_FALSE(answers.ok()) << bad;
    // A data exception is a validation error, as from query().
    EXPECT_EQ(answers.error().code, bad == divide ? Errc::kValidation : Errc::kStorage);
    EXPECT_NE(answers.error().message.find(bad == divide ? "division by zero" : "no_such_table"),
              std::string::npos)
        << answers.error().message;
    auto after = tx->query(by_id, seven);
    ASSERT_FALSE(after.ok());
    EXPECT_NE(after.error().message.find("transaction aborted by an earlier error"),
              std::string::npos)
        << after.error().message;
  }
  // The next transaction on the same connection: both statements (the division prepared by
  // the failed pipeline) run.
  {
    auto tx = begin_read(store);
    const std::vector<Tx::Query> queries{{by_id, seven}, {divide, three}};
    auto answers = tx->query_many(queries);
    ASSERT_TRUE(answers.ok()) << answers.error().message;
    EXPECT_EQ((*answers)[0].rows, (std::vector<std::vector<SqlValue>>{{std::string("seven")}}));
    EXPECT_EQ((*answers)[1].rows, (std::vector<std::vector<SqlValue>>{{std::int64_t{5}}}));
    ASSERT_TRUE(tx->commit().ok());
  }
  // Refused before sending: nothing ran, the transaction goes on.
  {
    auto tx = begin_read(store);
    const std::vector<SqlValue> no_params;
    const std::vector<Tx::Query> queries{{by_id, seven}, {by_id, no_params}};
    const auto before = store.round_trips();
    auto answers = tx->query_many(queries);
    ASSERT_FALSE(answers.ok());
    EXPECT_EQ(answers.error().code, Errc::kInternal);
    EXPECT_NE(answers.error().message.find("statement expects 1 parameters, got 0"),
              std::string::npos)
        << answers.error().message;
    EXPECT_EQ(store.round_trips(), before);
    EXPECT_EQ(query_ok(*tx, by_id, seven).rows.size(), 1u);
    ASSERT_TRUE(tx->commit().ok());
  }
}

// Tx::plan_once: the transaction's plan_cache_mode is force_generic_plan from the next
// statement (its SET LOCAL goes in that statement's pipeline: no round trip of its own), so a
// prepared statement runs its generic plan from its first execution on instead of a custom
// plan per execution; plan_once(false) sets it back, and the next transaction has the default.
TEST_F(PgStoreTest, PlanOnceRunsGenericPlansInThatTransactionWithoutARoundTrip) {
  StoreOptions options;
  options.pool_size = 1;
  auto opened = postgres::PgStore::open(url_, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  postgres::PgStore& store = **opened;
  const std::string mode = "SELECT current_setting('plan_cache_mode') AS m";
  const std::string by_id = "SELECT name FROM t WHERE id = ? AND name <> 'plan-once'";
  const std::string plans =
      "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE ?";
  {
    auto tx = begin_read(store);
    tx->plan_once(true);
    const auto before = store.round_trips();
    EXPECT_EQ(query_ok(*tx, mode).rows[0][0], SqlValue(std::string("force_generic_plan")));
    EXPECT_EQ(store.round_trips() - before, 1u) << "the SET went with the BEGIN and the query";
    for (std::int64_t id = 1; id <= 3; ++id) query_ok(*tx, by_id, {id});
    EXPECT_EQ(query_ok(*tx, plans, {std::string("%'plan-once'%")}).rows,
              (std::vector<std::vector<SqlValue>>{{std::int64_t{3}, std::int64_t{0}}}));
    tx->plan_once(false);
    EXPECT_EQ(query_ok(*tx, mode).rows[0][0], SqlValue(std::string("auto")));
    query_ok(*tx, by_id, {std::int64_t{4}});
    EXPECT_EQ(query_ok(*tx, plans, {std::string("%'plan-once'%")}).rows,
              (std::vector<std::vector<SqlValue>>{{std::int64_t{3}, std::int64_t{1}}}));
    tx->plan_once(true);
    ASSERT_TRUE(tx->commit().ok());  // a SET still due is simply not sent
  }
  auto tx = begin_read(store);
  EXPECT_EQ(query_ok(*tx, mode).rows[0][0], SqlValue(std::string("auto")));
}

// A GET's routing shares one read transaction among the thread's reads (authentication and
// the request): one BEGIN, one snapshot, one connection; a write or a failed statement ends it.
TEST_F(PgStoreTest, ReadsOfASharingRoutingAreOneTransaction) {
  StoreOptions options;
  options.pool_size = 1;  // sharing needs one connection even for nested reads
  auto opened = postgres::PgStore::open(url_, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  postgres::PgStore& store = **opened;
  {
    auto w = begin_write(store);
    exec_ok(*w, "INSERT INTO t(id, name) VALUES (7, 'seven')");
    ASSERT_TRUE(w->commit().ok());
  }
  const std::string sql = "SELECT name FROM t WHERE id = ? AND name <> 'share-test'";
  {  // prepare the statement on the connection, so that every round below is alike
    auto tx = begin_read(store);
    query_ok(*tx, sql, {std::int64_t{7}});
  }
  auto snapshot = [](Tx& tx) {
    return std::get<std::string>(query_ok(tx, "SELECT pg_current_snapshot()::text").rows[0][0]);
  };
  ReadRouting routing;
  routing.share_reads = true;
  {
    ScopedReadRouting scope(routing);
    const auto before = store.round_trips();
    std::string first;
    {
      auto auth = begin_read(store);  // as authentication: one statement, then committed
      EXPECT_EQ(query_ok(*auth, sql, {std::int64_t{7}}).rows.size(), 1u);
      first = snapshot(*auth);
      ASSERT_TRUE(auth->commit().ok());
    }
    // Another thread commits meanwhile: the shared snapshot does not see it.
    std::thread([&] {
      auto w = begin_write(*store_);
      exec_ok(*w, "INSERT INTO t(id, name) VALUES (8, 'eight')");
      EXPECT_TRUE(w->commit().ok());
    }).join();
    {
      auto request = begin_read(store);  // the request's read: the same transaction
      auto nested = begin_read(store);   // nested: also the same (pool size 1 would block)
      EXPECT_TRUE(query_ok(*request, sql, {std::int64_t{8}}).rows.empty());
      EXPECT_EQ(snapshot(*nested), first);
    }
    EXPECT_EQ(store.round_trips() - before, 4u) << "no BEGIN or end waited beyond the first";
    // A failed statement takes the transaction out of the routing; the next read is fresh.
    {
      auto tx = begin_read(store);
      EXPECT_FALSE(tx->query("SELECT * FROM no_such_table").ok());
    }
    {
      auto tx = begin_read(store);
      EXPECT_EQ(query_ok(*tx, sql, {std::int64_t{8}}).rows.size(), 1u);
    }
    // A write ends the sharing (with pool size 1 it gets the connection) and later reads see it.
    {
      auto w = begin_write(store);
      exec_ok(*w, "UPDATE t SET name = 'sieben' WHERE id = ?", {std::int64_t{7}});
      ASSERT_TRUE(w->commit().ok());
    }
    {
      auto tx = begin_read(store);
      EXPECT_EQ(query_ok(*tx, "SELECT name FROM t WHERE id = 7").rows[0][0],
                SqlValue(std::string("sieben")));
    }
    EXPECT_NE(routing.shared_read, nullptr);
  }
  EXPECT_EQ(routing.shared_read, nullptr) << "the scope's end ends the shared transaction";
  // Without sharing every read is its own transaction again (and the connection is free).
  auto a = begin_read(store);
  EXPECT_NE(snapshot(*a), "");
}

TEST_F(PgStoreTest, TransactionsWaitForAPooledConnectionThenTimeOut) {
  StoreOptions options;
  options.pool_size = 1;
  options.busy_timeout_ms = 3000;
  auto store = open_ok(url_, options);
  auto held = begin_read(*store);
  std::atomic<bool> got{false};
  std::thread other([&] {
    auto tx = store->write();
    EXPECT_TRUE(tx.ok());
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(got);
  held.reset();
  other.join();
  EXPECT_TRUE(got);

  options.busy_timeout_ms = 100;
  auto impatient = open_ok(url_, options);
  auto hold = begin_write(*impatient);
  auto r = impatient->read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBusy);
}

// Counts a thread's waits as a worker pool's BlockingObserver sees them (http::Server grows its
// pool while a handler waits inside a ScopedBlocking, so that waiting handlers leave the others
// free to run).
class CountingObserver final : public BlockingObserver {
 public:
  void enter() override {
    ++entered_;
    ++waiting_;
  }
  void leave() override { --waiting_; }
  int entered() const { return entered_; }
  int waiting() const { return waiting_; }

 private:
  std::atomic<int> entered_{0};
  std::atomic<int> waiting_{0};
};

// Polls `done` for up to 30 s; its last answer.
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 3000 && !done(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return done();
}

TEST_F(PgStoreTest, StatementWaitingForTheServerIsInsideScopedBlocking) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(id, name) VALUES (1, 'a')");
    ASSERT_TRUE(tx->commit().ok());
  }
  StoreOptions options;
  options.busy_timeout_ms = 60000;
  auto store = open_ok(url_, options);
  auto holder = begin_write(*store);
  exec_ok(*holder, "UPDATE t SET name = 'holder' WHERE id = 1");
  CountingObserver observer;
  std::atomic<bool> updated{false};
  std::thread waiter([&] {
    set_blocking_observer(&observer);
    auto tx = begin_write(*store);
    exec_ok(*tx, "UPDATE t SET name = 'waiter' WHERE id = 1");  // waits for the row lock
    EXPECT_TRUE(tx->commit().ok());
    updated = true;
    set_blocking_observer(nullptr);
  });
  // The waiter's UPDATE waits for the row lock in the server, and its thread is inside a
  // ScopedBlocking meanwhile: a worker pool would run other handlers.
  auto lock_waits = [&] {
    auto tx = begin_read(*store_);
    return std::get<std::int64_t>(
               query_ok(*tx,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")
                   .rows[0][0]) == 1;
  };
  ASSERT_TRUE(eventually(lock_waits));
  EXPECT_TRUE(eventually([&] { return observer.waiting() == 1; }));
  EXPECT_FALSE(updated);
  ASSERT_TRUE(holder->commit().ok());
  waiter.join();
  EXPECT_TRUE(updated);
  EXPECT_EQ(observer.waiting(), 0);
  EXPECT_GE(observer.entered(), 2);  // the UPDATE and the COMMIT
}

TEST_F(PgStoreTest, TransactionWaitingForAPooledConnectionIsInsideScopedBlocking) {
  StoreOptions options;
  options.pool_size = 1;
  options.busy_timeout_ms = 60000;
  auto store = open_ok(url_, options);
  auto held = begin_read(*store);
  query_ok(*held, "SELECT 1");
  CountingObserver observer;
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    set_blocking_observer(&observer);
    auto tx = store->read();  // waits for the one connection
    EXPECT_TRUE(tx.ok());
    got = true;
    set_blocking_observer(nullptr);
  });
  ASSERT_TRUE(eventually([&] { return observer.waiting() == 1; }));
  EXPECT_FALSE(got);
  held.reset();
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(observer.waiting(), 0);
}

TEST_F(PgStoreTest, FailingRowLockHeldPastTheBusyTimeoutIsBusy) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(id, name) VALUES (1, 'a')");
    ASSERT_TRUE(tx->commit().ok());
  }
  StoreOptions options;
  options.busy_timeout_ms = 200;
  auto store = open_ok(url_, options);
  auto first = begin_write(*store);
  exec_ok(*first, "UPDATE t SET name = 'first' WHERE id = 1");
  auto second = begin_write(*store);
  auto r = second->exec("UPDATE t SET name = 'second' WHERE id = 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBusy);
  EXPECT_TRUE(first->commit().ok());
}

TEST_F(PgStoreTest, ConcurrentWritersAllSucceed) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto tx = store_->write();
        if (!tx.ok()) {
          ++failures;
          continue;
        }
        std::vector<SqlValue> p{std::string("w") + std::to_string(t) + "_" + std::to_string(i)};
        if (!(*tx)->exec("INSERT INTO t(name) VALUES (?)", p).ok() || !(*tx)->commit().ok()) {
          ++failures;
        }
        auto rd = store_->read();
        if (!rd.ok() || !(*rd)->query("SELECT count(*) FROM t").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(count(*store_, "t"), kThreads * kPerThread);
}

TEST_F(PgStoreTest, FailingConnectionLossIsStorageAndThePoolRecovers) {
  StoreOptions options;
  options.pool_size = 1;
  auto store = open_ok(url_, options);
  auto tx = begin_write(*store);
  Rows pid = query_ok(*tx, "SELECT pg_backend_pid()");
  PgCluster::get().admin(url_, "SELECT pg_terminate_backend(" +
                                   std::to_string(std::get<std::int64_t>(pid.rows[0][0])) + ")");
  auto r = tx->query("SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kStorage);
  EXPECT_FALSE(tx->commit().ok());
  tx.reset();
  // The dead connection was dropped; the next transaction gets a fresh one.
  auto next = begin_write(*store);
  ASSERT_NE(next, nullptr);
  exec_ok(*next, "INSERT INTO t(name) VALUES ('after')");
  EXPECT_TRUE(next->commit().ok());

  // A pooled idle connection killed behind our back: BEGIN notices and retries once.
  Rows idle_pid = query_ok(*begin_read(*store), "SELECT pg_backend_pid()");
  PgCluster::get().admin(url_, "SELECT pg_terminate_backend(" +
                                   std::to_string(std::get<std::int64_t>(idle_pid.rows[0][0])) +
                                   ")");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto again = store->read();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE((*again)->query("SELECT 1").ok());
}

TEST_F(PgStoreTest, TableColumnsForMissingAndPresentTablesKeepTheTxUsable) {
  auto tx = begin_write(*store_);
  auto missing = tx->table_columns("no_such_table");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  auto present = tx->table_columns("t");
  ASSERT_TRUE(present.ok());
  ASSERT_TRUE(present->has_value());
  EXPECT_EQ(**present, (std::vector<std::string>{"id", "email", "name"}));
  exec_ok(*tx, "CREATE TABLE \"user\" (id BIGINT)");
  EXPECT_EQ(**tx->table_columns("user"), (std::vector<std::string>{"id"}));
  EXPECT_TRUE(tx->commit().ok());
}

TEST_F(PgStoreTest, SchemaSyncFromTwoStoresAtOnceDoesNotCollide) {
  // The record layer's sync: look at the table, then CREATE or ALTER it. Two servers starting
  // at once on a fresh database must not both try to create it.
  auto other = open_ok(url_);
  auto sync = [](Store& store, std::atomic<int>& failures) {
    auto tx = store.write();
    if (!tx.ok()) {
      ++failures;
      return;
    }
    auto cols = (*tx)->table_columns("shared");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // widen the window
    if (!cols.ok()) {
      ++failures;
    } else if (!cols->has_value()) {
      if (!(*tx)->exec("CREATE TABLE shared (id INTEGER PRIMARY KEY)").ok()) ++failures;
    } else if ((*cols)->size() == 1) {
      if (!(*tx)->exec("ALTER TABLE shared ADD COLUMN later TEXT").ok()) ++failures;
    }
    auto committed = (*tx)->commit();
    if (!committed.ok()) {
      ADD_FAILURE() << committed.error().message;
      ++failures;
    }
  };
  std::atomic<int> failures{0};
  std::thread a([&] { sync(*store_, failures); });
  std::thread b([&] { sync(*other, failures); });
  a.join();
  b.join();
  EXPECT_EQ(failures, 0);
  auto tx = begin_read(*store_);
  EXPECT_EQ(**tx->table_columns("shared"), (std::vector<std::string>{"id", "later"}));
}

TEST_F(PgStoreTest, DialectBackendBackupAndIntegrity) {
  EXPECT_EQ(store_->backend_name(), "postgresql");
  EXPECT_EQ(store_->dialect().column_type(ColumnType::kInteger), "BIGINT");
  EXPECT_EQ(store_->dialect().column_type(ColumnType::kReal), "DOUBLE PRECISION");
  EXPECT_EQ(store_->dialect().column_type(ColumnType::kText), "TEXT");
  EXPECT_EQ(store_->dialect().ilike(), "ILIKE");
  auto backup = store_->backup_to("/tmp/never-written.db");
  ASSERT_FALSE(backup.ok());
  EXPECT_EQ(backup.error().code, Errc::kBadRequest);
  EXPECT_EQ(backup.error().message, "use pg_dump for PostgreSQL backups");
  EXPECT_FALSE(fs::exists("/tmp/never-written.db"));
  EXPECT_EQ(*store_->integrity_check(), "ok");
  EXPECT_EQ(restore_store(url_, "/x").error().code, Errc::kBadRequest);
  // pg_trgm was enabled at open.
  auto tx = begin_read(*store_);
  Rows ext = query_ok(*tx, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'");
  EXPECT_EQ(ext.rows[0][0], SqlValue(std::int64_t{1}));
}

// Collects notifications delivered on the store's listener thread.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
  void add(std::string s) {
    std::lock_guard lock(mu);
    got.push_back(std::move(s));
    cv.notify_all();
  }
  // Waits (up to 10 s) until `n` messages arrived; returns them.
  std::vector<std::string> wait_for(std::size_t n) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.size() >= n; });
    return got;
  }
};

TEST_F(PgStoreTest, NotifyReachesListenersOfEveryStoreOnTheDatabaseInOrder) {
  ASSERT_TRUE(store_->notifies_others());  // what serve asks before building an event
  auto other = open_ok(url_);
  Inbox here, there, elsewhere;
  ASSERT_TRUE(store_->listen("events", [&](std::string s) { here.add(std::move(s)); }).ok());
  ASSERT_TRUE(other->listen("events", [&](std::string s) { there.add(std::move(s)); }).ok());
  ASSERT_TRUE(other->listen("other", [&](std::string s) { elsewhere.add(std::move(s)); }).ok());
  // LISTEN runs on each store's listener thread: ping until both hear, then start afresh.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(store_->notify("events", "ping").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::scoped_lock lock(here.mu, there.mu);
    if (!here.got.empty() && !there.got.empty()) break;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (Inbox* inbox : {&here, &there}) {
    std::lock_guard lock(inbox->mu);
    ASSERT_FALSE(inbox->got.empty());
    inbox->got.clear();
  }
  std::string big(Store::kMaxNotifyPayload, 'x');
  std::vector<std::string> sent{"one", "两 \"quoted\" 'x'", big};
  for (const auto& m : sent) ASSERT_TRUE(store_->notify("events", m).ok());
  EXPECT_EQ(there.wait_for(3), sent);
  EXPECT_EQ(here.wait_for(3), sent) << "the sender's own listeners hear it too";
  EXPECT_TRUE(elsewhere.got.empty());

  auto too_big = store_->notify("events", big + "x");
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, Errc::kBadRequest);

  // After stop_listening no callback runs.
  other->stop_listening();
  ASSERT_TRUE(store_->notify("events", "after").ok());
  EXPECT_EQ(here.wait_for(4).back(), "after");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(there.got.size(), 3u);
}

TEST_F(PgStoreTest, ListenerSurvivesALostConnectionAndReportsTheGap) {
  auto other = open_ok(url_);
  Inbox inbox;
  std::atomic<int> resumed{0};
  ASSERT_TRUE(other->listen("events", [&](std::string s) { inbox.add(std::move(s)); }).ok());
  other->on_listen_resumed([&] { ++resumed; });
  // The LISTEN happens on the listener's thread: send until one arrives.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(store_->notify("events", "before").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard lock(inbox.mu);
    if (!inbox.got.empty()) break;
  }
  {
    std::lock_guard lock(inbox.mu);
    ASSERT_FALSE(inbox.got.empty());
    inbox.got.clear();
  }
  EXPECT_EQ(resumed.load(), 0) << "the first connection is no resumption";
  PgCluster::get().admin(url_,
                         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                         "application_name = 'rapport-notify' AND datname = '" +
                             url_.substr(url_.rfind('/') + 1) + "'");
  // Messages sent while the listener reconnects may be lost; keep sending until one arrives.
  bool arrived = false;
  for (int i = 0; i < 100 && !arrived; ++i) {
    ASSERT_TRUE(store_->notify("events", "after " + std::to_string(i)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard lock(inbox.mu);
    arrived = std::any_of(inbox.got.begin(), inbox.got.end(),
                          [](const std::string& m) { return m.starts_with("after"); });
  }
  EXPECT_TRUE(arrived) << "the listener re-connected and LISTENs again";
  // The resumed callback ran, once.
  EXPECT_EQ(resumed.load(), 1);
  other->stop_listening();
}

TEST_F(PgStoreTest, NodeIdsOfLiveStoresDifferAndAreFreedOnClose) {
  std::vector<std::unique_ptr<Store>> stores;
  std::vector<int> ids;
  for (int i = 0; i < 5; ++i) {
    stores.push_back(open_ok(url_));
    auto id = stores.back()->claim_node_id();
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_GE(*id, 0);
    EXPECT_LT(*id, 256);
    EXPECT_EQ(*stores.back()->claim_node_id(), *id) << "claimed once per store";
    ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "no two live stores share one";
  auto held = [&] {
    return PgCluster::get().admin(
        url_,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND classid = 1918988400 AND granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())");
  };
  EXPECT_EQ(held(), "5");
  stores.clear();
  // Other tests running at the same time hold node numbers in their own databases; only this
  // test's database counts. The server notices a closed connection asynchronously.
  for (int i = 0; i < 250 && held() != "0"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(held(), "0") << "closing a store frees its number";
}

// Background jobs (the scheduled duplicate scan) run on one server of a database at a time.
TEST_F(PgStoreTest, JobLockIsHeldByOneStoreAtATime) {
  auto a = open_ok(url_);
  auto b = open_ok(url_);
  auto held = a->try_job_lock(7);
  ASSERT_TRUE(held.ok()) << held.error().message;
  ASSERT_TRUE(*held);
  auto refused = b->try_job_lock(7);
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_FALSE(*refused) << "another server holds it";
  auto same_store = a->try_job_lock(7);
  ASSERT_TRUE(same_store.ok());
  EXPECT_FALSE(*same_store) << "a second holder in the same process is refused too";
  auto other_key = b->try_job_lock(8);
  ASSERT_TRUE(other_key.ok());
  EXPECT_TRUE(*other_key) << "another key is a lock of its own";
  held->reset();
  // The server notices the closed connection asynchronously.
  bool taken = false;
  for (int i = 0; i < 250 && !taken; ++i) {
    auto again = b->try_job_lock(7);
    ASSERT_TRUE(again.ok()) << again.error().message;
    taken = static_cast<bool>(*again);
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(taken) << "closing the handle releases the lock";
}

// Read replicas (a real streaming replica is exercised by tests/api/replicas.test.mjs): what
// the routing does when no replica can serve.
TEST_F(PgStoreTest, WritesRecordTheirCommitPositionOnlyWithReplicas) {
  ReadRouting routing;
  ScopedReadRouting scope(routing);
  auto tx = begin_write(*store_);
  exec_ok(*tx, "INSERT INTO t(email, name) VALUES ('a@x', 'a')");
  ASSERT_TRUE(tx->commit().ok());
  EXPECT_EQ(routing.committed, 0u) << "no replicas: no position read";
  EXPECT_FALSE(store_->has_replicas());

  StoreOptions options;
  options.replicas = {"postgresql://postgres@127.0.0.1:1/none"};
  auto with = open_ok(url_, options);
  ASSERT_NE(with, nullptr);
  EXPECT_TRUE(with->has_replicas());
  auto w1 = begin_write(*with);
  exec_ok(*w1, "INSERT INTO t(email, name) VALUES ('b@x', 'b')");
  ASSERT_TRUE(w1->commit().ok());
  const std::uint64_t first = routing.committed;
  EXPECT_GT(first, 0u);
  auto w2 = begin_write(*with);
  exec_ok(*w2, "INSERT INTO t(email, name) VALUES ('c@x', 'c')");
  ASSERT_TRUE(w2->commit().ok());
  EXPECT_GT(routing.committed, first) << "positions grow with each commit";
}

TEST_F(PgStoreTest, UnreachableReplicaLeavesReadsToThePrimary) {
  StoreOptions options;
  options.replicas = {"postgresql://postgres@127.0.0.1:1/none"};
  auto store = open_ok(url_, options);
  ASSERT_NE(store, nullptr);
  ReadRouting routing;
  routing.replica_allowed = true;
  ScopedReadRouting scope(routing);
  for (int i = 0; i < 3; ++i) {  // the first try marks it down; later ones skip it
    auto tx = begin_read(*store);
    ASSERT_NE(tx, nullptr);
    EXPECT_EQ(count(*store, "t"), 0);
  }
  EXPECT_EQ(routing.replica_reads, 0);
}

TEST_F(PgStoreTest, ServerNotInRecoveryIsNoReplica) {
  StoreOptions options;
  options.replicas = {url_};  // the primary itself: pg_last_wal_replay_lsn() is NULL
  auto store = open_ok(url_, options);
  ASSERT_NE(store, nullptr);
  ReadRouting routing;
  routing.replica_allowed = true;
  ScopedReadRouting scope(routing);
  auto tx = begin_read(*store);
  ASSERT_NE(tx, nullptr);
  EXPECT_EQ(query_ok(*tx, "SELECT pg_is_in_recovery()").rows[0][0], SqlValue(std::int64_t{0}));
  EXPECT_EQ(routing.replica_reads, 0);
}

TEST(PgOpen, FailingReplicasOnSqlite) {
  StoreOptions options;
  options.replicas = {"postgresql://postgres@127.0.0.1:1/none"};
  auto dir = fs::temp_directory_path() / ("rapport_replica_" + std::to_string(::getpid()));
  auto r = open_store((dir / "x.db").string(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_EQ(r.error().message, "read replicas need a PostgreSQL database");
  EXPECT_EQ(r.error().field, "database-replica");
  EXPECT_FALSE(fs::exists(dir / "x.db"));
}

TEST(PgOpen, FailingUnreachableServerIsStorage) {
  for (const char* url :
       {"postgresql://postgres@127.0.0.1:1/rapport", "postgres://u@127.0.0.1:1/db"}) {
    auto r = open_store(url);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kStorage);
    EXPECT_TRUE(r.error().message.starts_with("cannot connect to PostgreSQL: "))
        << r.error().message;
  }
}

TEST(PgOpen, FailingMissingDatabaseIsStorage) {
  auto& cluster = PgCluster::get();
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  auto r = open_store(cluster.url("no_such_db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kStorage);
  EXPECT_NE(r.error().message.find("no_such_db"), std::string::npos);
}

// pg_trgm (search's "did you mean" index) is created when the store opens. A role that may not
// create it in a database that lacks it (no CREATE privilege on the database) is refused with
// a message that names the extension, not a later failure of the first trigram index.
TEST(PgOpen, FailingPgTrgmExtensionIsNamed) {
  auto& cluster = PgCluster::get();
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string url = cluster.create_database();
  const std::string role = "rp_noext_" + std::to_string(::getpid());
  cluster.admin(cluster.url("postgres"), "DROP ROLE IF EXISTS " + role);
  cluster.admin(cluster.url("postgres"), "CREATE ROLE " + role + " LOGIN");
  const std::string as_role = std::regex_replace(url, std::regex("//postgres@"), "//" + role + "@");
  ASSERT_NE(as_role, url);
  {
    auto r = open_store(as_role);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kStorage);
    EXPECT_EQ(r.error().message.rfind("cannot enable the pg_trgm extension: ", 0), 0u)
        << r.error().message;
    EXPECT_NE(r.error().message.find("permission denied"), std::string::npos) << r.error().message;
  }
  // Once the extension exists the same role opens the store.
  cluster.admin(url, "CREATE EXTENSION pg_trgm");
  {
    auto r = open_store(as_role);
    EXPECT_TRUE(r.ok()) << r.error().message;
  }
  cluster.admin(cluster.url("postgres"), "DROP ROLE " + role);
}

TEST(PgTranslate, PlaceholdersAndDdlTypes) {
  using postgres::translate_sql;
  int n = -1;
  EXPECT_EQ(*translate_sql("SELECT ? , ?", &n), "SELECT $1 , $2");
  EXPECT_EQ(n, 2);
  EXPECT_EQ(*translate_sql("SELECT '?', \"?\", ? -- ?\n", &n), "SELECT '?', \"?\", $1 -- ?\n");
  EXPECT_EQ(n, 1);
  EXPECT_EQ(*translate_sql("x LIKE ? ESCAPE '\\' AND y = ?", &n),
            "x LIKE $1 ESCAPE '\\' AND y = $2");
  EXPECT_EQ(*translate_sql("SELECT E'\\'?', 'it''s ?', ?", &n), "SELECT E'\\'?', 'it''s ?', $1");
  EXPECT_EQ(n, 1);
  EXPECT_EQ(*translate_sql("SELECT 1;  ", &n), "SELECT 1");
  EXPECT_EQ(translate_sql("SELECT 1; SELECT 2", &n).error().code, Errc::kInternal);
  EXPECT_EQ(*translate_sql("CREATE TABLE a (x INTEGER, y real, z int, \"integer\" TEXT)", &n),
            "CREATE TABLE a (x BIGINT, y DOUBLE PRECISION, z BIGINT, \"integer\" TEXT)");
  EXPECT_EQ(*translate_sql("ALTER TABLE a ADD COLUMN b INTEGER", &n),
            "ALTER TABLE a ADD COLUMN b BIGINT");
  EXPECT_EQ(*translate_sql("SELECT CAST(x AS INTEGER) FROM real_table", &n),
            "SELECT CAST(x AS INTEGER) FROM real_table");
}

TEST(PgMigrations, ApplyOnceAndAreIdempotentOnReopen) {
  auto& cluster = PgCluster::get();
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string url = cluster.create_database();
  std::vector<Migration> migrations{
      {2, "people_email", {"ALTER TABLE people ADD COLUMN email TEXT"}},
      kPeople,
  };
  {
    auto store = open_ok(url);
    ASSERT_EQ(*store->schema_version(), 0);
    auto s = store->migrate(migrations);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(*store->schema_version(), 2);
    ASSERT_TRUE(store->migrate(migrations).ok());  // nothing to do
  }
  auto store = open_ok(url);
  EXPECT_EQ(*store->schema_version(), 2);
  ASSERT_TRUE(store->migrate(migrations).ok());
  migrations.push_back({3, "people_phone", {"ALTER TABLE people ADD COLUMN phone TEXT"}});
  ASSERT_TRUE(store->migrate(migrations).ok());
  EXPECT_EQ(*store->schema_version(), 3);
  EXPECT_EQ(count(*store, "_migrations"), 3);
  auto tx = begin_read(*store);
  EXPECT_TRUE(tx->query("SELECT id, name, email, phone FROM people").ok());
  Rows applied = query_ok(*tx, "SELECT applied_at FROM _migrations WHERE version = 1");
  EXPECT_EQ(std::get<std::string>(applied.rows[0][0]).size(), 24u);  // 2026-01-01T00:00:00.000Z
}

TEST(PgMigrations, FailingMigrationLeavesNoTrace) {
  auto& cluster = PgCluster::get();
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  auto store = open_ok(cluster.create_database());
  std::vector<Migration> migrations{
      kPeople, {2, "broken", {"CREATE TABLE half(id INTEGER)", "CREATE TABLE people(x TEXT)"}}};
  auto s = store->migrate(migrations);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("broken"), std::string::npos);
  EXPECT_EQ(*store->schema_version(), 1);
  auto tx = begin_read(*store);
  EXPECT_FALSE(tx->query("SELECT * FROM half").ok());
}

TEST(PgMigrations, ConcurrentMigratorsApplyEachMigrationOnce) {
  auto& cluster = PgCluster::get();
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string url = cluster.create_database();
  std::vector<Migration> migrations{kPeople};
  for (int v = 2; v <= 6; ++v) {
    // Not idempotent: a second run of any of these would fail.
    migrations.push_back(
        {v,
         "step" + std::to_string(v),
         {"CREATE TABLE step" + std::to_string(v) + " (id INTEGER)",
          "INSERT INTO people(id, name) VALUES (" + std::to_string(v) + ", 'x')"}});
  }
  constexpr int kMigrators = 4;  // separate stores, as separate processes would be
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kMigrators; ++i) stores.push_back(open_ok(url));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (auto& store : stores) {
    threads.emplace_back([&, s = store.get()] {
      auto r = s->migrate(migrations);
      if (!r.ok()) {
        ADD_FAILURE() << r.error().message;
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(*stores[0]->schema_version(), 6);
  EXPECT_EQ(count(*stores[0], "_migrations"), 6);
  EXPECT_EQ(count(*stores[0], "people"), 5);
}

class PgFtsTest : public PgStoreTest {
 protected:
  // The (id, match) pairs of fts_page's first 50 entries for `q`, newest first (match: 1 when
  // every other key matches the entry's record), read in `tx`.
  using Matches = std::vector<std::pair<std::int64_t, std::int64_t>>;
  Matches page(Tx& tx, std::string_view q) {
    std::vector<SqlValue> params;
    const std::string sub = store_->dialect().fts_page("account", q, -1, nullptr, 50, params);
    Rows r =
        query_ok(tx, "SELECT fts_id, fts_match FROM " + sub + " f ORDER BY fts_id DESC", params);
    Matches out;
    for (const auto& row : r.rows)
      out.emplace_back(std::get<std::int64_t>(row[0]), std::get<std::int64_t>(row[1]));
    return out;
  }
  void SetUp() override {
    PgStoreTest::SetUp();
    if (HasFatalFailure()) return;
    auto tx = begin_write(*store_);
    exec_ok(*tx, "CREATE TABLE account(id BIGINT PRIMARY KEY, name TEXT)");
    for (const auto& sql : store_->dialect().fts_create("account")) exec_ok(*tx, sql);
    for (const auto& sql : store_->dialect().fts_create("account")) exec_ok(*tx, sql);  // again
    put(*tx, 1, "Acme Corporation Berlin");
    put(*tx, 2, "北京字节跳动科技有限公司");
    put(*tx, 3, "张三丰 武当山");
    put(*tx, 4, "Globex \"Quoted\" Inc. 100% real_deal");
    put(*tx, 5, "acme widgets london");
    for (int id = 1; id <= 5; ++id) {
      exec_ok(*tx, "INSERT INTO account VALUES (?, ?)", {std::int64_t{id}, std::string("n")});
    }
    ASSERT_TRUE(tx->commit().ok());
  }
  static void put(Tx& tx, std::int64_t id, std::string_view text) {
    auto s = tx.fts_put("account", id, text);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  using Ids = std::vector<std::int64_t>;
  Ids search(std::string_view q, int limit = 10) {
    auto tx = begin_read(*store_);
    auto ids = tx->fts_search("account", q, limit);
    EXPECT_TRUE(ids.ok()) << q << ": " << (ids.ok() ? "" : ids.error().message);
    Ids found = ids.ok() ? *ids : Ids{};
    // fts_condition, as the record layer uses it, finds the same records.
    std::vector<SqlValue> params;
    std::string where = store_->dialect().fts_condition("account", q, params);
    params.emplace_back(std::int64_t{limit});
    auto rows = tx->query(
        "SELECT \"id\" FROM account WHERE " + where + " ORDER BY \"id\" DESC LIMIT ?", params);
    EXPECT_TRUE(rows.ok()) << where << ": " << (rows.ok() ? "" : rows.error().message);
    Ids via_condition;
    if (rows.ok()) {
      for (const auto& r : rows->rows) via_condition.push_back(std::get<std::int64_t>(r[0]));
    }
    // The same set; fts_search orders by best match, the list above by id.
    Ids sorted = found;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    EXPECT_EQ(via_condition, sorted) << q;
    return found;
  }
};

TEST_F(PgFtsTest, WordPrefixesCaseInsensitiveBestFirst) {
  EXPECT_EQ(search("acme"), (Ids{5, 1}));
  EXPECT_EQ(search("a"), (Ids{5, 1})) << "one letter";
  EXPECT_EQ(search("ac"), (Ids{5, 1})) << "two letters";
  EXPECT_EQ(search("CORPORAT"), (Ids{1}));
  EXPECT_EQ(search("acme", 1), (Ids{5}));
  EXPECT_EQ(search("acme", 0), Ids{});
  EXPECT_EQ(search("cme"), Ids{}) << "inside a word is not a prefix";
  EXPECT_EQ(search("nothing-like-this"), Ids{});
  {
    auto tx = begin_write(*store_);
    put(*tx, 6, "Acmeco Trading");
    put(*tx, 7, "Ac Industries");
    for (int id = 6; id <= 7; ++id)
      exec_ok(*tx, "INSERT INTO account VALUES (?, ?)", {std::int64_t{id}, std::string("n")});
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("ac"), (Ids{7, 5, 1, 6})) << "the exact word first, then longer ones";
}

TEST_F(PgFtsTest, ChineseSubstrings) {
  EXPECT_EQ(search("字节跳动"), (Ids{2}));
  EXPECT_EQ(search("张三"), (Ids{3}));
  EXPECT_EQ(search("丰"), (Ids{3}));
  EXPECT_EQ(search("三"), (Ids{3}));
  EXPECT_EQ(search("北"), (Ids{2}));
  EXPECT_EQ(search("张三丰"), (Ids{3}));
  EXPECT_EQ(search("字节跳舞"), Ids{});
  // 北 is E5 8C 97; a character ending in byte BF (长 E9 95 BF, 广 E5 B9 BF) once made an upper
  // bound that was not UTF-8, which PostgreSQL refused (422 for "长" as in 长沙).
  {
    auto tx = begin_write(*store_);
    put(*tx, 7, "长沙广西实业");
    exec_ok(*tx, "INSERT INTO account VALUES (?, ?)", {std::int64_t{7}, std::string("n")});
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("长"), (Ids{7}));
  EXPECT_EQ(search("广"), (Ids{7}));
}

TEST_F(PgFtsTest, PhoneDigitsAndAccountId) {
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put("account", 8, "13812345678", SqlValue{std::int64_t{42}}).ok());
    exec_ok(*tx, "INSERT INTO account VALUES (?, ?)", {std::int64_t{8}, std::string("n")});
    ASSERT_TRUE(tx->commit().ok());
  }
  // A number by its start or its end (R-SEARCH), not by a fragment from its middle.
  for (const char* q : {"138", "5678", "12345678", "13812345678"})
    EXPECT_EQ(search(q), (Ids{8})) << q;
  for (const char* q : {"1234", "138-1234-5678"}) EXPECT_EQ(search(q), Ids{}) << q;
  auto tx = begin_read(*store_);
  Rows r = query_ok(*tx, "SELECT DISTINCT account_id FROM account_terms WHERE id = 8");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue(std::int64_t{42}));
  r = query_ok(*tx, "SELECT account_id FROM account_terms_of WHERE id = 8");
  EXPECT_EQ(r.rows[0][0], SqlValue(std::int64_t{42}));
}

TEST_F(PgFtsTest, MultiTermIsAnd) {
  EXPECT_EQ(search("acme berlin"), (Ids{1}));
  EXPECT_EQ(search("acme lo"), (Ids{5}));
  EXPECT_EQ(search("ac de"), Ids{});
  EXPECT_EQ(search("  字节\u3000科技  "), (Ids{2}));
  EXPECT_EQ(search("张三 武当山"), (Ids{3}));
  EXPECT_EQ(search("张三 acme"), Ids{});
}

TEST_F(PgFtsTest, QuotesAndWildcardsInTheQueryAreHarmless) {
  EXPECT_EQ(search("\"Quoted\""), (Ids{4}));
  EXPECT_EQ(search("\"Quo"), (Ids{4}));
  EXPECT_EQ(search("\""), Ids{});
  EXPECT_EQ(search("'); DROP TABLE t; --"), Ids{});
  EXPECT_EQ(search("?"), Ids{});
  EXPECT_EQ(search("100%"), (Ids{4}));
  EXPECT_EQ(search("%"), Ids{});
  EXPECT_EQ(search("real_d"), (Ids{4}));
  EXPECT_EQ(search("_"), Ids{});
  EXPECT_EQ(search("\\"), Ids{});
  EXPECT_EQ(search("OR"), Ids{});
  EXPECT_EQ(search("NOT acme"), Ids{});
  EXPECT_EQ(search("a*"), (Ids{5, 1}));
  EXPECT_EQ(search(""), Ids{});
  EXPECT_EQ(count(*store_, "t"), 0);
}

TEST_F(PgFtsTest, PutReplacesAndDeleteRemoves) {
  {
    auto tx = begin_write(*store_);
    put(*tx, 1, "Initech");
    ASSERT_TRUE(tx->fts_delete("account", 5).ok());
    ASSERT_TRUE(tx->fts_delete("account", 99).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("acme"), Ids{});
  EXPECT_EQ(search("berlin"), Ids{});
  EXPECT_EQ(search("init"), (Ids{1}));
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_clear("account").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("init"), Ids{});
  EXPECT_EQ(count(*store_, "account_terms_of"), 0);
}

TEST_F(PgFtsTest, PutManyFindsBulkRowsAndReplaces) {
  // Several statements' worth (500 rows each, then power-of-two remainders) of new records.
  std::vector<Tx::FtsRow> fresh;
  for (std::int64_t id = 100; id < 1300; ++id)
    fresh.push_back({id, "bulk item " + std::to_string(id) + (id == 777 ? " 东方明珠" : "")});
  {
    auto tx = begin_write(*store_);
    for (const auto& r : fresh)  // search() also checks fts_condition over the entity's table
      exec_ok(*tx, "INSERT INTO account VALUES (?, ?)", {r.id, std::string("n")});
    auto s = tx->fts_put_many("account", fresh, /*fresh=*/true);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("item 1234"), (Ids{1234}));
  EXPECT_EQ(search("明珠"), (Ids{777}));
  EXPECT_EQ(search("bulk", 5000).size(), 1200u);
  EXPECT_EQ(search("acme"), (Ids{5, 1})) << "records put one by one are untouched";
  // Re-putting replaces: bulk and single-put records, an id twice (the last text wins).
  std::vector<Tx::FtsRow> again{
      {1, "Initech"}, {777, "first text"}, {1299, "Umbrella"}, {777, "Hooli 东方"}};
  {
    auto tx = begin_write(*store_);
    auto s = tx->fts_put_many("account", again, /*fresh=*/false);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("acme"), (Ids{5}));
  EXPECT_EQ(search("initec"), (Ids{1}));
  EXPECT_EQ(search("明珠"), Ids{});
  EXPECT_EQ(search("first text"), Ids{});
  EXPECT_EQ(search("hooli"), (Ids{777}));
  EXPECT_EQ(search("umbrella"), (Ids{1299}));
  EXPECT_EQ(search("bulk", 5000).size(), 1198u);
  {
    auto tx = begin_write(*store_);
    EXPECT_TRUE(tx->fts_put_many("account", {}, true).ok()) << "nothing to put is fine";
    EXPECT_EQ(tx->fts_put_many("Account\"; --", again, false).error().code, Errc::kInternal);
  }
}

// Each full-text write as the first statement of a transaction (which carries the deferred
// BEGIN) still runs inside it: rolled back, it leaves nothing.
TEST_F(PgFtsTest, FirstStatementRunsInsideTheTransaction) {
  const std::vector<Tx::FtsRow> rows{{900, "rolled back many"}};
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, /*fresh=*/true).ok());
  }
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put("account", 901, "rolled back one").ok());
  }
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_delete("account", 1).ok());
  }
  auto tx = begin_read(*store_);
  Rows n = query_ok(*tx, "SELECT count(*) FROM account_terms_of WHERE id IN (1, 900, 901)");
  EXPECT_EQ(n.rows[0][0], SqlValue(std::int64_t{1}));
  n = query_ok(*tx, "SELECT count(DISTINCT id) FROM account_terms WHERE id IN (1, 900, 901)");
  EXPECT_EQ(n.rows[0][0], SqlValue(std::int64_t{1}));
}

TEST_F(PgFtsTest, PrefixPageIsAnIndexRangeNewestFirst) {
  auto tx = begin_write(*store_);
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t id = 100; id < 2100; ++id) rows.push_back({id, "filler " + std::to_string(id)});
  ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
  exec_ok(*tx, "ANALYZE \"account_terms\"");
  std::vector<SqlValue> params;
  std::string first = store_->dialect().fts_page("account", "fi", -1, nullptr, 50, params);
  Rows n = query_ok(*tx, "SELECT max(fts_id), min(fts_id), count(*) FROM " + first + " f", params);
  EXPECT_EQ(n.rows[0][0], SqlValue(std::int64_t{2099})) << "newest first";
  EXPECT_EQ(n.rows[0][1], SqlValue(std::int64_t{2050}));
  EXPECT_EQ(n.rows[0][2], SqlValue(std::int64_t{50}));
  Rows plan = query_ok(*tx, "EXPLAIN SELECT count(*) FROM " + first + " f", params);
  std::string text;
  for (const auto& r : plan.rows) text += std::get<std::string>(r[0]) + "\n";
  EXPECT_NE(text.find("account_terms_pk"), std::string::npos) << text;
  EXPECT_NE(text.find("Limit"), std::string::npos) << text;
  EXPECT_EQ(text.find("Sort"), std::string::npos) << "read in index order: " << text;
  // The next page: the rest of "filler", then the terms after it (the numbers are other words).
  params.clear();
  const FtsPosition after{"filler", 101};
  std::string next = store_->dialect().fts_page("account", "fi", -1, &after, 50, params);
  n = query_ok(*tx, "SELECT fts_term, fts_id FROM " + next + " f ORDER BY fts_term, fts_id DESC",
               params);
  ASSERT_EQ(n.rows.size(), 1u);
  EXPECT_EQ(n.rows[0][1], SqlValue(std::int64_t{100}));
}

// fts_page's further exact keys (Chinese bigrams) are looked up in the index, a prefix key in
// the term list (SqliteFtsTest.ExactOtherKeysAreCheckedInTheIndex on PostgreSQL).
TEST_F(PgFtsTest, ExactOtherKeysAreCheckedInTheIndex) {
  auto tx = begin_write(*store_);
  ASSERT_TRUE(tx->fts_put_many("account",
                               std::vector<Tx::FtsRow>{{901, "重庆海泰建材 haitai"},
                                                       {902, "重庆海天建材 haitian"},
                                                       {903, "北京海泰建材"}},
                               true)
                  .ok());
  EXPECT_EQ(page(*tx, "重庆海泰建"), (Matches{{902, 0}, {901, 1}}));
  EXPECT_EQ(page(*tx, "重庆海泰建 hai"), (Matches{{902, 0}, {901, 1}}));
  exec_ok(*tx, "DELETE FROM account_terms_of");
  EXPECT_EQ(page(*tx, "重庆海泰建"), (Matches{{902, 0}, {901, 1}}))
      << "bigrams checked in the index";
  EXPECT_EQ(page(*tx, "重庆海泰建 hai"), (Matches{{902, 0}, {901, 0}}))
      << "a prefix key in the term list";
}

// A rare number fragment as the one other key: on PostgreSQL the term list as before (its
// generic plan ran the set of the key's ids again per entry; SqliteFtsTest.
// ARareNumberFragmentIsCheckedAgainstItsEntriesNotTermLists), with the same matches.
TEST_F(PgFtsTest, ARareNumberFragmentIsCheckedOnTheTermList) {
  auto tx = begin_write(*store_);
  ASSERT_TRUE(tx->fts_put_many("account",
                               std::vector<Tx::FtsRow>{{801, "zhou wei 13800000114"},
                                                       {802, "zhou fang 11400000000"},
                                                       {803, "zhou lei 13800000000"},
                                                       {804, "li na 13800000114"},
                                                       {805, "zhou 114"}},
                               true)
                  .ok());
  const Matches want{{805, 1}, {803, 0}, {802, 1}, {801, 1}};
  EXPECT_EQ(page(*tx, "zhou 114"), want);
  exec_ok(*tx, "DELETE FROM account_terms_of");
  EXPECT_EQ(page(*tx, "zhou 114"), (Matches{{805, 0}, {803, 0}, {802, 0}, {801, 0}}))
      << "checked on the term list";
}

// An other key of few terms: on PostgreSQL the term list as before (SqliteFtsTest.
// AnOtherKeyOfFewTermsIsLookedUpInTheIndexNotTermLists), with the same matches.
TEST_F(PgFtsTest, AnOtherKeyOfFewTermsIsCheckedOnTheTermList) {
  auto tx = begin_write(*store_);
  ASSERT_TRUE(tx->fts_put_many("account",
                               std::vector<Tx::FtsRow>{
                                   {701, "王芳"}, {702, "王伟"}, {703, "李芳"}, {704, "王 芳华"}},
                               true)
                  .ok());
  const Matches want{{704, 1}, {702, 0}, {701, 1}};
  EXPECT_EQ(page(*tx, "王 芳"), want);
  exec_ok(*tx, "DELETE FROM account_terms_of");
  EXPECT_EQ(page(*tx, "王 芳"), (Matches{{704, 0}, {702, 0}, {701, 0}}))
      << "checked on the term list";
}

// fts_key_counts_falling on PostgreSQL (SqliteFtsTest.ExactKeysAreCountedFromTheLastUpToTheFewest):
// 重庆 6 entries, 庆海 1, 海泰 3, 泰建 2, counted from the last key up to the fewest so far.
TEST_F(PgFtsTest, ExactKeysAreCountedFromTheLastUpToTheFewest) {
  auto tx = begin_write(*store_);
  std::vector<Tx::FtsRow> rows{{901, "重庆海泰建材"}, {907, "海泰"}, {908, "海泰"}, {909, "泰建"}};
  for (std::int64_t id = 902; id <= 906; ++id) rows.push_back({id, "重庆天"});
  ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
  const auto counts = [&](std::string_view q, int cap, bool falling) {
    std::vector<SqlValue> params;
    const std::string sql =
        falling ? store_->dialect().fts_key_counts_falling("account", q, cap, params)
                : store_->dialect().fts_key_counts("account", q, cap, params);
    Rows r = query_ok(*tx, sql, params);
    std::vector<std::int64_t> out;
    if (!r.rows.empty())
      for (const auto& v : r.rows[0]) out.push_back(std::get<std::int64_t>(v));
    return out;
  };
  using Counts = std::vector<std::int64_t>;
  EXPECT_EQ(counts("重庆海泰建", 50, false), (Counts{6, 1, 3, 2}));
  EXPECT_EQ(counts("重庆海泰建", 50, true), (Counts{1, 1, 2, 2}));
  EXPECT_EQ(counts("重庆海泰建", 1, true), (Counts{1, 1, 1, 1}));
  EXPECT_EQ(counts("重庆海泰建无", 50, true), (Counts{0, 0, 0, 0, 0}));
  EXPECT_EQ(fts_rarest_key(counts("重庆海泰建", 50, true)), 1u);
}

// fts_pair_counts on PostgreSQL (SqliteFtsTest.PairCountsReadTheSecondKeyOnlyPastTheFirst): li 3
// entries, n 5, 138 (a digit key, by its start or its end) 2.
TEST_F(PgFtsTest, PairCountsReadTheSecondKeyOnlyPastTheFirst) {
  auto tx = begin_write(*store_);
  std::vector<Tx::FtsRow> rows{{901, "li 13800"}, {902, "lia"}, {903, "lin 99138"}};
  for (std::int64_t id = 904; id <= 908; ++id) rows.push_back({id, "nora"});
  ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
  const auto counts = [&](std::string_view q, int first, int second, int cap) {
    std::vector<SqlValue> params;
    const std::string sql =
        store_->dialect().fts_pair_counts("account", q, first, second, cap, params);
    std::vector<std::int64_t> out;
    if (sql.empty()) return out;
    Rows r = query_ok(*tx, sql, params);
    if (!r.rows.empty())
      for (const auto& v : r.rows[0]) out.push_back(std::get<std::int64_t>(v));
    return out;
  };
  using Counts = std::vector<std::int64_t>;
  EXPECT_EQ(counts("li n", 0, 1, 50), (Counts{3, 4}));
  EXPECT_EQ(counts("li n", 1, 0, 50), (Counts{5, 3}));
  EXPECT_EQ(counts("li n", 0, 1, 2), (Counts{2, 3}));
  EXPECT_EQ(counts("n 138", 0, 1, 50), (Counts{5, 2}));
  EXPECT_EQ(counts("n 138", 1, 0, 50), (Counts{2, 3}));
  EXPECT_EQ(counts("li n", 0, 0, 50), Counts{});
}

// fts_window_end on PostgreSQL: the last entry of a window, across the end of a term into the
// next ones, and no row when the key ends within the window.
TEST_F(PgFtsTest, WindowEndIsTheLastEntryOfThePageAndNoneWhenTheKeyEndsWithin) {
  auto tx = begin_write(*store_);
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t id = 100; id < 130; ++id) rows.push_back({id, "zhang qqwei"});
  for (std::int64_t id = 10; id < 20; ++id) rows.push_back({id, "zhao li"});
  ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
  auto end = [&](const FtsPosition* after, int n) {
    std::vector<SqlValue> params;
    const std::string sql = store_->dialect().fts_window_end("account", "zh", -1, after, n, params);
    return query_ok(*tx, sql, params).rows;
  };
  auto first = end(nullptr, 20);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0][0], SqlValue(std::string("zhang")));
  EXPECT_EQ(first[0][1], SqlValue(std::int64_t{110}));
  const FtsPosition after{"zhang", 110};
  auto next = end(&after, 11);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0][0], SqlValue(std::string("zhao")));
  EXPECT_EQ(next[0][1], SqlValue(std::int64_t{19}));
  EXPECT_EQ(end(&after, 21).size(), 0u) << "the key ends within the window";
}

TEST_F(PgFtsTest, FailingBadEntityName) {
  auto tx = begin_write(*store_);
  EXPECT_EQ(tx->fts_put("Account\"; --", 1, "x").error().code, Errc::kInternal);
  EXPECT_EQ(tx->fts_search("a b", "x", 10).error().code, Errc::kInternal);
  EXPECT_THROW(store_->dialect().fts_create("1abc"), std::invalid_argument);
  std::vector<SqlValue> params;
  EXPECT_EQ(store_->dialect().fts_condition("a b", "x", params), "1 = 0");
  EXPECT_TRUE(params.empty());
  // Refused before reaching the server: the transaction is still usable.
  EXPECT_TRUE(tx->fts_put("account", 7, "seven").ok());
}

}  // namespace
}  // namespace rapport::storage
