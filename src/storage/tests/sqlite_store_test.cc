// Unit tests of the SQLite backend through the Store interface: transactions, errors,
// migrations, concurrency, full-text search, backup and restore.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include "storage/sqlite/sqlite_store.h"
#include "storage/sqlite/term_codes.h"
#include "storage/store.h"
#include "storage/text_search.h"

namespace rapport::storage {
namespace {

namespace fs = std::filesystem;

// A uniquely named directory under the system temp dir, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("rapport_storage_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::unique_ptr<Store> open_ok(const std::string& url, StoreOptions options = {}) {
  auto store = open_store(url, options);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
  return store.ok() ? std::move(store).value() : nullptr;
}

std::unique_ptr<Tx> begin_write(Store& store) {
  auto tx = store.write();
  EXPECT_TRUE(tx.ok()) << (tx.ok() ? "" : tx.error().message);
  return std::move(tx).value();
}

std::unique_ptr<Tx> begin_read(Store& store) {
  auto tx = store.read();
  EXPECT_TRUE(tx.ok()) << (tx.ok() ? "" : tx.error().message);
  return std::move(tx).value();
}

void exec_ok(Tx& tx, std::string_view sql, std::vector<SqlValue> params = {}) {
  auto r = tx.exec(sql, params);
  ASSERT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
}

// A file at `path` holding table t of `rows` rows of a `blob_bytes`-byte blob each, checkpointed
// into the file (the last connection's close).
void write_blob_table(const std::string& path, int rows, int blob_bytes) {
  auto store = open_ok("sqlite:" + path);
  ASSERT_NE(store, nullptr);
  auto tx = begin_write(*store);
  exec_ok(*tx, "CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)");
  exec_ok(*tx, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                   std::to_string(rows) + ") INSERT INTO t(pad) SELECT zeroblob(" +
                   std::to_string(blob_bytes) + ") FROM n");
  ASSERT_TRUE(tx->commit().ok());
}

// Table t of 2,000 rows of a 1,000-character text each (~2 MB), committed.
void write_text_table(Store& store) {
  auto tx = begin_write(store);
  exec_ok(*tx, "CREATE TABLE t(id INTEGER PRIMARY KEY, pad TEXT)");
  exec_ok(*tx,
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
          "INSERT INTO t(pad) SELECT printf('%.1000c', 'x') FROM n");
  ASSERT_TRUE(tx->commit().ok());
}

std::int64_t count(Store& store, const std::string& table) {
  auto tx = begin_read(store);
  auto rows = tx->query("SELECT count(*) FROM " + table);
  EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
  return rows.ok() ? std::get<std::int64_t>(rows->rows[0][0]) : -1;
}

const Migration kPeople{1, "people", {"CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT)"}};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = "sqlite:" + dir_.file("rapport.db");
    store_ = open_ok(url_);
    ASSERT_NE(store_, nullptr);
    auto tx = begin_write(*store_);
    exec_ok(*tx, "CREATE TABLE t(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT NOT NULL)");
    ASSERT_TRUE(tx->commit().ok());
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, RoundTripsEverySqlValueType) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "CREATE TABLE v(i INTEGER, r REAL, s TEXT, n TEXT)");
  std::vector<SqlValue> params{std::int64_t{-9007199254740993}, 2.5, std::string("héllo\0x", 7),
                               std::monostate{}};
  auto changed = tx->exec("INSERT INTO v VALUES (?, ?, ?, ?)", params);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, 1);
  auto rows = tx->query("SELECT i, r, s, n FROM v");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->columns, (std::vector<std::string>{"i", "r", "s", "n"}));
  ASSERT_EQ(rows->rows.size(), 1u);
  EXPECT_EQ(rows->rows[0], params);
  ASSERT_TRUE(tx->commit().ok());
}

// each_row hands the visitor its row's views from a buffer on the stack up to 16 columns and
// from the heap beyond: rows of 1, 16, 17 and 40 columns are the values query() returns, and a
// visitor may run another statement (whose rows have their own buffer) without changing them.
TEST_F(SqliteStoreTest, EachRowShowsNarrowAndWideRowsAndRowsOfANestedStatement) {
  auto r = begin_read(*store_);
  for (int n : {1, 16, 17, 40}) {
    std::string sql = "SELECT ";
    for (int c = 0; c < n; ++c)
      sql += (c ? ", " : "") + std::to_string(c * 7) + " AS c" + std::to_string(c);
    auto all = r->query(sql);
    ASSERT_TRUE(all.ok());
    std::vector<SqlValue> seen, inner_seen;
    Status s = r->each_row(sql, {}, [&](std::span<const SqlView> row) {
      EXPECT_EQ(row.size(), static_cast<std::size_t>(n));
      // A statement run inside the visitor, of another width.
      Status inner = r->each_row("SELECT 'x', 2, NULL, 4.5", {}, [&](std::span<const SqlView> in) {
        for (const auto& v : in) inner_seen.push_back(value_of(v));
        return true;
      });
      EXPECT_TRUE(inner.ok());
      for (const auto& v : row) seen.push_back(value_of(v));
      return true;
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_EQ(all->rows.size(), 1u);
    EXPECT_EQ(seen, all->rows[0]) << n << " columns";
    EXPECT_EQ(inner_seen,
              (std::vector<SqlValue>{std::string("x"), std::int64_t{2}, std::monostate{}, 4.5}));
  }
}

// A connection finds the statement of a text it ran before by the text's address (no hash of
// the text): a different text written at that address — a buffer changed in place, or a
// string built where a freed one was — still runs as itself, however many texts share it.
TEST_F(SqliteStoreTest, AStatementTextChangedInPlaceRunsAsTheNewText) {
  auto r = begin_read(*store_);
  std::string sql = "SELECT 100";
  for (int round = 0; round < 2; ++round) {
    for (char digit = '1'; digit <= '9'; ++digit) {
      sql[7] = digit;  // same address, same length, another statement
      std::int64_t got = 0;
      Status s = r->each_row(sql, {}, [&](std::span<const SqlView> row) {
        got = std::get<std::int64_t>(row[0]);
        return true;
      });
      ASSERT_TRUE(s.ok()) << s.error().message;
      EXPECT_EQ(got, (digit - '0') * 100) << sql;
      auto q = r->query(sql);
      ASSERT_TRUE(q.ok());
      EXPECT_EQ(q->rows[0][0], SqlValue(std::int64_t{(digit - '0') * 100}));
    }
  }
  // A shorter text at the same address, then the longer one again.
  sql = "SELECT 7";
  EXPECT_EQ(r->query(sql)->rows[0][0], SqlValue(std::int64_t{7}));
  sql = "SELECT 700";
  EXPECT_EQ(r->query(sql)->rows[0][0], SqlValue(std::int64_t{700}));
}

// each_row shows the rows query() returns, value for value (SQLite's own buffers, no copy), in
// every kind of transaction (read, write, a shared read), and stops where the visitor says.
TEST_F(SqliteStoreTest, EachRowShowsWhatQueryReturnsAndStopsWhenTold) {
  {
    auto w = begin_write(*store_);
    exec_ok(*w, "CREATE TABLE v(i INTEGER, r REAL, s TEXT, n TEXT)");
    for (int k = 0; k < 3; ++k) {
      std::vector<SqlValue> params{std::int64_t{-9007199254740993} + k, 2.5 + k,
                                   std::string("héllo\0x", 7) + std::to_string(k),
                                   std::monostate{}};
      auto changed = w->exec("INSERT INTO v VALUES (?, ?, ?, ?)", params);
      ASSERT_TRUE(changed.ok());
    }
    ASSERT_TRUE(w->commit().ok());
  }
  const std::string sql = "SELECT i, r, s, n FROM v ORDER BY i";
  auto seen_by_each_row = [&](Tx& tx, size_t stop_after) {
    std::vector<std::vector<SqlValue>> seen;
    Status s = tx.each_row(sql, {}, [&](std::span<const SqlView> row) {
      std::vector<SqlValue> copy;
      for (const auto& v : row) copy.push_back(value_of(v));
      seen.push_back(std::move(copy));
      return seen.size() < stop_after;
    });
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return seen;
  };
  auto r = begin_read(*store_);
  auto all = r->query(sql);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->rows.size(), 3u);
  EXPECT_EQ(seen_by_each_row(*r, 10), all->rows);
  auto two = seen_by_each_row(*r, 2);
  EXPECT_EQ(two, std::vector<std::vector<SqlValue>>(all->rows.begin(), all->rows.begin() + 2));
  // The statement is reusable after a visitor stopped it.
  EXPECT_EQ(seen_by_each_row(*r, 10), all->rows);
  {
    auto w = begin_write(*store_);
    EXPECT_EQ(seen_by_each_row(*w, 10), all->rows);
  }
  ReadRouting routing;
  routing.share_reads = true;
  {
    ScopedReadRouting scope(routing);
    auto shared = begin_read(*store_);
    EXPECT_EQ(seen_by_each_row(*shared, 10), all->rows);
    // A failing statement takes the shared transaction out of the routing, as query() does.
    Status bad = shared->each_row("SELECT * FROM no_such_table", {},
                                  [](std::span<const SqlView>) { return true; });
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("no_such_table"), std::string::npos) << bad.error().message;
    EXPECT_EQ(routing.shared_read, nullptr);
  }
}

// A GET's reads (ReadRouting::share_reads) share one read transaction: one snapshot, one reader
// taken from the pool (so nested reads need only one), until a write on the thread or a failed
// statement; the routing's scope ends it.
// Tx::query_many's default (SQLite): the queries in turn, each one's rows in the order asked,
// also through a shared read; the first failure is the answer and the transaction goes on.
TEST_F(SqliteStoreTest, QueryManyAnswersEachQueryInOrderAndFailsWithTheFirstError) {
  {
    auto w = begin_write(*store_);
    exec_ok(*w, "CREATE TABLE q(id INTEGER PRIMARY KEY, name TEXT)");
    exec_ok(*w, "INSERT INTO q VALUES (1, 'one'), (2, 'two')");
    ASSERT_TRUE(w->commit().ok());
  }
  const std::vector<SqlValue> one{std::int64_t{1}}, two{std::int64_t{2}};
  const std::string by_id = "SELECT name FROM q WHERE id = ?";
  ReadRouting routing;
  routing.share_reads = true;
  for (bool shared : {false, true}) {
    std::optional<ScopedReadRouting> scope;
    if (shared) scope.emplace(routing);
    auto r = begin_read(*store_);
    const std::vector<Tx::Query> queries{
        {by_id, two}, {"SELECT count(*) FROM q", {}}, {by_id, one}};
    auto answers = r->query_many(queries);
    ASSERT_TRUE(answers.ok()) << answers.error().message;
    ASSERT_EQ(answers->size(), 3u);
    EXPECT_EQ((*answers)[0].rows, (std::vector<std::vector<SqlValue>>{{std::string("two")}}));
    EXPECT_EQ((*answers)[1].rows, (std::vector<std::vector<SqlValue>>{{std::int64_t{2}}}));
    EXPECT_EQ((*answers)[2].rows, (std::vector<std::vector<SqlValue>>{{std::string("one")}}));
    const std::vector<Tx::Query> failing{{by_id, one}, {"SELECT * FROM no_such_table", {}}};
    auto failed = r->query_many(failing);
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.error().message.find("no_such_table"), std::string::npos)
        << failed.error().message;
    if (shared) continue;  // a failed statement ends the sharing (SharedReadsUse…)
    auto after = r->query(by_id, one);
    ASSERT_TRUE(after.ok()) << after.error().message;
    EXPECT_EQ(after->rows.size(), 1u);
  }
}

TEST_F(SqliteStoreTest, SharedReadsUseOneSnapshotUntilAWriteOrAFailure) {
  StoreOptions options;
  options.readers = 1;  // nested reads would wait for a second reader without sharing
  auto store = open_ok("sqlite:" + dir_.file("shared.db"), options);
  ASSERT_NE(store, nullptr);
  {
    auto w = begin_write(*store);
    exec_ok(*w, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)");
    exec_ok(*w, "INSERT INTO t(id, name) VALUES (7, 'seven')");
    ASSERT_TRUE(w->commit().ok());
  }
  auto name_of = [](Tx& tx, std::int64_t id) -> std::string {
    SqlValue p[] = {id};
    auto rows = tx.query("SELECT name FROM t WHERE id = ?", p);
    EXPECT_TRUE(rows.ok());
    if (!rows.ok() || rows->rows.empty()) return "";
    return std::get<std::string>(rows->rows[0][0]);
  };
  ReadRouting routing;
  routing.share_reads = true;
  {
    ScopedReadRouting scope(routing);
    {
      auto first = begin_read(*store);
      EXPECT_EQ(name_of(*first, 7), "seven");
      ASSERT_TRUE(first->commit().ok());  // leaves the shared transaction open
    }
    // Another thread commits meanwhile: the shared snapshot does not see it.
    std::thread([&] {
      auto w = begin_write(*store);
      exec_ok(*w, "INSERT INTO t(id, name) VALUES (8, 'eight')");
      EXPECT_TRUE(w->commit().ok());
    }).join();
    {
      auto request = begin_read(*store);
      auto nested = begin_read(*store);  // the same transaction: one reader is enough
      EXPECT_EQ(name_of(*request, 8), "");
      EXPECT_EQ(name_of(*nested, 7), "seven");
    }
    // A failed statement takes the transaction out of the routing; the next read is fresh.
    {
      auto tx = begin_read(*store);
      EXPECT_FALSE(tx->query("SELECT * FROM no_such_table").ok());
    }
    EXPECT_EQ(routing.shared_read, nullptr);
    {
      auto tx = begin_read(*store);
      EXPECT_EQ(name_of(*tx, 8), "eight");
    }
    // A write ends the sharing, and later reads see it.
    {
      auto w = begin_write(*store);
      exec_ok(*w, "UPDATE t SET name = 'sieben' WHERE id = 7");
      ASSERT_TRUE(w->commit().ok());
    }
    {
      auto tx = begin_read(*store);
      EXPECT_EQ(name_of(*tx, 7), "sieben");
    }
    EXPECT_NE(routing.shared_read, nullptr);
  }
  EXPECT_EQ(routing.shared_read, nullptr) << "the scope's end ends the shared transaction";
  // Without sharing every read is its own transaction again, on the one reader, now free.
  auto a = begin_read(*store);
  EXPECT_EQ(name_of(*a, 8), "eight");
}

// Tx::change_stamp (RecordService's search answer cache): equal for two read transactions only
// when nothing was committed between them, by this store's writer or by another process's
// connection (a second store on the same file); none for a read whose snapshot may hold a
// change its stamp does not count yet, nor for a write. (Without the data_version check the
// other process's write would leave the stamp unchanged.)
TEST_F(SqliteStoreTest, ChangeStampIsEqualOnlyWhileNothingWasCommitted) {
  StoreOptions options;
  options.readers = 1;
  auto store = open_ok(url_, options);
  ASSERT_NE(store, nullptr);
  auto stamp = [&] { return begin_read(*store)->change_stamp(); };
  EXPECT_EQ(stamp(), std::nullopt) << "a reader's first snapshot: its history is unknown";
  const auto s1 = stamp();
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(stamp(), s1);
  EXPECT_EQ(begin_write(*store)->change_stamp(), std::nullopt);
  // A commit of this store's writer.
  {
    auto w = begin_write(*store);
    exec_ok(*w, "INSERT INTO t(id, email, name) VALUES (1, 'a@x', 'a')");
    ASSERT_TRUE(w->commit().ok());
  }
  const auto after_write = stamp();
  const auto s2 = stamp();
  ASSERT_TRUE(s2.has_value());
  EXPECT_GT(*s2, *s1);
  EXPECT_NE(after_write, s1);
  EXPECT_EQ(stamp(), s2);
  // A commit of another connection to the same file (another process, such as a command-line
  // tool): this store's writer never saw it.
  {
    auto other = open_ok(url_);
    ASSERT_NE(other, nullptr);
    auto w = begin_write(*other);
    exec_ok(*w, "INSERT INTO t(id, email, name) VALUES (2, 'b@x', 'b')");
    ASSERT_TRUE(w->commit().ok());
  }
  EXPECT_EQ(stamp(), std::nullopt) << "the snapshot holds a change the stamp did not count";
  const auto s3 = stamp();
  ASSERT_TRUE(s3.has_value());
  EXPECT_GT(*s3, *s2);
  // A read shared by a request (ReadRouting::share_reads) has its transaction's stamp.
  ReadRouting routing;
  routing.share_reads = true;
  {
    ScopedReadRouting scope(routing);
    EXPECT_EQ(begin_read(*store)->change_stamp(), s3);
  }
}

// One server per SQLite file: the job lock is a lock within the process, per store.
TEST_F(SqliteStoreTest, JobLockIsHeldOnceUntilItsHandleCloses) {
  auto first = store_->try_job_lock(7);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(*first);
  auto second = store_->try_job_lock(7);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second) << "held: the second caller gets no handle";
  auto other_key = store_->try_job_lock(8);
  ASSERT_TRUE(other_key.ok());
  EXPECT_TRUE(*other_key) << "another key is a lock of its own";
  auto other_store = open_ok("sqlite:" + dir_.file("other.db"));
  auto elsewhere = other_store->try_job_lock(7);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE(*elsewhere) << "another database is a lock of its own";
  first->reset();
  auto again = store_->try_job_lock(7);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again) << "released when the handle closed";
}

// SQLite has no "did you mean" matching: no index to create, and fuzzy_titles answers "not
// supported" (nullopt) without parameters, so search answers an empty list, not fuzzy.
TEST_F(SqliteStoreTest, FuzzyTitlesAreNotSupported) {
  EXPECT_TRUE(store_->dialect().fuzzy_index_create("account", "name").empty());
  std::vector<SqlValue> params;
  EXPECT_EQ(store_->dialect().fuzzy_titles("account", "name", "zenitth", params), std::nullopt);
  EXPECT_TRUE(params.empty());
}

TEST_F(SqliteStoreTest, ExecReturnsRowsChangedAndZeroForDdl) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "INSERT INTO t(name) VALUES ('a')");
  exec_ok(*tx, "INSERT INTO t(name) VALUES ('b')");
  auto updated = tx->exec("UPDATE t SET name = 'c'");
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(*updated, 2);
  auto ddl = tx->exec("CREATE INDEX t_name ON t(name)");
  ASSERT_TRUE(ddl.ok());
  EXPECT_EQ(*ddl, 0);
}

TEST(SqliteStoreOptions, WriterCacheSizeIsTheOptionInMebibytes) {
  TempDir dir;
  auto cache_of = [](Store& store) {
    auto tx = begin_write(store);
    auto rows = tx->query("PRAGMA cache_size");
    EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
    return rows.ok() ? std::get<std::int64_t>(rows->rows[0][0]) : 0;
  };
  auto defaults = open_ok("sqlite:" + dir.file("a.db"));
  ASSERT_NE(defaults, nullptr);
  EXPECT_EQ(cache_of(*defaults), -64 * 1024);  // KiB, negative: a size rather than pages
  StoreOptions options;
  options.writer_cache_mib = 300;
  auto large = open_ok("sqlite:" + dir.file("b.db"), options);
  ASSERT_NE(large, nullptr);
  EXPECT_EQ(cache_of(*large), -300 * 1024);
}

// Each reader connection's descriptor of the database file is marked for random access (no
// readahead); the writer's and a second store's descriptors are not counted twice.
TEST(SqliteStoreOptions, EveryReadersDatabaseFileIsMarkedForRandomReads) {
  TempDir dir;
  StoreOptions options;
  options.readers = 3;
  auto first = sqlite::SqliteStore::open(dir.file("a.db"), options);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ((*first)->random_read_files(), 3);
  // The first store's term-codes build opens a connection of its own on a thread; done before
  // the second store counts the descriptors its readers opened on the same file.
  (*first)->wait_term_codes();
  options.readers = 2;
  auto second = sqlite::SqliteStore::open(dir.file("a.db"), options);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ((*second)->random_read_files(), 2);
  auto tx = (*second)->read();
  ASSERT_TRUE(tx.ok());
  EXPECT_TRUE((*tx)->query("SELECT 1").ok());
}

// The readers memory-map the database file only when all of it fits in reader_map_mib (serve
// --read-map-mib): a 2 MiB file is mapped with the 256 MiB default and with 3 MiB, read with
// pread (mmap_size 0) with 1 MiB or 0. What the readers report is what SQLite applied.
TEST(SqliteStoreOptions, ReadersMapTheFileOnlyWhenAllOfItFits) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  ASSERT_NO_FATAL_FAILURE(write_blob_table(path, 512, 4000));
  const auto bytes = fs::file_size(path);
  ASSERT_GT(bytes, 2u << 20);
  ASSERT_LT(bytes, 3u << 20);
  auto reader_map = [&](std::optional<int> mib) -> std::int64_t {
    StoreOptions options;
    if (mib) options.reader_map_mib = *mib;
    auto store = sqlite::SqliteStore::open(path, options);
    EXPECT_TRUE(store.ok()) << store.error().message;
    if (!store.ok()) return -1;
    auto tx = (*store)->read();
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->query("PRAGMA mmap_size");
    EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
    const auto reported = rows.ok() ? std::get<std::int64_t>(rows->rows[0][0]) : -1;
    EXPECT_EQ(reported, (*store)->reader_map_bytes());
    EXPECT_EQ((*store)->cache_memory().mapped, 4 * reported);  // four readers by default
    return reported;
  };
  EXPECT_EQ(reader_map(std::nullopt), 256 << 20);
  EXPECT_EQ(reader_map(3), 3 << 20);
  EXPECT_EQ(reader_map(1), 0);
  EXPECT_EQ(reader_map(0), 0);
}

// A thread that must not wait (ReadRouting::no_wait: an I/O thread trying a request in place)
// reads only pages the kernel holds: a statement that needs a page from the disk stops with
// kBusy and marks the routing `would_wait` (the request then runs again on a worker), and the
// same read elsewhere, or once the page is in memory, answers as usual.
TEST(SqliteStoreOptions, ANoWaitReadStopsAtAPageNotInMemory) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  ASSERT_NO_FATAL_FAILURE(write_blob_table(path, 2000, 3000));
  {
    // The file out of the kernel's page cache (written back first: dirty pages would stay).
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fsync(fd), 0);
    ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ::close(fd);
  }
  StoreOptions options;
  options.reader_map_mib = 0;  // read with pread, as a file larger than the map is
  auto opened = sqlite::SqliteStore::open(path, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Store& store = **opened;
  // The schema's pages (read by any reader, as by the server's first request) are in memory
  // again; row 1,000 (one row a page: ~4 MB into the file) is not.
  EXPECT_EQ(count(store, "sqlite_schema"), 2);  // t and the store's _term_writes
  const std::string sql = "SELECT length(pad) FROM t WHERE id = 1000";
  {
    ReadRouting routing;
    routing.no_wait = true;
    ScopedReadRouting scope(routing);
    auto tx = store.read();
    ASSERT_TRUE(tx.ok()) << tx.error().message;
    auto rows = (*tx)->query(sql);
    ASSERT_FALSE(rows.ok());
    EXPECT_EQ(rows.error().code, Errc::kBusy) << rows.error().message;
    EXPECT_TRUE(routing.would_wait);
  }
  {
    auto tx = begin_read(store);  // may wait: read from the disk
    auto rows = tx->query(sql);
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), 3000);
  }
  {
    ReadRouting routing;
    routing.no_wait = true;
    ScopedReadRouting scope(routing);
    auto tx = store.read();
    ASSERT_TRUE(tx.ok()) << tx.error().message;
    auto rows = (*tx)->query(sql);  // in memory now
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), 3000);
    EXPECT_FALSE(routing.would_wait);
  }
}

// SQLite's heap is counted by the backend's allocator, with SQLite's own statistics (a
// process-wide mutex on every allocation and free) off: what the page caches and statements hold
// is still reported (GET /admin/memory's store_cache_bytes), and given back when a store closes.
TEST(SqliteStoreHeap, CountedWithoutSqlitesOwnStatisticsAndGivenBackOnClose) {
  if (!sqlite::heap_counted_here()) GTEST_SKIP() << "SQLite was used before a store opened";
  TempDir dir;
  const std::int64_t before = sqlite::heap_bytes();
  {
    auto store = sqlite::SqliteStore::open(dir.file("heap.db"), StoreOptions{});
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_NO_FATAL_FAILURE(write_text_table(**store));
    auto read = begin_read(**store);
    auto rows = read->query("SELECT count(*), sum(length(pad)) FROM t");
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][1]), 2'000'000);
    const std::int64_t used = (*store)->cache_memory().used;
    EXPECT_EQ(used, sqlite::heap_bytes());
    // The writer's page cache alone holds the ~2 MB just written.
    EXPECT_GT(used, before + (2 << 20));
    EXPECT_EQ(sqlite3_memory_used(), 0) << "SQLite's own statistics are off";
  }
  EXPECT_LT(sqlite::heap_bytes(), before + (256 << 10));
}

// The count is kept per thread (a shard each, handed on when a thread ends): blocks allocated on
// threads that have ended and freed on another (the readers' page caches, filled by reads on
// eight short-lived threads, given back when the store closes on this one) still add up to
// what SQLite holds, and to nothing once it is all given back.
TEST(SqliteStoreHeap, CountedAcrossThreadsThatEndAndBlocksFreedByAnother) {
  if (!sqlite::heap_counted_here()) GTEST_SKIP() << "SQLite was used before a store opened";
  TempDir dir;
  const std::int64_t before = sqlite::heap_bytes();
  std::int64_t filled = 0;
  {
    StoreOptions options;
    options.readers = 4;
    options.reader_map_mib = 0;  // pages read into the readers' caches, not mapped
    auto store = sqlite::SqliteStore::open(dir.file("heap-threads.db"), options);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_NO_FATAL_FAILURE(write_text_table(**store));
    const std::int64_t written = sqlite::heap_bytes();
    for (int round = 0; round < 2; ++round) {
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&store] {
          auto read = begin_read(**store);
          auto rows = read->query("SELECT sum(length(pad)) FROM t");
          ASSERT_TRUE(rows.ok()) << rows.error().message;
          EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), 2'000'000);
        });
      }
      for (auto& t : threads) t.join();
    }
    filled = sqlite::heap_bytes();
    // The readers' page caches, allocated on threads that have ended, are counted.
    EXPECT_GT(filled, written + (2 << 20));
    EXPECT_EQ((*store)->cache_memory().used, filled);
  }
  // Given back on this thread: the sum is what it was before the store, within SQLite's own
  // process-wide state, neither more nor less.
  EXPECT_LT(sqlite::heap_bytes(), before + (256 << 10));
  EXPECT_GT(sqlite::heap_bytes(), before - (256 << 10));
}

// Read snapshots kept across read transactions (SqliteStore::begin_read): a reader's next read
// takes over the transaction its last one left open while nothing was committed since.
class SqliteReadSnapshotsTest : public ::testing::Test {
 protected:
  std::unique_ptr<sqlite::SqliteStore> open_store(const std::string& name, StoreOptions options) {
    auto store = sqlite::SqliteStore::open(dir_.file(name), options);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // The row count of t as each reader sees it: every reader is held at once, so that each
  // one answers (the pool hands out a free one, the one put back last first).
  static std::vector<std::int64_t> counts_on_every_reader(Store& store, int readers) {
    std::vector<std::unique_ptr<Tx>> held;
    std::vector<std::int64_t> counts;
    for (int i = 0; i < readers; ++i) {
      held.push_back(begin_read(store));
      auto rows = held.back()->query("SELECT count(*) FROM t");
      EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
      counts.push_back(rows.ok() ? std::get<std::int64_t>(rows->rows[0][0]) : -1);
    }
    return counts;
  }
  static void insert_rows(Store& store, int n) {
    auto tx = begin_write(store);
    for (int i = 0; i < n; ++i) exec_ok(*tx, "INSERT INTO t(pad) VALUES (zeroblob(3000))");
    ASSERT_TRUE(tx->commit().ok());
  }
  static void create_table(Store& store) {
    auto tx = begin_write(store);
    exec_ok(*tx, "CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)");
    ASSERT_TRUE(tx->commit().ok());
  }

  TempDir dir_;
};

// No acknowledged write is lost to a kept snapshot: once a write's commit() has returned, the
// next read sees it on every reader connection, whether this store's writer made it (write(),
// write_grouped()) or another connection to the file (another process: a command-line tool).
// Without the check of the WAL index header each reader would go on answering from the
// snapshot it kept before the write.
TEST_F(SqliteReadSnapshotsTest, AnAcknowledgedWriteIsSeenByTheNextReadOnEveryReader) {
  constexpr int kReaders = 4;
  StoreOptions options;
  options.readers = kReaders;
  auto store = open_store("kept.db", options);
  ASSERT_NE(store, nullptr);
  create_table(*store);
  insert_rows(*store, 1);
  const std::vector<std::int64_t> one(kReaders, 1);
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), one);  // each reader's first snapshot
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), one);  // kept from here on
  const auto before = store->read_snapshot_stats();
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), one);
  const auto kept = store->read_snapshot_stats();
  EXPECT_EQ(kept.reused - before.reused, kReaders) << "nothing committed: every snapshot kept";
  EXPECT_EQ(kept.begun, before.begun);

  insert_rows(*store, 1);
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), std::vector<std::int64_t>(kReaders, 2));
  EXPECT_EQ(store->read_snapshot_stats().begun - kept.begun, kReaders);

  ASSERT_TRUE(store
                  ->write_grouped([](Tx& tx) -> Status {
                    return tx.exec("INSERT INTO t(pad) VALUES (NULL)", {}).ok()
                               ? Status()
                               : make_error(Errc::kStorage, "insert failed");
                  })
                  .ok());
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), std::vector<std::int64_t>(kReaders, 3));
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), std::vector<std::int64_t>(kReaders, 3));

  {
    auto other = open_store("kept.db", {});
    ASSERT_NE(other, nullptr);
    insert_rows(*other, 1);
  }
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), std::vector<std::int64_t>(kReaders, 4));
  // A failed statement ends its transaction: the reader's next read begins anew.
  {
    auto tx = begin_read(*store);
    EXPECT_FALSE(tx->query("SELECT * FROM no_such_table").ok());
  }
  const auto failed = store->read_snapshot_stats();
  EXPECT_EQ(count(*store, "t"), 4);
  EXPECT_EQ(store->read_snapshot_stats().begun - failed.begun, 1);
}

// Kept snapshots do not hold up a checkpoint that waits for readers: this store's writer's
// RESTART at wal_max_frames and its TRUNCATE as a bulk load ends end the snapshots of idle
// readers first (with a 50 ms busy timeout the checkpoint fails if it waits for them: idle
// readers' snapshots otherwise end after kSnapshotIdleMs), and another process's TRUNCATE waits
// only until this store's idle timer has ended them, and a reader in constant use begins a new
// snapshot within two idle periods.
TEST_F(SqliteReadSnapshotsTest, CheckpointsAreNotHeldUpByKeptSnapshots) {
  constexpr int kReaders = 2;
  StoreOptions options;
  options.readers = kReaders;
  options.busy_timeout_ms = 50;
  options.wal_max_frames = 200;
  auto store = open_store("ckpt.db", options);
  ASSERT_NE(store, nullptr);
  const std::string wal = dir_.file("ckpt.db") + "-wal";
  create_table(*store);
  insert_rows(*store, 20);
  // Both readers keep a snapshot of the WAL as it is, and sit idle.
  counts_on_every_reader(*store, kReaders);
  counts_on_every_reader(*store, kReaders);
  counts_on_every_reader(*store, kReaders);
  // The commit that crosses 200 frames: the writer's RESTART.
  const auto restarts = store->group_commit_stats().writer_checkpoints;
  insert_rows(*store, 300);
  EXPECT_EQ(store->group_commit_stats().writer_checkpoints, restarts + 1);
  EXPECT_EQ(counts_on_every_reader(*store, kReaders), std::vector<std::int64_t>(kReaders, 320));

  // A bulk load's end: PASSIVE, then TRUNCATE, which leaves the WAL file empty.
  counts_on_every_reader(*store, kReaders);
  {
    auto bulk = store->bulk_writes();
    insert_rows(*store, 20);
    counts_on_every_reader(*store, kReaders);
    counts_on_every_reader(*store, kReaders);
  }
  EXPECT_EQ(store->group_commit_stats().bulk_end_checkpoints, 1);
  EXPECT_EQ(fs::file_size(wal), 0u);

  // Another process's TRUNCATE (its own busy timeout: 3 s), while this store's readers keep
  // snapshots: one idle, one read in a loop by another thread.
  insert_rows(*store, 20);
  counts_on_every_reader(*store, kReaders);
  counts_on_every_reader(*store, kReaders);
  std::atomic<bool> stop{false};
  std::thread reading([&] {
    while (!stop) count(*store, "t");
  });
  StoreOptions other_options;
  other_options.busy_timeout_ms = 3000;
  auto other = open_store("ckpt.db", other_options);
  ASSERT_NE(other, nullptr);
  const auto started = std::chrono::steady_clock::now();
  {
    auto bulk = other->bulk_writes();
    insert_rows(*other, 20);
  }
  const auto waited = std::chrono::steady_clock::now() - started;
  stop = true;
  reading.join();
  EXPECT_EQ(other->group_commit_stats().bulk_end_checkpoints, 1);
  EXPECT_LT(waited, std::chrono::milliseconds(2500));
  EXPECT_GT(store->read_snapshot_stats().ended_idle, 0);
  EXPECT_EQ(count(*store, "t"), 380);
}

TEST_F(SqliteStoreTest, CommitPersistsAndDestructorRollsBack) {
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

// Dialect::bulk_insert ("INSERT OR FAIL"): a multi-row insert that fails in the middle keeps
// its earlier rows in the transaction (no statement journal), and dropping the transaction,
// as a bulk import does after a refused statement, leaves nothing of it.
TEST_F(SqliteStoreTest, BulkInsertFailingMidStatementIsUndoneWithItsTransaction) {
  EXPECT_EQ(store_->dialect().bulk_insert(), "INSERT OR FAIL");
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(email, name) VALUES ('before@x.cn', 'before')");
    auto r = tx->exec(store_->dialect().bulk_insert() +
                      " INTO t(email, name) VALUES ('a@x.cn', 'a'), ('b@x.cn', 'b'), "
                      "('a@x.cn', 'again'), ('c@x.cn', 'c')");
    ASSERT_FALSE(r.ok());
    auto rows = tx->query("SELECT name FROM t ORDER BY id");
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->rows.size(), 3u) << "the rows before the failing one stay in the transaction";
  }
  EXPECT_EQ(count(*store_, "t"), 0);
}

TEST_F(SqliteStoreTest, FailingUseAfterCommit) {
  auto tx = begin_write(*store_);
  ASSERT_TRUE(tx->commit().ok());
  EXPECT_EQ(tx->exec("INSERT INTO t(name) VALUES ('x')").error().code, Errc::kInternal);
  EXPECT_EQ(tx->commit().error().code, Errc::kInternal);
  // The writer was released at commit: another write transaction starts at once.
  auto next = store_->write();
  EXPECT_TRUE(next.ok());
}

TEST_F(SqliteStoreTest, FailingUniqueViolationIsDuplicateNamingTheField) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "INSERT INTO t(id, email, name) VALUES (1, 'a@x.org', 'A')");
  auto dup = tx->exec("INSERT INTO t(email, name) VALUES ('a@x.org', 'B')");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kDuplicate);
  EXPECT_EQ(dup.error().field, "email");
  auto pk = tx->exec("INSERT INTO t(id, name) VALUES (1, 'C')");
  ASSERT_FALSE(pk.ok());
  EXPECT_EQ(pk.error().code, Errc::kDuplicate);
  EXPECT_EQ(pk.error().field, "id");
  // The transaction is still usable after a failed statement.
  exec_ok(*tx, "INSERT INTO t(email, name) VALUES ('b@x.org', 'B')");
  EXPECT_TRUE(tx->commit().ok());
  EXPECT_EQ(count(*store_, "t"), 2);
}

TEST_F(SqliteStoreTest, FailingNotNullIsValidationNamingTheField) {
  auto tx = begin_write(*store_);
  auto r = tx->exec("INSERT INTO t(email) VALUES ('a@x.org')");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
  EXPECT_EQ(r.error().field, "name");
}

TEST_F(SqliteStoreTest, FailingForeignKeyIsValidation) {
  auto tx = begin_write(*store_);
  exec_ok(*tx, "CREATE TABLE child(id INTEGER PRIMARY KEY, t_id INTEGER REFERENCES t(id))");
  auto r = tx->exec("INSERT INTO child(t_id) VALUES (42)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
}

TEST_F(SqliteStoreTest, FailingMultipleStatementsAndBadSql) {
  auto tx = begin_write(*store_);
  auto multi = tx->exec("INSERT INTO t(name) VALUES ('a'); DELETE FROM t");
  ASSERT_FALSE(multi.ok());
  EXPECT_EQ(multi.error().code, Errc::kInternal);
  EXPECT_TRUE(tx->exec("INSERT INTO t(name) VALUES ('a'); -- trailing comment").ok());
  auto bad = tx->query("SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kStorage);
  auto missing = tx->query("SELECT * FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kStorage);
  auto params = tx->exec("INSERT INTO t(name) VALUES (?)");
  ASSERT_FALSE(params.ok());
  EXPECT_EQ(params.error().code, Errc::kInternal);
}

TEST_F(SqliteStoreTest, FailingWriteOnReader) {
  auto tx = begin_read(*store_);
  auto r = tx->exec("INSERT INTO t(name) VALUES ('a')");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kStorage);
}

TEST_F(SqliteStoreTest, ReaderSeesOneSnapshotWhileWriterCommits) {
  auto reader = begin_read(*store_);
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('new')");
    ASSERT_TRUE(tx->commit().ok());
  }
  auto rows = reader->query("SELECT count(*) FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), 0);
  reader.reset();
  EXPECT_EQ(count(*store_, "t"), 1);
}

TEST_F(SqliteStoreTest, ReadersWaitForAFreeConnection) {
  StoreOptions options;
  options.readers = 1;
  auto store = open_ok("sqlite:" + dir_.file("one_reader.db"), options);
  auto held = begin_read(*store);
  std::atomic<bool> got{false};
  std::thread other([&] {
    auto tx = store->read();
    EXPECT_TRUE(tx.ok());
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(got);
  held.reset();
  other.join();
  EXPECT_TRUE(got);
}

TEST_F(SqliteStoreTest, NoWaitRoutingRefusesWhatWouldWaitAndSaysSo) {
  StoreOptions options;
  options.readers = 1;
  auto store = open_ok("sqlite:" + dir_.file("no_wait.db"), options);
  {
    // A free reader: the read runs in place, and the shared transaction serves a second one.
    ReadRouting routing;
    routing.no_wait = true;
    routing.share_reads = true;
    ScopedReadRouting scope(routing);
    auto first = store->read();
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE((*first)->query("SELECT 1", {}).ok());
    EXPECT_TRUE(store->read().ok());
    EXPECT_FALSE(routing.would_wait);
    // A write would wait for the writer (its group commit): refused at once.
    auto write = store->write();
    ASSERT_FALSE(write.ok());
    EXPECT_EQ(write.error().code, Errc::kBusy);
    EXPECT_TRUE(routing.would_wait);
    routing.would_wait = false;
    bool ran = false;
    auto grouped = store->write_grouped([&](Tx&) -> Status {
      ran = true;
      return {};
    });
    ASSERT_FALSE(grouped.ok());
    EXPECT_EQ(grouped.error().code, Errc::kBusy);
    EXPECT_TRUE(routing.would_wait);
    EXPECT_FALSE(ran);
  }
  auto held = begin_read(*store);  // the only reader
  ReadRouting routing;
  routing.no_wait = true;
  ScopedReadRouting scope(routing);
  auto read = store->read();  // answers at once instead of waiting for `held`
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, Errc::kBusy);
  EXPECT_TRUE(routing.would_wait);
}

TEST_F(SqliteStoreTest, ConcurrentWritersAreSerialisedAndAllSucceed) {
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
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(count(*store_, "t"), kThreads * kPerThread);
}

TEST_F(SqliteStoreTest, NotifyAndListenAreNoOpsWithThePayloadLimit) {
  int calls = 0;
  EXPECT_TRUE(store_->listen("events", [&](std::string) { ++calls; }).ok());
  EXPECT_TRUE(store_->notify("events", std::string(Store::kMaxNotifyPayload, 'x')).ok());
  auto too_big = store_->notify("events", std::string(Store::kMaxNotifyPayload + 1, 'x'));
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, Errc::kBadRequest);
  store_->stop_listening();
  EXPECT_EQ(calls, 0);
  // …so that a caller with no other recipient may skip building its message.
  EXPECT_FALSE(store_->notifies_others());
}

TEST(SqliteMigrations, ApplyOnceAndAreIdempotentOnReopen) {
  TempDir dir;
  const std::string url = dir.file("m.db");  // a plain path works as a URL too
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
  auto rows = tx->query("SELECT id, name, email, phone FROM people");
  EXPECT_TRUE(rows.ok());
}

TEST(SqliteMigrations, FailingMigrationLeavesNoTrace) {
  TempDir dir;
  auto store = open_ok(dir.file("m.db"));
  std::vector<Migration> migrations{
      kPeople, {2, "broken", {"CREATE TABLE half(id INTEGER)", "CREATE TABLE people(x)"}}};
  auto s = store->migrate(migrations);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("broken"), std::string::npos);
  EXPECT_EQ(*store->schema_version(), 1);
  auto tx = begin_read(*store);
  EXPECT_FALSE(tx->query("SELECT * FROM half").ok());
}

class SqliteFtsTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    auto tx = begin_write(*store_);
    for (const auto& sql : store_->dialect().fts_create("account")) exec_ok(*tx, sql);
    put(*tx, 1, "Acme Corporation Berlin");
    put(*tx, 2, "北京字节跳动科技有限公司");
    put(*tx, 3, "张三丰 武当山");
    put(*tx, 4, "Globex \"Quoted\" Inc. 100% real_deal");
    put(*tx, 5, "acme widgets london");
    ASSERT_TRUE(tx->commit().ok());
  }
  sqlite::SqliteStore& sqlite_store() { return dynamic_cast<sqlite::SqliteStore&>(*store_); }
  // `rows` and kSmallKeyEntries + 1 records whose number starts with 179 (10000 and up), so that
  // the fragment 179 has more entries than kSmallKeyEntries, written in one transaction.
  void put_with_common_179(std::vector<Tx::FtsRow> rows) {
    for (std::int64_t i = 0; i <= detail::kSmallKeyEntries; ++i)
      rows.push_back({10000 + i, "n " + std::to_string(17910000000 + i)});
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  // Records 600…639, "zhao 1390000001x…" and 王芳 each: the term codes' pieces tests.
  void put_forty_numbers() {
    std::vector<Tx::FtsRow> rows;
    for (std::int64_t i = 0; i < 40; ++i)
      rows.push_back({600 + i, "zhao 139000000" + std::to_string(10 + i) + " 王芳"});
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  // `built`'s codes, once built, give each of those records 139 and not 001, and several-word
  // search finds all 40.
  void expect_forty_numbers_found(sqlite::SqliteStore& built) {
    built.wait_term_codes();
    ASSERT_TRUE(built.term_codes().built());
    using sqlite::TermCodes;
    for (std::int64_t i = 0; i < 40; ++i) {
      EXPECT_EQ(built.term_codes().check("account", 600 + i, TermCodes::code("139", false), -1),
                TermCodes::kMaybe)
          << 600 + i;
      EXPECT_EQ(built.term_codes().check("account", 600 + i, TermCodes::code("001", false), -1),
                TermCodes::kNo)
          << 600 + i;
    }
    auto tx = begin_read(built);
    EXPECT_EQ(page(*tx, "zhao 139").size(), 40u);
    EXPECT_EQ(page(*tx, "王 139").size(), 40u);
  }
  static void put(Tx& tx, std::int64_t id, std::string_view text) {
    auto s = tx.fts_put("account", id, text);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  // The (id, match) pairs of fts_page's first 50 entries for `q` (match: 1 when every other key
  // matches the entry's record), read in `tx`.
  using Matches = std::vector<std::pair<std::int64_t, std::int64_t>>;
  Matches page(Tx& tx, std::string_view q, int size = 50) {
    std::vector<SqlValue> params;
    const std::string sub = store_->dialect().fts_page("account", q, -1, nullptr, size, params);
    auto r = tx.query("SELECT fts_id, fts_match FROM " + sub + " f", params);
    EXPECT_TRUE(r.ok()) << sub << ": " << (r.ok() ? "" : r.error().message);
    Matches out;
    if (r.ok())
      for (const auto& row : r->rows)
        out.emplace_back(std::get<std::int64_t>(row[0]), std::get<std::int64_t>(row[1]));
    return out;
  }
  std::vector<std::int64_t> search(std::string_view q, int limit = 10) {
    auto tx = begin_read(*store_);
    auto ids = tx->fts_search("account", q, limit);
    EXPECT_TRUE(ids.ok()) << q << ": " << (ids.ok() ? "" : ids.error().message);
    return ids.ok() ? *ids : std::vector<std::int64_t>{};
  }
  using Ids = std::vector<std::int64_t>;
  using Entries = std::vector<std::pair<std::string, std::int64_t>>;
  // The (term, id) entries fts_page marks as matches, in the page's own order or `order_by`'s.
  Entries page_entries(Tx& tx, std::string_view q, const FtsPosition* after, int n,
                       std::string_view order_by = "") {
    std::vector<SqlValue> params;
    const std::string sub = store_->dialect().fts_page("account", q, -1, after, n, params);
    auto r = tx.query(
        "SELECT fts_term, fts_id FROM " + sub + " f WHERE fts_match = 1" + std::string(order_by),
        params);
    EXPECT_TRUE(r.ok()) << sub << ": " << (r.ok() ? "" : r.error().message);
    Entries out;
    if (r.ok())
      for (const auto& row : r->rows)
        out.emplace_back(std::get<std::string>(row[0]), std::get<std::int64_t>(row[1]));
    return out;
  }
};

TEST_F(SqliteFtsTest, WordPrefixesCaseInsensitiveBestFirst) {
  EXPECT_EQ(search("acme"), (Ids{5, 1})) << "same word: newest first";
  EXPECT_EQ(search("a"), (Ids{5, 1})) << "one letter";
  EXPECT_EQ(search("ac"), (Ids{5, 1})) << "two letters";
  EXPECT_EQ(search("CORPORAT"), (Ids{1}));
  EXPECT_EQ(search("acme", 1), (Ids{5}));
  EXPECT_EQ(search("cme"), Ids{}) << "inside a word is not a prefix";
  EXPECT_EQ(search("nothing-like-this"), Ids{});
  {
    auto tx = begin_write(*store_);
    put(*tx, 6, "Acmeco Trading");
    put(*tx, 7, "Ac Industries");
    ASSERT_TRUE(tx->commit().ok());
  }
  // The record whose matching word sorts first leads: the exact word before longer ones.
  EXPECT_EQ(search("ac"), (Ids{7, 5, 1, 6}));
  EXPECT_EQ(search("acme"), (Ids{5, 1, 6}));
}

TEST_F(SqliteFtsTest, ChineseSubstrings) {
  EXPECT_EQ(search("字节跳动"), (Ids{2}));
  EXPECT_EQ(search("张三"), (Ids{3}));
  EXPECT_EQ(search("丰"), (Ids{3})) << "the last character of a run";
  EXPECT_EQ(search("北"), (Ids{2}));
  EXPECT_EQ(search("三"), (Ids{3})) << "a character inside a run";
  EXPECT_EQ(search("张三丰"), (Ids{3}));
  EXPECT_EQ(search("三张"), Ids{}) << "bigrams are ordered";
  EXPECT_EQ(search("跳动科技有限"), (Ids{2}));
}

// fts_search_words: every term of the text exactly (whole words, CJK bigrams), not as prefixes.
TEST_F(SqliteFtsTest, SearchWordsMatchesWholeTermsOnly) {
  auto words = [&](std::string_view text) {
    auto tx = begin_read(*store_);
    auto ids = tx->fts_search_words("account", text, 10);
    EXPECT_TRUE(ids.ok()) << text << ": " << (ids.ok() ? "" : ids.error().message);
    return ids.ok() ? *ids : Ids{};
  };
  EXPECT_EQ(words("acme"), (Ids{5, 1})) << "newest first";
  EXPECT_EQ(words("acme corporation"), (Ids{1}));
  EXPECT_EQ(words("acme corp"), Ids{}) << "a prefix of a word is no term";
  EXPECT_EQ(words("ac"), Ids{});
  EXPECT_EQ(words("字节跳动"), (Ids{2}));
  EXPECT_EQ(words("跳动字节"), Ids{}) << "its bigram 动字 is not there";
  EXPECT_EQ(words("..."), Ids{}) << "no indexable word";
}

TEST_F(SqliteFtsTest, MultiTermIsAnd) {
  EXPECT_EQ(search("acme berlin"), (Ids{1}));
  EXPECT_EQ(search("acme lo"), (Ids{5}));
  EXPECT_EQ(search("ac de"), Ids{});
  EXPECT_EQ(search("  字节\u3000科技  "), (Ids{2}));
  EXPECT_EQ(search("张三 武当山"), (Ids{3}));
  EXPECT_EQ(search("张三 acme"), Ids{});
}

TEST_F(SqliteFtsTest, QuotesAndWildcardsInTheQueryAreHarmless) {
  EXPECT_EQ(search("\"Quoted\""), (Ids{4}));
  EXPECT_EQ(search("\"Quo"), (Ids{4}));
  EXPECT_EQ(search("\""), Ids{}) << "nothing indexable: matches nothing";
  EXPECT_EQ(search("'); DROP TABLE t; --"), Ids{});
  EXPECT_EQ(search("100%"), (Ids{4}));
  EXPECT_EQ(search("%"), Ids{});
  EXPECT_EQ(search("real_d"), (Ids{4}));
  EXPECT_EQ(search("_"), Ids{});
  EXPECT_EQ(search("OR"), Ids{});
  EXPECT_EQ(search("NOT acme"), Ids{});
  EXPECT_EQ(search("a*"), (Ids{5, 1})) << "* is a separator, not a wildcard";
  EXPECT_EQ(search(""), Ids{});
  EXPECT_EQ(count(*store_, "t"), 0);
}

TEST_F(SqliteFtsTest, PutReplacesAndDeleteRemoves) {
  {
    auto tx = begin_write(*store_);
    put(*tx, 1, "Initech");
    ASSERT_TRUE(tx->fts_delete("account", 5).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("acme"), Ids{});
  EXPECT_EQ(search("berlin"), Ids{}) << "no word of the old text is left";
  EXPECT_EQ(search("init"), (Ids{1}));
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_clear("account").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(search("init"), Ids{});
  EXPECT_EQ(search("张三"), Ids{});
}

// R-SEARCH: a number by its start or by its end (its reversed term), not by a fragment from
// its middle (until session 13 "1234" and "138-1234-5678" found it through the suffix terms).
TEST_F(SqliteFtsTest, PhoneDigitsMatchByTheirStartOrTheirEnd) {
  {
    auto tx = begin_write(*store_);
    put(*tx, 8, "13812345678\n+8613812345678");
    put(*tx, 9, "12912");
    ASSERT_TRUE(tx->commit().ok());
  }
  for (const char* q : {"138", "13812345678", "5678", "678", "12345678", "+86 138", "86138"})
    EXPECT_EQ(search(q), (Ids{8})) << q;
  for (const char* q : {"1234", "2345", "138-1234-5678", "8123"})
    EXPECT_EQ(search(q), Ids{}) << q << ": from the middle";
  // 12912 starts and ends with 12 (both of its terms are in the key's ranges): listed once.
  EXPECT_EQ(search("12"), (Ids{9}));
  EXPECT_EQ(search("912"), (Ids{9}));
}

// A digit key's window, counts and condition (R-SEARCH): its own range, then its reversed
// form's, in index order and a page at a time across the two.
TEST_F(SqliteFtsTest, ADigitKeyPagesThroughItsStartsThenItsEnds) {
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t id = 100; id < 105; ++id) rows.push_back({id, "56780"});
  for (std::int64_t id = 200; id < 205; ++id) rows.push_back({id, "1395678"});
  rows.push_back({300, "5678005678"});  // both forms
  rows.push_back({400, "1234567890"});  // 5678 in the middle only
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  auto page = [&](std::string_view q, const FtsPosition* after, int n) {
    return page_entries(*tx, q, after, n);
  };
  EXPECT_EQ(page("5678", nullptr, 4),
            (Entries{{"56780", 104}, {"56780", 103}, {"56780", 102}, {"56780", 101}}));
  FtsPosition after{"56780", 101};
  EXPECT_EQ(
      page("5678", &after, 4),
      (Entries{{"56780", 100}, {"5678005678", 300}, {"~8765008765", 300}, {"~8765931", 204}}));
  after = {"~8765008765", 300};
  EXPECT_EQ(page("5678", &after, 10), (Entries{{"~8765931", 204},
                                               {"~8765931", 203},
                                               {"~8765931", 202},
                                               {"~8765931", 201},
                                               {"~8765931", 200}}));
  EXPECT_EQ(page("5678", nullptr, 50).size(), 12u);
  EXPECT_EQ(page("139 5678", nullptr, 50).size(), 5u);
  {
    std::vector<SqlValue> params;
    const std::string end =
        store_->dialect().fts_window_end("account", "5678", -1, &after, 5, params);
    auto r = tx->query(end, params);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->rows.size(), 1u);
    EXPECT_EQ(std::get<std::int64_t>(r->rows[0][1]), 200);
    params.clear();
    const std::string counts =
        store_->dialect().fts_key_counts_falling("account", "139 5678", 50, params);
    auto c = tx->query(counts, params);
    ASSERT_TRUE(c.ok()) << counts << ": " << c.error().message;
    EXPECT_EQ(c->rows[0], (std::vector<SqlValue>{std::int64_t{5}, std::int64_t{12}}));
    params.clear();
    const std::string capped = store_->dialect().fts_key_counts("account", "5678", 7, params);
    c = tx->query(capped, params);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->rows[0], (std::vector<SqlValue>{std::int64_t{7}}));
    params.clear();
    const std::string cond = store_->dialect().fts_condition("account", "5678", params);
    c = tx->query("SELECT count(DISTINCT id) FROM account_terms WHERE " + cond, params);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(std::get<std::int64_t>(c->rows[0][0]), 11);
  }
  tx.reset();
  EXPECT_EQ(search("5678", 50).size(), 11u) << "300 once";
}

TEST_F(SqliteFtsTest, AccountIdIsStoredBesideTheTerms) {
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put("account", 9, "Keyed", SqlValue{std::int64_t{42}}).ok());
    std::vector<Tx::FtsRow> rows{{10, "Keyed too", SqlValue{std::int64_t{43}}}};
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  auto r = tx->query("SELECT id, account_id FROM account_terms WHERE term = 'keyed' ORDER BY id");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(std::get<std::int64_t>(r->rows[0][1]), 42);
  EXPECT_EQ(std::get<std::int64_t>(r->rows[1][1]), 43);
}

// fts_page reads the index in its order (term, then newest first) a page at a time from where
// the last page stopped; fts_condition sees every match.
TEST_F(SqliteFtsTest, PagesFollowTheIndexOrderAndConditionIsUnbounded) {
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t id = 100; id < 400; ++id)
    rows.push_back({id, "zhang wei" + std::to_string(id)});
  rows.push_back({50, "zhao"});
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  auto page = [&](std::string_view q, const FtsPosition* after, int n) {
    return page_entries(*tx, q, after, n, " ORDER BY fts_term, fts_id DESC");
  };
  Entries first = page("zh", nullptr, 50);
  ASSERT_EQ(first.size(), 50u);
  EXPECT_EQ(first.front(), (std::pair<std::string, std::int64_t>{"zhang", 399})) << "newest first";
  EXPECT_EQ(first.back().second, 350);
  FtsPosition after{"zhang", 350};
  Entries second = page("zh", &after, 50);
  ASSERT_EQ(second.size(), 50u);
  EXPECT_EQ(second.front().second, 349);
  EXPECT_EQ(second.back().second, 300);
  after = {"zhang", 101};  // the end of one term, then the next term of the prefix
  EXPECT_EQ(page("zh", &after, 50), (Entries{{"zhang", 100}, {"zhao", 50}}));
  after = {"zhao", 50};
  EXPECT_EQ(page("zh", &after, 50), Entries{});
  // Several keys: the most selective ("wei1") drives, the others are checked on its records.
  Entries several = page("zh wei1", nullptr, 500);
  ASSERT_EQ(several.size(), 100u);
  EXPECT_EQ(several.front(), (std::pair<std::string, std::int64_t>{"wei100", 100}));
  EXPECT_EQ(page("zhao wei1", nullptr, 500), Entries{});
  {  // the page still holds the entries of the driving key that do not match, for the position
    std::vector<SqlValue> params;
    const std::string sub =
        store_->dialect().fts_page("account", "zhao wei1", -1, nullptr, 9, params);
    auto r = tx->query("SELECT fts_id, fts_match FROM " + sub + " f", params);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->rows.size(), 1u);
    EXPECT_EQ(std::get<std::int64_t>(r->rows[0][0]), 50);
    EXPECT_EQ(std::get<std::int64_t>(r->rows[0][1]), 0);
  }
  {  // the key counts, capped: "zhao" 1, "wei1" 100 (cap 50)
    std::vector<SqlValue> params;
    const std::string counts = store_->dialect().fts_key_counts("account", "zhao wei1", 50, params);
    auto r = tx->query(counts, params);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(std::get<std::int64_t>(r->rows[0][0]), 1);
    EXPECT_EQ(std::get<std::int64_t>(r->rows[0][1]), 50);
    params.clear();
    const std::string one = store_->dialect().fts_key_counts("account", "wei1", 50, params);
    auto single = tx->query(one, params);
    ASSERT_TRUE(single.ok()) << single.error().message;
    ASSERT_EQ(single->rows[0].size(), 1u) << "one key, one count";
    EXPECT_EQ(std::get<std::int64_t>(single->rows[0][0]), 50);
    params.clear();
    EXPECT_EQ(store_->dialect().fts_key_counts("account", "!!", 50, params), "") << "no key";
  }
  std::vector<SqlValue> params;
  std::string cond = store_->dialect().fts_condition("account", "zh", params);
  auto all = tx->query("SELECT count(DISTINCT id) FROM account_terms WHERE " + cond, params);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(std::get<std::int64_t>(all->rows[0][0]), 301);
  params.clear();
  EXPECT_EQ(store_->dialect().fts_page("account", "!!", -1, nullptr, 50, params), "");
  EXPECT_EQ(store_->dialect().fts_condition("account", "!!", params), "1 = 0");
  EXPECT_TRUE(params.empty());
}

// fts_page with exact other keys (Chinese bigrams, R-SEARCH at 1M: the term-list reads of a
// common bigram's entries were most of a 4-character company prefix's cost): they are looked up
// in the index itself, the term lists are read only for a prefix key. Shown by emptying the term
// lists: an all-bigram query still finds its record, the one with a prefix key then does not.
TEST_F(SqliteFtsTest, ExactOtherKeysAreCheckedInTheIndex) {
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account",
                                 std::vector<Tx::FtsRow>{{901, "重庆海泰建材 haitai"},
                                                         {902, "重庆海天建材 haitian"},
                                                         {903, "北京海泰建材"}},
                                 true)
                    .ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_write(*store_);
  using Matches = std::vector<std::pair<std::int64_t, std::int64_t>>;
  auto page = [&](std::string_view q) {
    std::vector<SqlValue> params;
    const std::string sub = store_->dialect().fts_page("account", q, -1, nullptr, 50, params);
    auto r = tx->query("SELECT fts_id, fts_match FROM " + sub + " f", params);
    EXPECT_TRUE(r.ok()) << sub << ": " << (r.ok() ? "" : r.error().message);
    Matches out;
    if (r.ok())
      for (const auto& row : r->rows)
        out.emplace_back(std::get<std::int64_t>(row[0]), std::get<std::int64_t>(row[1]));
    return out;
  };
  // 重庆 drives (902, then 901: newest first); 902 lacks 海泰 and 泰建, 903 lacks 重庆.
  EXPECT_EQ(page("重庆海泰建"), (Matches{{902, 0}, {901, 1}}));
  EXPECT_EQ(page("重庆海泰建 hai"), (Matches{{902, 0}, {901, 1}}));
  EXPECT_EQ(page("重庆海泰建 haitaix"), (Matches{{902, 0}, {901, 0}}));
  ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of", {}).ok());
  EXPECT_EQ(page("重庆海泰建"), (Matches{{902, 0}, {901, 1}})) << "bigrams checked in the index";
  EXPECT_EQ(page("重庆海泰建 hai"), (Matches{{902, 0}, {901, 0}}))
      << "a prefix key in the term list";
}

// A number fragment as the one other key of a page (R-SEARCH: a name and part of a number,
// "zhou 114"): a digit key demands no signature bit, so each entry of the driver would read its
// record's term list. With at most kSmallKeyEntries entries it is tested against the ids of its
// entries instead (read once per statement); with more, on the term list as before. The same
// matches either way: 805 by the word 114, 802 by a number's start, 801 by a number's end.
TEST_F(SqliteFtsTest, ARareNumberFragmentIsCheckedAgainstItsEntriesNotTermLists) {
  const std::vector<Tx::FtsRow> people{{801, "zhou wei 13800000114"},
                                       {802, "zhou fang 11400000000"},
                                       {803, "zhou lei 13800000000"},
                                       {804, "li na 13800000114"},
                                       {805, "zhou 114"}};
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", people, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  const Matches want{{805, 1}, {803, 0}, {802, 1}, {801, 1}};  // zhou drives, newest first
  {
    auto tx = begin_write(*store_);
    EXPECT_EQ(page(*tx, "zhou 114"), want);
    ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of", {}).ok());
    EXPECT_EQ(page(*tx, "zhou 114"), want) << "checked against 114's entries, no term list read";
    EXPECT_EQ(page(*tx, "zhou 11"), (Matches{{805, 0}, {803, 0}, {802, 0}, {801, 0}}))
        << "a fragment of two digits is checked on the term list";
  }
  // One entry more than kSmallKeyEntries: the term list again, with the same matches.
  std::vector<Tx::FtsRow> many;
  for (std::int64_t i = 0; i <= detail::kSmallKeyEntries; ++i)
    many.push_back({10000 + i, "n " + std::to_string(11400000 + i)});
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", many, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_write(*store_);
  EXPECT_EQ(page(*tx, "zhou 114"), want);
  ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of", {}).ok());
  EXPECT_EQ(page(*tx, "zhou 114"), (Matches{{805, 0}, {803, 0}, {802, 0}, {801, 0}}))
      << "a common fragment is checked on the term list";
}

// A name and a common number fragment, or a number and a word of many terms (R-SEARCH, issue
// #4: "zhao 179" at 1M, whose fragment has more than kSmallKeyEntries entries): the window's
// first kSetAfterEntries entries are checked on their term lists, the rest against the set of
// the other key's entries (with every key's signature bits) when it has at most
// kSmallNumberEntries (a fragment) or kSmallKeyEntries (a word) entries. The same matches either
// way; without the term lists only the entries past the first kSetAfterEntries still match.
TEST_F(SqliteFtsTest, ACommonOtherKeyIsCheckedAgainstItsEntriesPastTheWindowsFirstEntries) {
  const std::int64_t n = detail::kSetAfterEntries + 52;
  const auto digits = [](std::int64_t i) {
    std::string d = std::to_string(i);
    return std::string(7 - d.size(), '0') + d;
  };
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t i = 0; i < n; ++i) {
    rows.push_back({20000 + i, "zhou 1140" + digits(i)});  // zhou and 114: every one matches
    const char* xu[] = {"xua", "xub", "xuc", "xud"};       // xu: four terms, more than three
    rows.push_back({40000 + i, std::string(xu[i % 4]) + " 9449" + digits(i)});
  }
  // 114 over kSmallKeyEntries entries (the term list on main), at most kSmallNumberEntries
  for (std::int64_t i = 0; i <= detail::kSmallKeyEntries; ++i)
    rows.push_back({60000 + i, "n 1145" + digits(i)});
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  const std::int64_t size = 4096;
  Matches zhou, zhou_past, xu, xu_past;
  for (std::int64_t i = n; i-- > 0;) {  // zhou's entries: one term, newest first
    zhou.emplace_back(20000 + i, 1);
    zhou_past.emplace_back(20000 + i, n - 1 - i >= detail::kSetAfterEntries ? 1 : 0);
  }
  for (std::int64_t i = 0; i < n; ++i) {  // 9449's: its numbers in order (no number ends with 9449)
    xu.emplace_back(40000 + i, 1);
    xu_past.emplace_back(40000 + i, i >= detail::kSetAfterEntries ? 1 : 0);
  }
  // With the number codes built (term_codes.h), 114's entries are never read: each zhou entry
  // has 114's start code and is checked on its term list (all of them are gone below).
  sqlite_store().wait_term_codes();
  Matches zhou_none;
  for (const auto& [id, match] : zhou) zhou_none.emplace_back(id, 0);
  auto tx = begin_write(*store_);
  EXPECT_EQ(page(*tx, "zhou 114", size), zhou);
  EXPECT_EQ(page(*tx, "9449 xu", size), xu);
  ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of", {}).ok());
  EXPECT_EQ(page(*tx, "zhou 114", size), zhou_none)
      << "the number codes say maybe: the term list decides";
  EXPECT_EQ(page(*tx, "9449 xu", size), xu_past)
      << "past the first kSetAfterEntries entries checked against xu's entries";
}

// A name and a number fragment of more than kSmallKeyEntries entries ("zhao 179" at 1M,
// R-SEARCH, issue #4): each entry of the name is checked against its record's number codes in
// memory (storage/sqlite/term_codes.h) and only a record with the fragment's start or end code
// reads its term list. Shown with a term list that claims a number the record does not have:
// the codes rule the entry out without reading it (the term list would say it matches).
TEST_F(SqliteFtsTest, ACommonNumberFragmentIsCheckedOnTheRecordsNumberCodes) {
  const auto& codes = sqlite_store().term_codes();
  std::vector<Tx::FtsRow> rows{{901, "zhao 17900000001"},   // starts with 179
                               {902, "zhao 13800000179"},   // ends with 179: end code 971
                               {903, "zhao 13800000000"},   // neither
                               {904, "zhao 13800001790"}};  // 179 from its middle: neither
  put_with_common_179(std::move(rows));
  sqlite_store().wait_term_codes();
  ASSERT_TRUE(codes.built());
  using sqlite::TermCodes;
  EXPECT_EQ(codes.check("account", 901, TermCodes::code("179", false), -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("account", 902, TermCodes::code("971", true), -1), TermCodes::kMaybe);
  EXPECT_EQ(
      codes.check("account", 903, TermCodes::code("179", false), TermCodes::code("971", true)),
      TermCodes::kNo);
  const Matches want{{904, 0}, {903, 0}, {902, 1}, {901, 1}};
  auto tx = begin_write(*store_);
  EXPECT_EQ(page(*tx, "zhao 179"), want);
  // 903's term list rewritten to claim a number starting with 179: its codes still rule it out.
  ASSERT_TRUE(tx->exec("UPDATE account_terms_of SET terms = ? WHERE id = 903",
                       std::vector<SqlValue>{std::string("\n17900000000\nzhao\n")})
                  .ok());
  EXPECT_EQ(page(*tx, "zhao 179"), want) << "903 ruled out by its codes, its term list not read";
  ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of WHERE id = 902", {}).ok());
  EXPECT_EQ(page(*tx, "zhao 179"), (Matches{{904, 0}, {903, 0}, {902, 0}, {901, 1}}))
      << "a record with the code is checked on its term list";
}

// A surname and a given name's character ("何 雪", R-SEARCH): the other key 雪 is ruled out on
// the record's first-character codes in memory before the index is looked up under its terms
// or its term list read. Shown with an index entry under 雪 that the record's codes do not have
// (written behind the codes' back): the entry of 何 is not a match, as it would be without them.
TEST_F(SqliteFtsTest, AChineseCharacterIsCheckedOnTheRecordsFirstCharacterCodes) {
  {
    auto tx = begin_write(*store_);
    put(*tx, 921, "何雪梅");
    put(*tx, 922, "何丽");
    ASSERT_TRUE(tx->commit().ok());
  }
  sqlite_store().wait_term_codes();
  auto tx = begin_write(*store_);
  EXPECT_EQ(page(*tx, "何 雪"), (Matches{{922, 0}, {921, 1}}));
  const std::int64_t sig = std::get<std::int64_t>(
      tx->query("SELECT sig FROM account_terms WHERE id = 921 LIMIT 1", {})->rows.at(0).at(0));
  ASSERT_TRUE(
      tx->exec("INSERT INTO account_terms (term, id, account_id, sig) VALUES (?, ?, NULL, ?)",
               std::vector<SqlValue>{std::string("雪"), std::int64_t{922}, sig})
          .ok());
  ASSERT_TRUE(
      tx->exec("UPDATE account_terms SET sig = ? WHERE id = 922", std::vector<SqlValue>{sig}).ok());
  ASSERT_TRUE(tx->exec("UPDATE account_terms_of SET terms = ? WHERE id = 922",
                       std::vector<SqlValue>{std::string("\n何丽\n丽\n雪\n")})
                  .ok());
  EXPECT_EQ(page(*tx, "何 雪"), (Matches{{922, 0}, {921, 1}}))
      << "922 ruled out by its codes: neither its index entries nor its term list read";
}

// The codes stay a superset of every record's terms through updates and deletes: a record whose
// number changed keeps its old codes (found by the new number only, its term list decides), a
// deleted one is not found, and a store opened again on the file builds them from the term
// index (and a record's codes noted by a term build after it).
TEST_F(SqliteFtsTest, NumberCodesFollowUpdatesDeletesAndAReopenedFile) {
  std::vector<Tx::FtsRow> rows{{911, "zhao 17900000001"}, {912, "zhao 18800000001"}};
  for (std::int64_t i = 0; i <= detail::kSmallKeyEntries; ++i)
    rows.push_back({10000 + i, "n " + std::to_string(17910000000 + i) + " " +
                                   std::to_string(18810000000 + i)});
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  sqlite_store().wait_term_codes();
  {
    auto tx = begin_write(*store_);
    put(*tx, 911, "zhao 18800000002");  // 179 → 188
    put(*tx, 912, "zhao 17900000002");  // 188 → 179
    ASSERT_TRUE(tx->commit().ok());
  }
  {
    auto tx = begin_write(*store_);
    EXPECT_EQ(page(*tx, "zhao 179"), (Matches{{912, 1}, {911, 0}}));
    EXPECT_EQ(page(*tx, "zhao 188"), (Matches{{912, 0}, {911, 1}}));
    ASSERT_TRUE(tx->fts_delete("account", 912).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  {
    auto tx = begin_write(*store_);
    EXPECT_EQ(page(*tx, "zhao 179"), (Matches{{911, 0}}));
  }
  store_.reset();
  store_ = open_ok(url_);
  auto& reopened = dynamic_cast<sqlite::SqliteStore&>(*store_);
  reopened.wait_term_codes();
  ASSERT_TRUE(reopened.term_codes().built());
  using sqlite::TermCodes;
  EXPECT_EQ(reopened.term_codes().check("account", 911, TermCodes::code("188", false), -1),
            TermCodes::kMaybe);
  EXPECT_EQ(reopened.term_codes().check("account", 911, TermCodes::code("179", false), -1),
            TermCodes::kNo)
      << "built from the terms the file holds";
  auto tx = begin_write(*store_);
  EXPECT_EQ(page(*tx, "zhao 188"), (Matches{{911, 1}}));
  EXPECT_EQ(page(*tx, "zhao 179"), (Matches{{911, 0}}));
}

// Another process's term writes (the CLI's import or `user add` beside a running server,
// R-SEARCH): a record written through a second store on the same file, which the first store's
// codes never noted, is found by the first store's several-word search — the codes answer
// "not known" for a snapshot holding a term write of another writer they do not cover, and are
// built again from the file. Then a write of the other store followed by one of the first (the
// last term write of the snapshot is the first store's own): its writer saw the other's row
// before replacing it, and the other's record is found too.
TEST_F(SqliteFtsTest, NumberCodesSeeAnotherStoresTermWrites) {
  std::vector<Tx::FtsRow> rows{{931, "zhao 13800000000"}};
  put_with_common_179(std::move(rows));
  sqlite_store().wait_term_codes();
  auto other = open_ok(url_);
  {
    auto tx = begin_write(*other);
    put(*tx, 932, "zhao 17900000002");
    ASSERT_TRUE(tx->commit().ok());
  }
  {
    auto tx = begin_read(*store_);
    EXPECT_EQ(page(*tx, "zhao 179"), (Matches{{932, 1}, {931, 0}}))
        << "the other store's record found before the codes know it";
  }
  sqlite_store().wait_term_codes();
  using sqlite::TermCodes;
  EXPECT_EQ(sqlite_store().term_codes().check("account", 932, TermCodes::code("179", false), -1),
            TermCodes::kMaybe)
      << "built again from the file";
  {
    auto tx = begin_write(*other);
    put(*tx, 933, "zhao 97100000003");  // ends with 179 reversed: no; starts with 971
    put(*tx, 934, "zhao 13800000179");  // ends with 179
    ASSERT_TRUE(tx->commit().ok());
  }
  {
    auto tx = begin_write(*store_);
    put(*tx, 935, "zhao 17900000005");
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  EXPECT_EQ(page(*tx, "zhao 179"), (Matches{{935, 1}, {934, 1}, {933, 0}, {932, 1}, {931, 0}}))
      << "the other store's write under the first store's own last one";
}

// The term codes' build at open reads each term table in pieces of term_codes_chunk_rows rows,
// each its own statement, holding no snapshot between them: a RESTART checkpoint (the writer's
// at the WAL bound, which waits for every reader) gets through at once after each piece. One
// statement a range held a snapshot for seconds at 1M, and the writer's checkpoint waited the
// busy timeout for it holding the writer. The pieces together give every record its codes.
TEST_F(SqliteFtsTest, TermCodesAreBuiltInPiecesThatHoldNoSnapshotBetweenThem) {
  put_forty_numbers();
  const std::string path = url_.substr(std::string("sqlite:").size());
  int pieces = 0;
  std::vector<int> busy;
  StoreOptions options;
  options.term_codes_chunk_rows = 7;
  options.after_term_codes_chunk = [&](std::int64_t) {
    ++pieces;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(RESTART)", -1, &st, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    busy.push_back(sqlite3_column_int(st, 0));  // 1: a reader or writer kept it from restarting
    sqlite3_finalize(st);
    sqlite3_close(db);
  };
  auto other = open_ok(url_, options);
  ASSERT_NE(other, nullptr);
  auto& built = dynamic_cast<sqlite::SqliteStore&>(*other);
  built.wait_term_codes();
  // 40 numbers: each has terms of digits and reversed terms; 王芳 and 王 start 41 records
  // (zhang san feng's 张 too): more than 7 rows in each of the three ranges.
  EXPECT_GT(pieces, 3 * 2) << "each range read in pieces of 7 rows";
  EXPECT_EQ(busy, std::vector<int>(static_cast<std::size_t>(pieces), 0))
      << "no snapshot held between pieces";
  expect_forty_numbers_found(built);
}

// A piece of the term codes' build also ends at the row it is on when a checkpoint of the store
// waits for readers (the writer's RESTART at the WAL bound waits for the piece's read
// transaction, holding every write meanwhile: on a cold start at 1M a piece read from the disk
// took seconds, and the first seconds' creates stalled 2–4 s), and the build goes on from that
// row once the checkpoint is over: every record still gets its codes.
TEST_F(SqliteFtsTest, ATermCodesPieceEndsAtItsRowWhenACheckpointWaits) {
  put_forty_numbers();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::int64_t> piece_rows;
  bool held = false, released = false;
  StoreOptions options;
  options.term_codes_chunk_rows = 1000;  // without a checkpoint: one piece a range
  options.after_term_codes_chunk = [&](std::int64_t n) {
    std::unique_lock lock(mu);
    piece_rows.push_back(n);
    cv.notify_all();
    if (piece_rows.size() == 1) cv.wait(lock, [&] { return held; });  // the checkpoint waits
    if (piece_rows.size() == 2) cv.wait(lock, [&] { return released; });
  };
  auto other = open_ok(url_, options);
  ASSERT_NE(other, nullptr);
  auto& built = dynamic_cast<sqlite::SqliteStore&>(*other);
  std::shared_ptr<void> checkpoint;
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return piece_rows.size() == 1; });
    checkpoint = built.hold_snapshots_for_tests();
    held = true;
    cv.notify_all();
    cv.wait(lock, [&] { return piece_rows.size() == 2; });
  }
  EXPECT_EQ(piece_rows[1], 1) << "the piece read while the checkpoint waits ends at its first row";
  checkpoint.reset();
  {
    std::lock_guard lock(mu);
    released = true;
  }
  cv.notify_all();
  expect_forty_numbers_found(built);
}

// A surname and a given name's character ("王 芳", R-SEARCH): the other key 芳 is a prefix of
// few distinct terms (芳, 芳华), looked up in the index one (term, id) key per term instead of
// on each candidate's term list; with more than kFewKeyTerms of them, the term list. The same
// matches either way: 704 by 芳华, 701 by 王芳.
TEST_F(SqliteFtsTest, AnOtherKeyOfFewTermsIsLookedUpInTheIndexNotTermLists) {
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account",
                                 std::vector<Tx::FtsRow>{
                                     {701, "王芳"}, {702, "王伟"}, {703, "李芳"}, {704, "王 芳华"}},
                                 true)
                    .ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  const Matches want{{704, 1}, {702, 0}, {701, 1}};  // 王 drives: terms 王, 王伟, 王芳
  {
    auto tx = begin_write(*store_);
    EXPECT_EQ(page(*tx, "王 芳"), want);
    ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of", {}).ok());
    EXPECT_EQ(page(*tx, "王 芳"), want) << "芳 and 芳华 looked up in the index";
  }
  // Three more terms of 芳 (芳一, 芳二, 芳三): five in all, more than kFewKeyTerms.
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(
        tx->fts_put_many("account",
                         std::vector<Tx::FtsRow>{{705, "芳一"}, {706, "芳二"}, {707, "芳三"}}, true)
            .ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_write(*store_);
  EXPECT_EQ(page(*tx, "王 芳"), want);
  ASSERT_TRUE(tx->exec("DELETE FROM account_terms_of", {}).ok());
  EXPECT_EQ(page(*tx, "王 芳"), (Matches{{704, 0}, {702, 0}, {701, 0}}))
      << "a key of many terms is checked on the term list";
}

// fts_key_counts_falling (R-SEARCH, Chinese company prefixes at 1M): the keys counted from the
// last one, each up to the fewest before it, so a common key (a city, 重庆) is not counted past
// the rarest; fts_rarest_key reads the rarest (庆海) from such a row, and from a row of plain
// counts too. 重庆 6 entries, 庆海 1, 海泰 3, 泰建 2.
TEST_F(SqliteFtsTest, ExactKeysAreCountedFromTheLastUpToTheFewest) {
  {
    auto tx = begin_write(*store_);
    std::vector<Tx::FtsRow> rows{
        {901, "重庆海泰建材"}, {907, "海泰"}, {908, "海泰"}, {909, "泰建"}};
    for (std::int64_t id = 902; id <= 906; ++id) rows.push_back({id, "重庆天"});
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  const auto counts = [&](std::string_view q, int cap, bool falling) {
    std::vector<SqlValue> params;
    const std::string sql =
        falling ? store_->dialect().fts_key_counts_falling("account", q, cap, params)
                : store_->dialect().fts_key_counts("account", q, cap, params);
    auto r = tx->query(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
    std::vector<std::int64_t> out;
    if (r.ok() && !r->rows.empty())
      for (const auto& v : r->rows[0]) out.push_back(std::get<std::int64_t>(v));
    return out;
  };
  using Counts = std::vector<std::int64_t>;
  EXPECT_EQ(counts("重庆海泰建", 50, false), (Counts{6, 1, 3, 2}));
  EXPECT_EQ(counts("重庆海泰建", 50, true), (Counts{1, 1, 2, 2}));
  EXPECT_EQ(counts("重庆海泰建", 2, true), (Counts{1, 1, 2, 2}));
  EXPECT_EQ(counts("重庆海泰建", 1, true), (Counts{1, 1, 1, 1})) << "every key at the cap";
  EXPECT_EQ(counts("重庆海泰建无", 50, true), (Counts{0, 0, 0, 0, 0})) << "建无: no entry";
  EXPECT_EQ(counts("重庆天", 50, true), (Counts{5, 5}));
  EXPECT_EQ(fts_rarest_key(counts("重庆海泰建", 50, true)), 1u);
  EXPECT_EQ(fts_rarest_key(counts("重庆海泰建", 50, false)), 1u);
  EXPECT_EQ(fts_rarest_key(Counts{1, 1, 1, 1}), 3u) << "all at the cap: the last one";
  EXPECT_EQ(fts_rarest_key(Counts{7}), 0u);
  std::vector<SqlValue> params;
  EXPECT_EQ(store_->dialect().fts_key_counts_falling("account", "!!", 50, params), "");
  EXPECT_TRUE(params.empty());
}

// fts_pair_counts (R-SEARCH, several words typed at 1M: "li n", "zhang 138"): when two common keys
// are compared, the second is counted only up to one more than the first has, which still tells
// which has fewer entries; li 3 entries (li, lia, lin), n 5, 138 2 (13800, 99138).
TEST_F(SqliteFtsTest, PairCountsReadTheSecondKeyOnlyPastTheFirst) {
  {
    auto tx = begin_write(*store_);
    std::vector<Tx::FtsRow> rows{{901, "li 13800"}, {902, "lia"}, {903, "lin 99138"}};
    for (std::int64_t id = 904; id <= 908; ++id) rows.push_back({id, "nora"});
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  const auto counts = [&](std::string_view q, int first, int second, int cap) {
    std::vector<SqlValue> params;
    const std::string sql =
        store_->dialect().fts_pair_counts("account", q, first, second, cap, params);
    std::vector<std::int64_t> out;
    if (sql.empty()) return out;
    auto r = tx->query(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
    if (r.ok() && !r->rows.empty())
      for (const auto& v : r->rows[0]) out.push_back(std::get<std::int64_t>(v));
    return out;
  };
  using Counts = std::vector<std::int64_t>;
  EXPECT_EQ(counts("li n", 0, 1, 50), (Counts{3, 4})) << "n counted up to li's 3 + 1";
  EXPECT_EQ(counts("li n", 1, 0, 50), (Counts{5, 3})) << "li has fewer: its own count";
  EXPECT_EQ(counts("li n", 0, 1, 2), (Counts{2, 3})) << "li at the cap, n one past it";
  EXPECT_EQ(counts("li nora", 1, 0, 50), (Counts{5, 3}));
  EXPECT_EQ(counts("li x", 0, 1, 50), (Counts{3, 0})) << "x: no entry";
  EXPECT_EQ(counts("n 138", 0, 1, 50), (Counts{5, 2})) << "138 by its start or its end";
  EXPECT_EQ(counts("n 138", 1, 0, 50), (Counts{2, 3}));
  EXPECT_EQ(counts("138 n", 1, 0, 50), (Counts{5, 2}));
  EXPECT_EQ(counts("138 n", 0, 1, 50), (Counts{2, 3}));
  EXPECT_EQ(counts("li n", 0, 0, 50), Counts{}) << "one key twice";
  EXPECT_EQ(counts("li n", 0, 2, 50), Counts{}) << "no third key";
  std::vector<SqlValue> params;
  EXPECT_EQ(store_->dialect().fts_pair_counts("account", "!!", 0, 1, 50, params), "");
  EXPECT_TRUE(params.empty());
}

// fts_window_end: the last entry of the window fts_page reads from the same position (where the
// next window starts), and no row when fewer entries than the window are left.
TEST_F(SqliteFtsTest, WindowEndIsTheLastEntryOfThePageAndNoneWhenTheKeyEndsWithin) {
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t id = 100; id < 130; ++id) rows.push_back({id, "zhang qqwei"});
  for (std::int64_t id = 10; id < 20; ++id) rows.push_back({id, "zhao li"});
  rows.insert(rows.end(), {{7, "丰武术"}, {8, "丰武"}, {9, "丰武"}});
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  using Entry = std::pair<std::string, std::int64_t>;
  auto end = [&](std::string_view q, int driver, const FtsPosition* after,
                 int n) -> std::optional<Entry> {
    std::vector<SqlValue> params;
    const std::string sql =
        store_->dialect().fts_window_end("account", q, driver, after, n, params);
    auto r = tx->query(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
    if (!r.ok() || r->rows.empty()) return std::nullopt;
    return Entry{std::get<std::string>(r->rows[0][0]), std::get<std::int64_t>(r->rows[0][1])};
  };
  EXPECT_EQ(end("zh", -1, nullptr, 1), (Entry{"zhang", 129}));
  EXPECT_EQ(end("zh", -1, nullptr, 20), (Entry{"zhang", 110}));
  FtsPosition after{"zhang", 110};
  EXPECT_EQ(end("zh", -1, &after, 10), (Entry{"zhang", 100}));
  EXPECT_EQ(end("zh", -1, &after, 11), (Entry{"zhao", 19})) << "on into the next term";
  EXPECT_EQ(end("zh", -1, &after, 20), (Entry{"zhao", 10}));
  EXPECT_EQ(end("zh", -1, &after, 21), std::nullopt) << "the key ends within the window";
  EXPECT_EQ(end("zh", -1, nullptr, 41), std::nullopt);
  // The driver chosen by its position among the keys; an exact key (a bigram) goes on within
  // its one term.
  EXPECT_EQ(end("zh qq", 1, nullptr, 30), (Entry{"qqwei", 100}));
  EXPECT_EQ(end("zh qq", 1, nullptr, 31), std::nullopt);
  FtsPosition in_wei{"qqwei", 120};
  EXPECT_EQ(end("zh qq", 1, &in_wei, 20), (Entry{"qqwei", 100}));
  FtsPosition in_bigram{"丰武", 9};
  EXPECT_EQ(end("丰武", -1, &in_bigram, 2), (Entry{"丰武", 7}));
  EXPECT_EQ(end("丰武", -1, &in_bigram, 3), std::nullopt);
  std::vector<SqlValue> params;
  EXPECT_EQ(store_->dialect().fts_window_end("account", "!!", -1, nullptr, 10, params), "");
}

TEST_F(SqliteFtsTest, ExactKeyPagesWithinItsTerm) {
  {
    auto tx = begin_write(*store_);
    for (std::int64_t id = 10; id < 15; ++id) put(*tx, id, "三丰");
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  FtsPosition after{"三丰", 12};
  std::vector<SqlValue> params;
  const std::string sub = store_->dialect().fts_page("account", "三丰", -1, &after, 10, params);
  auto r = tx->query("SELECT fts_id FROM " + sub + " f ORDER BY fts_term, fts_id DESC", params);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::vector<std::int64_t> ids;
  for (const auto& row : r->rows) ids.push_back(std::get<std::int64_t>(row[0]));
  EXPECT_EQ(ids, (std::vector<std::int64_t>{11, 10, 3})) << "after 12: 11, 10, then 张三丰 (id 3)";
}

TEST_F(SqliteFtsTest, EachEntryCarriesItsRecordsSignatureAlsoWhenLoaded) {
  // fts_put (SetUp) and the rebuild's fts_load + fts_load_finish write the same signature.
  std::vector<Tx::FtsRow> rows{{20, "Zhang Wei 张伟 zw"}, {21, "Li Na lina"}};
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_load("account", rows).ok());
    ASSERT_TRUE(tx->fts_load_finish("account").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  for (const auto& [id, text] : std::vector<std::pair<std::int64_t, std::string>>{
           {1, "Acme Corporation Berlin"}, {20, rows[0].text}, {21, rows[1].text}}) {
    SqlValue p[] = {id};
    auto sigs = tx->query("SELECT DISTINCT sig FROM account_terms WHERE id = ?", p);
    ASSERT_TRUE(sigs.ok());
    ASSERT_EQ(sigs->rows.size(), 1u) << id;
    EXPECT_EQ(std::get<std::int64_t>(sigs->rows[0][0]),
              detail::term_signature(detail::index_terms(text)))
        << id;
  }
  tx.reset();
  // Several words: the signature rules out Li Na for "zhang w"; both records stay findable.
  EXPECT_EQ(search("zhang w"), (Ids{20}));
  EXPECT_EQ(search("li n"), (Ids{21}));
  EXPECT_EQ(search("li w"), Ids{});
}

TEST_F(SqliteFtsTest, PutManyFindsBulkRowsAndReplaces) {
  // Several statements' worth (500 rows each, then power-of-two remainders) of new records.
  std::vector<Tx::FtsRow> fresh;
  for (std::int64_t id = 100; id < 1300; ++id)
    fresh.push_back({id, "bulk item " + std::to_string(id) + (id == 777 ? " 东方明珠" : "")});
  {
    auto tx = begin_write(*store_);
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

// A batch of many records: their terms are worked out and sorted in parts on the worker pool,
// the parts merged; every (term, record, signature) row must land once, none lost or repeated.
TEST_F(SqliteFtsTest, PutManyOfManyTermsWritesEveryTermRowOfEveryRecordOnce) {
  std::vector<Tx::FtsRow> rows;
  for (std::int64_t id = 2000; id < 5000; ++id)
    rows.push_back({id, "Firma " + std::to_string(id * 7919) + " 北京" +
                            (id % 3 ? " zhang wei" : " li na") + " 1380013" + std::to_string(id)});
  std::set<std::tuple<std::string, std::int64_t, std::int64_t>> want;
  for (const auto& r : rows) {
    const auto terms = detail::index_terms(r.text);
    const std::int64_t sig = detail::term_signature(terms);
    for (const auto& t : terms) want.emplace(t, r.id, sig);
  }
  ASSERT_GT(want.size(), 3u * 4096) << "enough term rows for several sorted parts";
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_many("account", rows, /*fresh=*/true).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto tx = begin_read(*store_);
  auto r = tx->query("SELECT term, id, sig FROM account_terms WHERE id >= 2000");
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::set<std::tuple<std::string, std::int64_t, std::int64_t>> got;
  for (const auto& row : r->rows)
    got.emplace(std::get<std::string>(row[0]), std::get<std::int64_t>(row[1]),
                std::get<std::int64_t>(row[2]));
  EXPECT_EQ(r->rows.size(), want.size()) << "each term row once";
  EXPECT_EQ(got, want);
  auto lists = tx->query("SELECT count(*) FROM account_terms_of WHERE id >= 2000");
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(std::get<std::int64_t>(lists->rows[0][0]), 3000) << "a term list per record";
  tx.reset();
  EXPECT_EQ(search(std::to_string(4321 * 7919)), (Ids{4321}));
}

TEST_F(SqliteFtsTest, FailingBadEntityName) {
  auto tx = begin_write(*store_);
  EXPECT_EQ(tx->fts_put("Account\"; --", 1, "x").error().code, Errc::kInternal);
  EXPECT_EQ(tx->fts_search("a b", "x", 10).error().code, Errc::kInternal);
  EXPECT_THROW(store_->dialect().fts_create("1abc"), std::invalid_argument);
}

TEST_F(SqliteStoreTest, BackupWhileWritingIsConsistent) {
  std::atomic<bool> stop{false};
  std::atomic<int> committed{0};
  // Each transaction inserts a pair; a consistent copy therefore holds an even number of rows.
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      auto tx = begin_write(*store_);
      exec_ok(*tx, "INSERT INTO t(name) VALUES ('first')");
      exec_ok(*tx, "INSERT INTO t(name) VALUES ('second')");
      ASSERT_TRUE(tx->commit().ok());
      ++committed;
    }
  });
  while (committed < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string backup = dir_.file("backup.db");
  auto s = store_->backup_to(backup);
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(fs::exists(backup + ".tmp"));

  auto copy = open_ok(backup);
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(*copy->integrity_check(), "ok");
  std::int64_t rows = count(*copy, "t");
  EXPECT_GE(rows, 40);
  EXPECT_EQ(rows % 2, 0);
}

TEST_F(SqliteStoreTest, RestoreReplacesData) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('in backup')");
    ASSERT_TRUE(tx->commit().ok());
  }
  const std::string backup = dir_.file("backup.db");
  ASSERT_TRUE(store_->backup_to(backup).ok());
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "DELETE FROM t");
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('after backup 1')");
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('after backup 2')");
    exec_ok(*tx, "CREATE TABLE later(x)");
    ASSERT_TRUE(tx->commit().ok());
  }
  store_.reset();
  auto s = restore_store(url_, backup);
  ASSERT_TRUE(s.ok()) << s.error().message;

  store_ = open_ok(url_);
  auto tx = begin_read(*store_);
  auto rows = tx->query("SELECT name FROM t");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows.size(), 1u);
  EXPECT_EQ(std::get<std::string>(rows->rows[0][0]), "in backup");
  EXPECT_FALSE(tx->query("SELECT * FROM later").ok());
  EXPECT_EQ(*store_->integrity_check(), "ok");
}

TEST_F(SqliteStoreTest, FailingRestoreOfBadBackupLeavesTargetAlone) {
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx, "INSERT INTO t(name) VALUES ('precious')");
    ASSERT_TRUE(tx->commit().ok());
  }
  store_.reset();
  const std::string garbage = dir_.file("garbage.db");
  {
    std::ofstream out(garbage, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out << "this is not a database ";
  }
  const std::string empty = dir_.file("empty.db");
  std::ofstream(empty).close();

  for (const std::string& bad : {garbage, empty, dir_.file("missing.db")}) {
    auto s = restore_store(url_, bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, Errc::kBadRequest) << bad;
    EXPECT_NE(s.error().message.find("not a valid Rapport backup"), std::string::npos);
  }
  store_ = open_ok(url_);
  EXPECT_EQ(count(*store_, "t"), 1);
}

TEST(SqliteOpen, FailingUnopenablePath) {
  TempDir dir;
  auto r = open_store("sqlite:" + dir.file("no/such/dir/rapport.db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kStorage);
  EXPECT_NE(r.error().message.find("cannot open database"), std::string::npos);
  // A directory where the file should be.
  auto d = open_store(dir.file(""));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kStorage);
}

TEST(SqliteOpen, FailingOtherUrls) {
  EXPECT_EQ(open_store("mysql://h/db").error().code, Errc::kBadRequest);
  EXPECT_EQ(open_store("sqlite:").error().code, Errc::kBadRequest);
  EXPECT_EQ(open_store("sqlite::memory:").error().code, Errc::kBadRequest);
}

TEST(SqliteOpen, DialectAndBackendName) {
  TempDir dir;
  auto store = open_ok("sqlite://" + dir.file("d.db"));
  EXPECT_EQ(store->backend_name(), "sqlite");
  EXPECT_EQ(store->dialect().column_type(ColumnType::kInteger), "INTEGER");
  EXPECT_EQ(store->dialect().column_type(ColumnType::kReal), "REAL");
  EXPECT_EQ(store->dialect().column_type(ColumnType::kText), "TEXT");
  EXPECT_EQ(store->dialect().ilike(), "LIKE");
  EXPECT_TRUE(fs::exists(dir.file("d.db")));
}

// A bulk load's term rows built after it (storage/term_build.h): fts_put_lists writes the lists
// alone, build_term_rows inserts exactly the rows fts_put_many would have, part by part.
class TermBuildTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    auto tx = begin_write(*store_);
    for (const auto& sql : store_->dialect().fts_create("account")) exec_ok(*tx, sql);
    ASSERT_TRUE(tx->commit().ok());
  }
  // Records 1..n, "alpha<i> zulu<i>", lists only.
  void load(int n) {
    std::vector<Tx::FtsRow> rows;
    for (int i = 1; i <= n; ++i)
      rows.push_back(
          {i, "alpha" + std::to_string(i) + " zulu" + std::to_string(i), std::int64_t{i}});
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_lists("account", rows).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  std::int64_t count(std::string_view sql) {
    auto tx = begin_write(*store_);
    auto r = tx->query(sql);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::get<std::int64_t>(r->rows[0][0]) : -1;
  }
  std::vector<std::string> terms_of(std::int64_t id) {
    auto tx = begin_write(*store_);
    const SqlValue key[] = {id};
    auto r = tx->query("SELECT term FROM account_terms WHERE id = ? ORDER BY term", key);
    EXPECT_TRUE(r.ok());
    std::vector<std::string> out;
    if (r.ok())
      for (const auto& row : r->rows) out.push_back(std::get<std::string>(row[0]));
    return out;
  }
  // Every term row is one its record's list names, and every listed term has its row.
  void expect_rows_match_lists() {
    EXPECT_EQ(count("SELECT count(*) FROM account_terms"),
              count("SELECT coalesce(sum(length(terms) - length(replace(terms, char(10), '')) - "
                    "1), 0) FROM account_terms_of"));
    EXPECT_EQ(count("SELECT count(*) FROM account_terms t WHERE NOT EXISTS (SELECT 1 FROM "
                    "account_terms_of o WHERE o.id = t.id AND instr(o.terms, char(10) || t.term "
                    "|| char(10)) > 0)"),
              0);
  }
  // A build (parts of 64 rows: the first holds alpha terms only, zulu ones come later; ranges of
  // `range_rows` buckets, 0: the default) after whose first part record 7 is written anew
  // without its zulu term and records 9 and 250 are deleted: they end with exactly their current
  // rows (no stale zulu7, none for the deleted ones), the others with theirs.
  void build_with_writes_after_the_first_part(std::size_t range_rows) {
    ASSERT_TRUE(store_->pending_terms().begin("account"));
    TermBuildOptions o;
    o.part_rows = 64;
    if (range_rows > 0) o.range_rows = range_rows;
    int parts = 0;
    o.after_part = [&]() -> Status {
      if (++parts != 1) return {};
      RP_ASSIGN(auto tx, store_->write());
      RP_TRY(tx->fts_put_many("account",
                              std::vector<Tx::FtsRow>{{7, "alpha7 yankee7", std::int64_t{7}}},
                              /*fresh=*/false));
      RP_TRY(tx->fts_delete("account", 9));
      RP_TRY(tx->fts_delete("account", 250));
      return tx->commit();
    };
    auto stats = build_term_rows(*store_, "account", 1, o);
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    store_->pending_terms().end("account");
    EXPECT_EQ(stats->refreshed, 3u);
    EXPECT_EQ(terms_of(7), (std::vector<std::string>{"alpha7", "yankee7"})) << "no stale zulu7";
    EXPECT_TRUE(terms_of(9).empty()) << "a deleted record gets no row";
    EXPECT_TRUE(terms_of(250).empty());
    EXPECT_EQ(terms_of(8), (std::vector<std::string>{"alpha8", "zulu8"}));
    expect_rows_match_lists();
  }
};

TEST_F(TermBuildTest, ListsOnlyThenTheBuildGivesTheRowsPutManyWould) {
  load(300);
  EXPECT_EQ(count("SELECT count(*) FROM account_terms"), 0) << "no term row before the build";
  EXPECT_EQ(count("SELECT count(*) FROM account_terms_of"), 300);
  ASSERT_TRUE(store_->pending_terms().begin("account"));
  EXPECT_TRUE(store_->pending_terms().pending("account"));
  EXPECT_FALSE(store_->pending_terms().begin("account")) << "one load at a time";
  TermBuildOptions o;
  o.part_rows = 64;
  o.read_records = 100;
  auto stats = build_term_rows(*store_, "account", 1, o);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  store_->pending_terms().end("account");
  EXPECT_FALSE(store_->pending_terms().pending("account"));
  EXPECT_EQ(stats->records, 300u);
  EXPECT_EQ(stats->rows, 600u);
  EXPECT_EQ(stats->parts, 10u) << "600 rows, 64 a write transaction";
  expect_rows_match_lists();
  EXPECT_EQ(terms_of(7), (std::vector<std::string>{"alpha7", "zulu7"}));
  // the same rows (signature, account) as fts_put_many writes for the same text
  auto tx = begin_write(*store_);
  ASSERT_TRUE(tx->fts_put_many("account",
                               std::vector<Tx::FtsRow>{{1000, "alpha7 zulu7", std::int64_t{7}}},
                               true)
                  .ok());
  ASSERT_TRUE(tx->commit().ok());
  EXPECT_EQ(
      count("SELECT count(*) FROM (SELECT term, account_id, sig FROM account_terms WHERE id = 7 "
            "EXCEPT SELECT term, account_id, sig FROM account_terms WHERE id = 1000)"),
      0);
  auto search = begin_write(*store_);
  auto found = search->fts_search("account", "zulu299", 10);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, std::vector<std::int64_t>{299});
}

// An update and a delete of loaded records while their term rows are being built (between two
// of the build's parts): the update's record ends with exactly its new text's rows (none of
// its old list's terms that the build had not reached yet), the deleted one with none.
TEST_F(TermBuildTest, UpdateAndDeleteBetweenPartsLeaveExactlyTheCurrentRows) {
  load(300);
  build_with_writes_after_the_first_part(/*range_rows=*/0);
  EXPECT_EQ(count("SELECT count(*) FROM account_terms_of"), 298);
}

// Many ranges of buckets (range_rows small): each range's rows are cut on a thread of their own
// while the writer inserts the one before, reading each list on from where the last range
// stopped. Every term of every list gets its row, none twice, none missing.
TEST_F(TermBuildTest, ManyRangesGiveEveryListedRowOnce) {
  std::vector<Tx::FtsRow> rows;
  const std::vector<std::string> words = {"alpha",   "bravo", "charlie", "delta", "echo",
                                          "foxtrot", "golf",  "hotel",   "india", "juliet"};
  for (int i = 1; i <= 200; ++i) {
    std::string text;
    for (std::size_t w = 0; w < words.size(); ++w)
      if ((i + static_cast<int>(w)) % 3 != 0) {
        text += words[w];
        text += std::to_string(i % 17);
        text += ' ';
      }
    text += std::to_string(1000000 + i * 7919);  // digits and their reversed term
    rows.push_back({i, text, std::int64_t{i}});
  }
  {
    auto tx = begin_write(*store_);
    ASSERT_TRUE(tx->fts_put_lists("account", rows).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  const std::int64_t listed = count(
      "SELECT sum(length(terms) - length(replace(terms, char(10), '')) - 1) FROM "
      "account_terms_of");
  ASSERT_TRUE(store_->pending_terms().begin("account"));
  TermBuildOptions o;
  o.part_rows = 50;
  o.range_rows = 120;  // about 20 ranges
  o.read_records = 64;
  auto stats = build_term_rows(*store_, "account", 1, o);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  store_->pending_terms().end("account");
  EXPECT_EQ(static_cast<std::int64_t>(stats->rows), listed);
  EXPECT_GT(stats->parts, 10u);
  expect_rows_match_lists();
  auto tx = begin_write(*store_);
  auto found = tx->fts_search("account", "juliet5", 50);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->empty());
}

// The update and deletes of UpdateAndDeleteBetweenPartsLeaveExactlyTheCurrentRows with one
// range a bucket: the next range ("zu") was already cut from the old lists when they come, so
// the build cuts it again from the current ones (no stale zulu7, none of the deleted records).
TEST_F(TermBuildTest, AWriteBesideTheBuildRecutsTheRangeCutAhead) {
  load(300);
  build_with_writes_after_the_first_part(/*range_rows=*/10);  // "al" and "zu": a range each
}

// A list whose terms are not in ascending order (not as the store writes them; e.g. from an
// older writer) is cut by reading every list for each range: its rows are all built too.
TEST_F(TermBuildTest, AnUnorderedListIsBuiltInFull) {
  load(50);
  {
    auto tx = begin_write(*store_);
    exec_ok(*tx,
            "UPDATE account_terms_of SET terms = char(10) || 'zulu3' || char(10) || "
            "'alpha3' || char(10) || 'mike3' || char(10) WHERE id = 3");
    ASSERT_TRUE(tx->commit().ok());
  }
  ASSERT_TRUE(store_->pending_terms().begin("account"));
  TermBuildOptions o;
  o.part_rows = 16;
  o.range_rows = 10;
  auto stats = build_term_rows(*store_, "account", 1, o);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  store_->pending_terms().end("account");
  EXPECT_EQ(terms_of(3), (std::vector<std::string>{"alpha3", "mike3", "zulu3"}));
  EXPECT_EQ(stats->rows, 101u);
  expect_rows_match_lists();
}

// Writes that are not noted (nothing pending) are not remembered.
TEST_F(TermBuildTest, TouchedIsNotedOnlyWhilePending) {
  store_->pending_terms().touched("account", 5);
  ASSERT_TRUE(store_->pending_terms().begin("account"));
  EXPECT_TRUE(store_->pending_terms().take_touched("account").empty());
  store_->pending_terms().touched("account", 5);
  store_->pending_terms().touched("contact", 6);
  EXPECT_EQ(store_->pending_terms().take_touched("account"), std::vector<std::int64_t>{5});
  EXPECT_TRUE(store_->pending_terms().take_touched("account").empty());
  EXPECT_TRUE(store_->pending_terms().take_touched("contact").empty());
  store_->pending_terms().end("account");
}

}  // namespace
}  // namespace rapport::storage
