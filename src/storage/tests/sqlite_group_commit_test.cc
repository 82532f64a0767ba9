// Group commit on the SQLite backend: overlapping write transactions share one COMMIT, each is
// acknowledged only after it, a failing member leaves the others committed, and a failed COMMIT
// fails every member and leaves none of them behind. Batches are formed deterministically: a
// transaction is held open until the other writers are seen waiting (writers_waiting()), so no
// assertion depends on timing. A fault-injecting VFS (below) makes COMMIT fail on demand.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/sqlite/sqlite_store.h"
#include "storage/store.h"

namespace rapport::storage::sqlite {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("rapport_group_commit_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
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

// ---- A VFS that forwards to the default one and, while armed, fails every write to a WAL file
// (the frames a COMMIT appends), so the COMMIT fails with SQLITE_IOERR_WRITE before any of the
// batch reaches the log.
std::atomic<bool> g_fail_wal_writes{false};
std::atomic<bool> g_fail_wal_syncs{false};  // while set, a WAL sync fails (SQLITE_IOERR_FSYNC)
std::atomic<int> g_wal_writes{0};           // writes to WAL files through the fault VFS
std::atomic<int> g_wal_syncs{0};            // syncs of WAL files through the fault VFS
std::atomic<int> g_wal_largest_write{0};    // the most bytes one write to a WAL file carried
sqlite3_vfs* g_real_vfs = nullptr;

struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real;  // lives right after this struct, in the same allocation
  bool wal;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }

int fault_close(sqlite3_file* f) { return real_of(f)->pMethods->xClose(real_of(f)); }
int fault_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}
int fault_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (reinterpret_cast<FaultFile*>(f)->wal && g_fail_wal_writes) return SQLITE_IOERR_WRITE;
  if (reinterpret_cast<FaultFile*>(f)->wal) {
    ++g_wal_writes;
    int largest = g_wal_largest_write.load();
    while (n > largest && !g_wal_largest_write.compare_exchange_weak(largest, n)) {
    }
  }
  return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}
int fault_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
// While closed, a WAL sync waits at this gate (after counting itself in `entered`) until it opens.
struct SyncGate {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  int entered = 0;
};
SyncGate g_sync_gate;

int fault_sync(sqlite3_file* f, int flags) {
  if (reinterpret_cast<FaultFile*>(f)->wal) {
    ++g_wal_syncs;
    if (g_fail_wal_syncs) return SQLITE_IOERR_FSYNC;
    std::unique_lock lock(g_sync_gate.mu);
    if (g_sync_gate.closed) {
      ++g_sync_gate.entered;
      g_sync_gate.cv.notify_all();
      g_sync_gate.cv.wait(lock, [] { return !g_sync_gate.closed; });
    }
  }
  return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int fault_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int fault_lock(sqlite3_file* f, int lock) { return real_of(f)->pMethods->xLock(real_of(f), lock); }
int fault_unlock(sqlite3_file* f, int lock) {
  return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}
int fault_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int fault_file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int fault_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int fault_device(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int fault_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
}
int fault_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void fault_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int fault_shm_unmap(sqlite3_file* f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}
int fault_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}
int fault_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

const sqlite3_io_methods kFaultMethods = {
    3,
    fault_close,
    fault_read,
    fault_write,
    fault_truncate,
    fault_sync,
    fault_file_size,
    fault_lock,
    fault_unlock,
    fault_check_reserved,
    fault_file_control,
    fault_sector_size,
    fault_device,
    fault_shm_map,
    fault_shm_lock,
    fault_shm_barrier,
    fault_shm_unmap,
    fault_fetch,
    fault_unfetch,
};

int fault_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = reinterpret_cast<FaultFile*>(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->base.pMethods = nullptr;
  auto* real = static_cast<sqlite3_vfs*>(vfs->pAppData);
  int rc = real->xOpen(real, name, f->real, flags, out_flags);
  if (f->real->pMethods != nullptr) f->base.pMethods = &kFaultMethods;
  return rc;
}

sqlite3_vfs g_fault_vfs;

// Makes the fault VFS the default for the test's lifetime (connections opened meanwhile use it).
class FaultVfs {
 public:
  FaultVfs() {
    g_real_vfs = sqlite3_vfs_find(nullptr);
    g_fault_vfs = *g_real_vfs;
    g_fault_vfs.zName = "rapport_fault";
    g_fault_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real_vfs->szOsFile;
    g_fault_vfs.pAppData = g_real_vfs;
    g_fault_vfs.xOpen = fault_open;
    g_fault_vfs.pNext = nullptr;
    sqlite3_vfs_register(&g_fault_vfs, 1);
  }
  ~FaultVfs() {
    g_fail_wal_writes = false;
    g_fail_wal_syncs = false;
    sqlite3_vfs_unregister(&g_fault_vfs);
    sqlite3_vfs_register(g_real_vfs, 1);
  }
};

// ---- helpers

// defer_wal_sync: the COMMIT's WAL sync on the sync thread (serve --wal-sync-beside).
std::unique_ptr<SqliteStore> open_store_at(const std::string& path, int max_members = 64,
                                           int wal_max_frames = StoreOptions{}.wal_max_frames,
                                           bool defer_wal_sync = false) {
  StoreOptions options;
  options.defer_wal_sync = defer_wal_sync;
  options.group_commit_max_ms = 0;  // batches bounded by size only: deterministic
  options.group_commit_max_members = max_members;
  options.wal_max_frames = wal_max_frames;
  auto store = SqliteStore::open(path, options);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
  return store.ok() ? std::move(store).value() : nullptr;
}

std::vector<std::string> names(Store& store) {
  auto tx = store.read();
  EXPECT_TRUE(tx.ok());
  auto rows = (*tx)->query("SELECT name FROM t ORDER BY name");
  EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
  std::vector<std::string> out;
  if (rows.ok()) {
    for (const auto& r : rows->rows) out.push_back(std::get<std::string>(r[0]));
  }
  return out;
}

Status insert(Tx& tx, const std::string& name) {
  const SqlValue p[] = {name};
  auto r = tx.exec("INSERT INTO t(name) VALUES (?)", p);
  if (!r.ok()) return std::move(r).error();
  return {};
}

// One write transaction that runs `sql` and commits: a test's table made before it measures.
bool exec_committed(Store& store, const char* sql) {
  auto tx = store.write();
  return tx.ok() && (*tx)->exec(sql).ok() && (*tx)->commit().ok();
}

// Waits (polling, generous bound) until `n` writers are blocked in write().
bool wait_for_waiters(SqliteStore& store, int n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (store.writers_waiting() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Waits (polling, generous bound) until `n` write_grouped() items are queued.
bool wait_for_queued(SqliteStore& store, int n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (store.grouped_writes_queued() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("g.db");
    store_ = open_store_at(path_);
    ASSERT_NE(store_, nullptr);
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE)").ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE parent(id INTEGER PRIMARY KEY)").ok());
    ASSERT_TRUE((*tx)
                    ->exec("CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER "
                           "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
                    .ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }

  // Runs `held` in a write transaction opened first, while `others` threads each block in
  // write(); once they all wait, `held` runs and commits, and every other thread runs its own
  // `member(i, tx)` in the same batch. Returns the commit() result of each (held first).
  std::vector<Status> batch(const std::function<Status(Tx&)>& held, int others,
                            const std::function<Status(int, Tx&)>& member) {
    std::vector<Status> results(others + 1);
    auto first = store_->write();
    EXPECT_TRUE(first.ok());
    std::vector<std::thread> threads;
    for (int i = 0; i < others; ++i) {
      threads.emplace_back([&, i] {
        auto tx = store_->write();
        if (!tx.ok()) {
          results[i + 1] = std::move(tx).error();
          return;
        }
        Status s = member(i, **tx);
        results[i + 1] = s.ok() ? (*tx)->commit() : s;
      });
    }
    EXPECT_TRUE(wait_for_waiters(*store_, others));
    Status s = held(**first);
    results[0] = s.ok() ? (*first)->commit() : s;
    for (auto& th : threads) th.join();
    return results;
  }

  // As batch(), with the others calling write_grouped(): once they are all queued, `held`
  // runs and commits, and its commit() runs their items on its own thread.
  std::vector<Status> grouped_batch(const std::function<Status(Tx&)>& held, int others,
                                    const std::function<Status(int, Tx&)>& item) {
    std::vector<Status> results(others + 1);
    auto first = store_->write();
    EXPECT_TRUE(first.ok());
    std::vector<std::thread> threads;
    for (int i = 0; i < others; ++i)
      threads.emplace_back(
          [&, i] { results[i + 1] = store_->write_grouped([&](Tx& tx) { return item(i, tx); }); });
    EXPECT_TRUE(wait_for_queued(*store_, others));
    Status s = held(**first);
    results[0] = s.ok() ? (*first)->commit() : s;
    for (auto& th : threads) th.join();
    return results;
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(GroupCommitTest, QueuedGroupedWritesRunOnTheHoldersThreadAndShareItsCommit) {
  auto before = store_->group_commit_stats();
  const auto holder = std::this_thread::get_id();
  std::atomic<int> on_holder{0};
  auto results = grouped_batch([](Tx& tx) { return insert(tx, "held"); }, 3,
                               [&](int i, Tx& tx) {
                                 if (std::this_thread::get_id() == holder) ++on_holder;
                                 return insert(tx, "g" + std::to_string(i));
                               });
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(on_holder, 3);
  auto after = store_->group_commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1);
  EXPECT_EQ(after.committed - before.committed, 4);
  EXPECT_EQ(after.combined - before.combined, 3);
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"g0", "g1", "g2", "held"}));
}

TEST_F(GroupCommitTest, FailingGroupedWriteRollsBackAloneAndTheOthersCommit) {
  // Item 1 writes a row, then breaks a unique constraint: its error is its caller's answer and
  // its first row vanishes; the other items and the held writer commit together.
  auto results = grouped_batch([](Tx& tx) { return insert(tx, "held"); }, 3,
                               [](int i, Tx& tx) -> Status {
                                 RP_TRY(insert(tx, "g" + std::to_string(i)));
                                 if (i == 1) RP_TRY(insert(tx, "held"));
                                 return {};
                               });
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error().code, Errc::kDuplicate);
  EXPECT_EQ(results[2].error().field, "name");
  EXPECT_TRUE(results[3].ok());
  const std::vector<std::string> expected{"g0", "g2", "held"};
  EXPECT_EQ(names(*store_), expected);
  store_.reset();
  store_ = open_store_at(path_);
  EXPECT_EQ(names(*store_), expected);
}

TEST_F(GroupCommitTest, FailingCommitInsideAGroupedWriteIsRefused) {
  Status inner;
  Status s = store_->write_grouped([&](Tx& tx) -> Status {
    RP_TRY(insert(tx, "x"));
    inner = tx.commit();
    return inner;
  });
  ASSERT_FALSE(inner.ok());
  EXPECT_EQ(inner.error().code, Errc::kInternal);
  EXPECT_EQ(inner.error().message, "a grouped write is committed by its group");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(names(*store_).empty());
}

TEST_F(GroupCommitTest, GroupedWritesOfAFullBatchRunInTheNextOne) {
  // At most 2 members per batch: the held writer takes one item into its batch; the two
  // items left over form the next batch, begun by the combiner thread (the holder's caller
  // waits for its commit()).
  store_.reset();
  store_ = open_store_at(path_, 2);
  ASSERT_NE(store_, nullptr);
  auto results = grouped_batch([](Tx& tx) { return insert(tx, "held"); }, 3,
                               [](int i, Tx& tx) { return insert(tx, "g" + std::to_string(i)); });
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  auto stats = store_->group_commit_stats();
  EXPECT_EQ(stats.batches, 2);
  EXPECT_EQ(stats.committed, 4);
  EXPECT_EQ(stats.combined, 3);
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"g0", "g1", "g2", "held"}));
}

// Waits up to 60 s for `ready`, polling.
bool eventually(const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// write_grouped_async: no thread waits for the item. Queued while a writer holds the
// connection, it returns at once; the holder runs it in its batch, and after the COMMIT its
// `done` is called on the store's completion thread (not the holder's, which goes on to its
// caller or to the next batch), with the row then committed.
TEST_F(GroupCommitTest, AsyncGroupedWriteIsAnsweredAfterItsCommitOnTheCompletionThread) {
  auto held = store_->write();
  ASSERT_TRUE(held.ok());
  std::mutex mu;
  int calls = 0;
  std::thread::id answered_on;
  Status answer = make_error(Errc::kInternal, "not answered");
  std::vector<std::string> seen_at_answer;
  store_->write_grouped_async([](Tx& tx) { return insert(tx, "async"); },
                              [&](Status s) {
                                auto seen = names(*store_);
                                std::lock_guard lock(mu);
                                ++calls;
                                answered_on = std::this_thread::get_id();
                                answer = std::move(s);
                                seen_at_answer = std::move(seen);
                              });
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(calls, 0);  // returned without waiting: queued behind the held writer
  }
  EXPECT_EQ(store_->grouped_writes_queued(), 1);
  std::thread::id holder_id;
  std::thread holder([&] {
    holder_id = std::this_thread::get_id();
    ASSERT_TRUE(insert(**held, "held").ok());
    EXPECT_TRUE((*held)->commit().ok());
  });
  holder.join();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return calls > 0;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(calls, 1);
  EXPECT_NE(answered_on, holder_id);
  EXPECT_NE(answered_on, std::this_thread::get_id());
  EXPECT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ(seen_at_answer, (std::vector<std::string>{"async", "held"}));  // committed first
  auto stats = store_->group_commit_stats();
  EXPECT_EQ(stats.combined, 1);
}

// Issue 5 (durable create): an item's `done` (a create's duplicate scoring and answer) is off
// the writer's path. One member a batch: while the first item's `done` runs (here: until it
// reads the second item's row, committed), the second item's batch begins and commits. When
// the `done`s were called by the thread that ended the batch, that thread was the one to begin
// the next: the second item waited for the first `done`, which waited for it (60 s, then
// failed).
TEST_F(GroupCommitTest, NextBatchBeginsAndCommitsWhileAnEndedBatchsDoneRuns) {
  store_.reset();
  store_ = open_store_at(path_, 1);
  ASSERT_NE(store_, nullptr);
  auto held = store_->write();
  ASSERT_TRUE(held.ok());
  std::mutex mu;
  std::vector<Status> answers(2, make_error(Errc::kInternal, "not answered"));
  bool second_committed_during_first_done = false;
  int answered = 0;
  store_->write_grouped_async([](Tx& tx) { return insert(tx, "first"); },
                              [&](Status s) {
                                const bool seen = eventually([&] {
                                  auto rows = names(*store_);
                                  return std::find(rows.begin(), rows.end(), "second") !=
                                         rows.end();
                                });
                                std::lock_guard lock(mu);
                                answers[0] = std::move(s);
                                second_committed_during_first_done = seen;
                                ++answered;
                              });
  store_->write_grouped_async([](Tx& tx) { return insert(tx, "second"); },
                              [&](Status s) {
                                std::lock_guard lock(mu);
                                answers[1] = std::move(s);
                                ++answered;
                              });
  ASSERT_TRUE(insert(**held, "held").ok());
  EXPECT_TRUE((*held)->commit().ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return answered == 2;
  }));
  std::lock_guard lock(mu);
  EXPECT_TRUE(second_committed_during_first_done);
  EXPECT_TRUE(answers[0].ok());
  EXPECT_TRUE(answers[1].ok());
  EXPECT_EQ(store_->group_commit_stats().batches, 3);
}

// A store closing with grouped items still queued (a graceful stop that came while creates
// waited for the writer) runs and commits them, and calls each `done` with the COMMIT's result,
// before it closes: none is dropped unanswered. One member a batch, three items queued behind a
// held writer, the store closed right after the holder's commit(): the items are then still
// queued for the combiner thread, which used to stop with them.
TEST_F(GroupCommitTest, ClosingTheStoreCommitsAndAnswersQueuedGroupedWrites) {
  store_.reset();
  store_ = open_store_at(path_, 1);
  ASSERT_NE(store_, nullptr);
  auto held = store_->write();
  ASSERT_TRUE(held.ok());
  std::mutex mu;
  std::vector<std::optional<Status>> answers(3);
  for (int i = 0; i < 3; ++i) {
    store_->write_grouped_async([i](Tx& tx) { return insert(tx, "q" + std::to_string(i)); },
                                [&, i](Status s) {
                                  std::lock_guard lock(mu);
                                  answers[i] = std::move(s);
                                });
  }
  ASSERT_TRUE(insert(**held, "held").ok());
  EXPECT_TRUE((*held)->commit().ok());
  held->reset();
  store_.reset();  // closes at once: the items were queued, at most the first one begun
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(answers[i].has_value()) << "item " << i << " was dropped unanswered";
    EXPECT_TRUE(answers[i]->ok()) << answers[i]->error().message;
  }
  store_ = open_store_at(path_);
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"held", "q0", "q1", "q2"}));
}

// Items queued while a batch commits have no thread of their own waiting: the thread that ends
// the batch begins the next one — unless its own caller waits (a write() member, an update
// through write_grouped): then the store's combiner thread does, and that caller gets its answer
// at once. One member a batch: the held writer's batch, then one batch per queued item, run on
// the combiner thread after the holder's commit() has returned; an item that fails gets its own
// error and the others commit.
TEST_F(GroupCommitTest, AsyncGroupedWritesQueuedBehindAFullBatchRunOnTheCombinerThread) {
  store_.reset();
  store_ = open_store_at(path_, 1);
  ASSERT_NE(store_, nullptr);
  auto held = store_->write();
  ASSERT_TRUE(held.ok());
  std::mutex mu;
  std::vector<Status> answers(3, make_error(Errc::kInternal, "not answered"));
  std::vector<std::thread::id> threads(3);
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    store_->write_grouped_async(
        [i](Tx& tx) { return insert(tx, i == 1 ? "held" : "a" + std::to_string(i)); },
        [&, i](Status s) {
          std::lock_guard lock(mu);
          answers[i] = std::move(s);
          threads[i] = std::this_thread::get_id();
          ++answered;
        });
  }
  EXPECT_EQ(store_->grouped_writes_queued(), 3);
  ASSERT_TRUE(insert(**held, "held").ok());
  EXPECT_TRUE((*held)->commit().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (answered == 3) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(store_->grouped_writes_queued(), 0);
  EXPECT_TRUE(answers[0].ok());
  ASSERT_FALSE(answers[1].ok());
  EXPECT_EQ(answers[1].error().code, Errc::kDuplicate);
  EXPECT_TRUE(answers[2].ok());
  for (const auto& t : threads) EXPECT_NE(t, std::this_thread::get_id());
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"a0", "a2", "held"}));
  auto stats = store_->group_commit_stats();
  EXPECT_EQ(stats.combined, 3);
  EXPECT_GE(stats.batches, 3);
}

TEST_F(GroupCommitTest, ManyConcurrentGroupedWritesAreAllAcknowledgedAndDurable) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Status s = store_->write_grouped(
            [&](Tx& tx) { return insert(tx, "w" + std::to_string(t) + "_" + std::to_string(i)); });
        if (!s.ok()) ++failed;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 0);
  auto stats = store_->group_commit_stats();
  EXPECT_EQ(stats.combined, kThreads * kPerThread);
  EXPECT_EQ(stats.committed, kThreads * kPerThread + 1);  // + the schema in SetUp
  store_.reset();
  store_ = open_store_at(path_);
  EXPECT_EQ(static_cast<int>(names(*store_).size()), kThreads * kPerThread);
  EXPECT_EQ(*store_->integrity_check(), "ok");
}

TEST_F(GroupCommitTest, ManyConcurrentWritersAreAllAcknowledgedAndDurable) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> acknowledged{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto tx = store_->write();
        Status s = tx.ok() ? insert(**tx, "w" + std::to_string(t) + "_" + std::to_string(i))
                           : Status(std::move(tx).error());
        if (s.ok()) s = (*tx)->commit();
        s.ok() ? ++acknowledged : ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(acknowledged, kThreads * kPerThread);
  auto stats = store_->group_commit_stats();
  EXPECT_EQ(stats.committed, kThreads * kPerThread + 1);  // + the schema in SetUp
  EXPECT_EQ(stats.failed_batches, 0);
  EXPECT_LE(stats.batches, stats.committed);

  store_.reset();  // close, reopen: every acknowledged row is on disk
  store_ = open_store_at(path_);
  auto rows = names(*store_);
  EXPECT_EQ(static_cast<int>(rows.size()), kThreads * kPerThread);
  EXPECT_EQ(*store_->integrity_check(), "ok");
}

TEST_F(GroupCommitTest, WaitingWritersShareOneCommit) {
  auto before = store_->group_commit_stats();
  auto results = batch([](Tx& tx) { return insert(tx, "held"); }, 3,
                       [](int i, Tx& tx) { return insert(tx, "m" + std::to_string(i)); });
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  auto after = store_->group_commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1);
  EXPECT_EQ(after.committed - before.committed, 4);
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"held", "m0", "m1", "m2"}));
}

TEST_F(GroupCommitTest, FullBatchCommitsEvenWhileWritersWait) {
  // At most 2 members per batch: the held writer and 3 waiting ones make two batches of two,
  // so a stream of writers cannot keep the first one waiting for ever.
  store_.reset();
  store_ = open_store_at(path_, 2);
  ASSERT_NE(store_, nullptr);
  auto results = batch([](Tx& tx) { return insert(tx, "held"); }, 3,
                       [](int i, Tx& tx) { return insert(tx, "m" + std::to_string(i)); });
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  auto stats = store_->group_commit_stats();
  EXPECT_EQ(stats.batches, 2);
  EXPECT_EQ(stats.committed, 4);
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"held", "m0", "m1", "m2"}));
}

TEST_F(GroupCommitTest, FailingMemberRollsBackAloneAndTheOthersCommit) {
  auto before = store_->group_commit_stats();
  // Member 1 writes a row, then breaks a unique constraint and gives up (its Tx is destroyed):
  // its first row must vanish with it; the others in the same batch commit.
  auto results = batch([](Tx& tx) { return insert(tx, "held"); }, 3,
                       [](int i, Tx& tx) -> Status {
                         RP_TRY(insert(tx, "m" + std::to_string(i)));
                         if (i == 1) RP_TRY(insert(tx, "held"));
                         return {};
                       });
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error().code, Errc::kDuplicate);
  EXPECT_EQ(results[2].error().field, "name");
  EXPECT_TRUE(results[3].ok());
  auto after = store_->group_commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1);
  EXPECT_EQ(after.committed - before.committed, 3);
  const std::vector<std::string> expected{"held", "m0", "m2"};
  EXPECT_EQ(names(*store_), expected);
  store_.reset();
  store_ = open_store_at(path_);
  EXPECT_EQ(names(*store_), expected);
}

TEST_F(GroupCommitTest, FailingDeferredForeignKeyFailsOnlyItsMember) {
  // A deferred constraint is checked at COMMIT, which the whole batch shares: the member that
  // leaves it unresolved fails at its own commit() instead.
  auto results = batch([](Tx& tx) { return insert(tx, "held"); }, 1,
                       [](int, Tx& tx) -> Status {
                         RP_TRY(insert(tx, "orphan-writer"));
                         RP_TRY(tx.exec("INSERT INTO child(id, parent_id) VALUES (1, 999)"));
                         return {};
                       });
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, Errc::kValidation);
  EXPECT_EQ(results[1].error().message, "FOREIGN KEY constraint failed");
  EXPECT_EQ(names(*store_), std::vector<std::string>{"held"});
}

TEST_F(GroupCommitTest, FailingTransactionControlInsideAWriteIsRefused) {
  auto tx = store_->write();
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(insert(**tx, "kept").ok());
  for (const char* sql : {"COMMIT", "  commit transaction", "END", "ROLLBACK", "BEGIN"}) {
    auto r = (*tx)->exec(sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_EQ(r.error().code, Errc::kInternal) << sql;
    EXPECT_EQ(r.error().message, std::string("transaction control is the store's: ") + sql);
  }
  // Savepoints of the caller's own still work.
  ASSERT_TRUE((*tx)->exec("SAVEPOINT mine").ok());
  ASSERT_TRUE(insert(**tx, "undone").ok());
  ASSERT_TRUE((*tx)->exec("ROLLBACK TO SAVEPOINT mine").ok());
  ASSERT_TRUE((*tx)->exec("RELEASE SAVEPOINT mine").ok());
  ASSERT_TRUE((*tx)->commit().ok());
  EXPECT_EQ(names(*store_), std::vector<std::string>{"kept"});
}

std::vector<std::int64_t> found(Store& store, const std::string& text) {
  auto tx = store.read();
  EXPECT_TRUE(tx.ok());
  auto ids = (*tx)->fts_search("thing", text, 10);
  EXPECT_TRUE(ids.ok()) << (ids.ok() ? "" : ids.error().message);
  return ids.ok() ? *ids : std::vector<std::int64_t>{};
}

TEST_F(GroupCommitTest, FullTextWritesOfABatchAreAppliedOnceAtItsCommit) {
  {
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    for (const auto& sql : store_->dialect().fts_create("thing"))
      ASSERT_TRUE((*tx)->exec(sql).ok()) << sql;
    ASSERT_TRUE((*tx)->fts_put("thing", 10, "oldtext").ok());
    ASSERT_TRUE((*tx)->fts_put("thing", 11, "formertext").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  ASSERT_EQ(found(*store_, "oldtext"), std::vector<std::int64_t>{10});
  auto before = store_->group_commit_stats();
  const Tx::FtsRow beta[] = {{2, "betatext"}};
  // The held member's write is queued: not even its own full-text read sees it yet.
  auto held = [](Tx& tx) -> Status {
    RP_TRY(tx.fts_put("thing", 1, "alphatext"));
    RP_ASSIGN(auto own, tx.fts_search("thing", "alphatext", 10));
    if (!own.empty()) return make_error(Errc::kInternal, "written inside the savepoint");
    return {};
  };
  auto results = batch(held, 3, [&](int i, Tx& tx) -> Status {
    if (i == 0) {  // a created record, updated in the same transaction
      RP_TRY(tx.fts_put_many("thing", beta, /*fresh=*/true));
      return tx.fts_put("thing", 2, "gammatext");
    }
    if (i == 1) {  // fails after its write: rolled back alone
      RP_TRY(tx.fts_put_many("thing", {{{3, "deltatext"}}}, true));
      RP_TRY(insert(tx, "x"));
      return insert(tx, "x");
    }
    RP_TRY(tx.fts_delete("thing", 10));  // existing entries
    return tx.fts_put("thing", 11, "newertext");
  });
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error().code, Errc::kDuplicate);
  EXPECT_TRUE(results[3].ok());
  auto after = store_->group_commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1);
  EXPECT_EQ(after.committed - before.committed, 3);
  for (int reopen = 0; reopen < 2; ++reopen) {
    EXPECT_EQ(found(*store_, "alphatext"), std::vector<std::int64_t>{1});
    EXPECT_TRUE(found(*store_, "betatext").empty());
    EXPECT_EQ(found(*store_, "gammatext"), std::vector<std::int64_t>{2});
    EXPECT_TRUE(found(*store_, "deltatext").empty());
    EXPECT_TRUE(found(*store_, "oldtext").empty());
    EXPECT_TRUE(found(*store_, "formertext").empty());
    EXPECT_EQ(found(*store_, "newertext"), std::vector<std::int64_t>{11});
    store_.reset();
    store_ = open_store_at(path_);
    ASSERT_NE(store_, nullptr);
  }
  EXPECT_EQ(*store_->integrity_check(), "ok");
  // A full-text write of an unknown entity name fails at once, in its member.
  auto tx = store_->write();
  ASSERT_TRUE(tx.ok());
  auto bad = (*tx)->fts_put("no such", 1, "x");
  ASSERT_FALSE(bad.ok());
}

// Grouped items run back to back in one savepoint (not one each). Queues `n` items in the order
// 0..n-1 (each thread starts once the previous item is queued) behind a held write() member;
// its commit() runs them. Returns each item's result (the held member's first).
std::vector<Status> queued_in_order(SqliteStore& store, int n,
                                    const std::function<Status(int, Tx&)>& item) {
  std::vector<Status> results(n + 1);
  auto first = store.write();
  EXPECT_TRUE(first.ok());
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back(
        [&, i] { results[i + 1] = store.write_grouped([&](Tx& tx) { return item(i, tx); }); });
    EXPECT_TRUE(wait_for_queued(store, i + 1));
  }
  Status s = insert(**first, "held");
  results[0] = s.ok() ? (*first)->commit() : s;
  for (auto& th : threads) th.join();
  return results;
}

TEST_F(GroupCommitTest, FailingGroupedItemRollsBackItsRunAndTheItemsBeforeItRunAgainOnce) {
  {
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    for (const auto& sql : store_->dialect().fts_create("thing"))
      ASSERT_TRUE((*tx)->exec(sql).ok()) << sql;
    ASSERT_TRUE((*tx)->commit().ok());
  }
  auto before = store_->group_commit_stats();
  // Item 2 writes a row and a full-text entry, then breaks a unique constraint: the run (items
  // 0, 1, 2) is rolled back, item 2 fails alone, items 0 and 1 run again, then item 3.
  std::atomic<int> runs[4] = {0, 0, 0, 0};
  const std::string words[] = {"zerotext", "onetext", "twotext", "threetext"};
  auto results = queued_in_order(*store_, 4, [&](int i, Tx& tx) -> Status {
    ++runs[i];
    RP_TRY(insert(tx, "g" + std::to_string(i)));
    const Tx::FtsRow row[] = {{100 + i, words[i]}};
    RP_TRY(tx.fts_put_many("thing", row, /*fresh=*/true));
    if (i == 2) RP_TRY(insert(tx, "g0"));
    return {};
  });
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok()) << results[1].error().message;
  EXPECT_TRUE(results[2].ok()) << results[2].error().message;
  ASSERT_FALSE(results[3].ok());
  EXPECT_EQ(results[3].error().code, Errc::kDuplicate);
  EXPECT_EQ(results[3].error().field, "name");
  EXPECT_TRUE(results[4].ok()) << results[4].error().message;
  EXPECT_EQ(runs[0], 2);
  EXPECT_EQ(runs[1], 2);
  EXPECT_EQ(runs[2], 1);
  EXPECT_EQ(runs[3], 1);
  auto after = store_->group_commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1);
  EXPECT_EQ(after.committed - before.committed, 4);
  EXPECT_EQ(after.rerun - before.rerun, 2);
  const std::vector<std::string> expected{"g0", "g1", "g3", "held"};
  for (int reopen = 0; reopen < 2; ++reopen) {
    EXPECT_EQ(names(*store_), expected);
    EXPECT_EQ(found(*store_, "zerotext"), std::vector<std::int64_t>{100});
    EXPECT_EQ(found(*store_, "onetext"), std::vector<std::int64_t>{101});
    EXPECT_TRUE(found(*store_, "twotext").empty());
    EXPECT_EQ(found(*store_, "threetext"), std::vector<std::int64_t>{103});
    store_.reset();
    store_ = open_store_at(path_);
    ASSERT_NE(store_, nullptr);
  }
  EXPECT_EQ(*store_->integrity_check(), "ok");
}

TEST_F(GroupCommitTest, GroupedItemRefusedBeforeItChangesARowFailsAloneWithoutARerun) {
  // Item 1 reads, then refuses; item 2's only INSERT is refused by the unique constraint: neither
  // changed a row, so the run goes on and no item runs twice.
  auto before = store_->group_commit_stats();
  std::atomic<int> runs[4] = {0, 0, 0, 0};
  auto results = queued_in_order(*store_, 4, [&](int i, Tx& tx) -> Status {
    ++runs[i];
    if (i == 1) {
      RP_ASSIGN(auto rows, tx.query("SELECT count(*) FROM t"));
      if (rows.rows.empty()) return make_error(Errc::kInternal, "no count");
      return make_error(Errc::kConflict, "refused after a read");
    }
    return insert(tx, i == 2 ? "g0" : "g" + std::to_string(i));
  });
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error().code, Errc::kConflict);
  ASSERT_FALSE(results[3].ok());
  EXPECT_EQ(results[3].error().code, Errc::kDuplicate);
  EXPECT_TRUE(results[4].ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(runs[i], 1) << i;
  auto after = store_->group_commit_stats();
  EXPECT_EQ(after.rerun - before.rerun, 0);
  EXPECT_EQ(after.committed - before.committed, 3);
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"g0", "g3", "held"}));
}

TEST_F(GroupCommitTest, SeveralFailingGroupedItemsOfOneRunEachFailAloneAndTheOthersCommitOnce) {
  // Items 1 and 3 fail: each failure rolls the run back; the others commit once each.
  auto results = queued_in_order(*store_, 5, [&](int i, Tx& tx) -> Status {
    RP_TRY(insert(tx, "g" + std::to_string(i)));
    if (i % 2 == 1) RP_TRY(insert(tx, "held"));
    return {};
  });
  EXPECT_TRUE(results[0].ok());
  for (int i = 0; i < 5; ++i) {
    if (i % 2 == 1) {
      ASSERT_FALSE(results[i + 1].ok());
      EXPECT_EQ(results[i + 1].error().code, Errc::kDuplicate);
    } else {
      EXPECT_TRUE(results[i + 1].ok()) << i << ": " << results[i + 1].error().message;
    }
  }
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"g0", "g2", "g4", "held"}));
}

TEST_F(GroupCommitTest, FailingDeferredForeignKeyFailsOnlyItsGroupedItem) {
  auto results = queued_in_order(*store_, 3, [&](int i, Tx& tx) -> Status {
    RP_TRY(insert(tx, "g" + std::to_string(i)));
    if (i == 1) RP_TRY(tx.exec("INSERT INTO child(id, parent_id) VALUES (1, 999)"));
    return {};
  });
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error().code, Errc::kValidation);
  EXPECT_EQ(results[2].error().message, "FOREIGN KEY constraint failed");
  EXPECT_TRUE(results[3].ok());
  EXPECT_EQ(names(*store_), (std::vector<std::string>{"g0", "g2", "held"}));
}

TEST_F(GroupCommitTest, FullTextClearInABatchDropsEarlierWritesOnlyWhenItsMemberCommits) {
  {
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    for (const auto& sql : store_->dialect().fts_create("thing"))
      ASSERT_TRUE((*tx)->exec(sql).ok()) << sql;
    ASSERT_TRUE((*tx)->fts_put("thing", 10, "oldtext").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  // A member that clears and then fails: its clear is dropped with it, the entries stay.
  auto results = batch([](Tx& tx) { return tx.fts_put("thing", 1, "alphatext"); }, 1,
                       [&](int, Tx& tx) -> Status {
                         RP_TRY(tx.fts_clear("thing"));
                         RP_TRY(insert(tx, "y"));
                         return insert(tx, "y");
                       });
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(found(*store_, "oldtext"), std::vector<std::int64_t>{10});
  EXPECT_EQ(found(*store_, "alphatext"), std::vector<std::int64_t>{1});
  // A clear that commits removes what was written before it, in its batch or earlier, and
  // keeps what was written after it.
  {
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->fts_put("thing", 2, "betatext").ok());
    ASSERT_TRUE((*tx)->fts_clear("thing").ok());
    ASSERT_TRUE((*tx)->fts_put("thing", 3, "gammatext").ok());
    ASSERT_TRUE((*tx)->fts_delete("thing", 10).ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  EXPECT_TRUE(found(*store_, "oldtext").empty());
  EXPECT_TRUE(found(*store_, "alphatext").empty());
  EXPECT_TRUE(found(*store_, "betatext").empty());
  EXPECT_EQ(found(*store_, "gammatext"), std::vector<std::int64_t>{3});
  EXPECT_EQ(*store_->integrity_check(), "ok");
}

TEST_F(GroupCommitTest, WalIsCheckpointedInTheBackgroundOnceItGrowsPastTheThreshold) {
  EXPECT_EQ(store_->group_commit_stats().checkpoints, 0);
  {  // well over kCheckpointFrames pages of WAL in one commit
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE big(id INTEGER PRIMARY KEY, pad TEXT)").ok());
    for (int i = 0; i < SqliteStore::kCheckpointFrames + 200; ++i) {
      const SqlValue p[] = {std::string(4000, static_cast<char>('a' + i % 26))};
      ASSERT_TRUE((*tx)->exec("INSERT INTO big(pad) VALUES (?)", p).ok());
    }
    ASSERT_TRUE((*tx)->commit().ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (store_->group_commit_stats().checkpoints == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(store_->group_commit_stats().checkpoints, 1);
  // Writes go on as before, and everything is there after a reopen.
  ASSERT_TRUE([&] {
    auto tx = store_->write();
    return tx.ok() && insert(**tx, "after").ok() && (*tx)->commit().ok();
  }());
  store_.reset();
  store_ = open_store_at(path_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(names(*store_), std::vector<std::string>{"after"});
  auto tx = store_->read();
  ASSERT_TRUE(tx.ok());
  auto n = (*tx)->query("SELECT count(*) FROM big");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::get<std::int64_t>(n->rows[0][0]), SqliteStore::kCheckpointFrames + 200);
  EXPECT_EQ(*store_->integrity_check(), "ok");
}

// The checkpointer is woken once per kCheckpointFrames new WAL frames, not after every COMMIT
// once the WAL is past them: woken after every small COMMIT it copied (and synced) each batch's
// pages into the database file one batch at a time, the pages that every batch writes again
// and again. A reader holding an old snapshot keeps the log from starting again meanwhile.
TEST_F(GroupCommitTest, CheckpointerIsWokenOncePerThresholdOfNewFrames) {
  auto write_rows = [&](int rows, int bytes) {
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    for (int i = 0; i < rows; ++i) {
      const SqlValue p[] = {std::string(static_cast<std::size_t>(bytes), 'x')};
      ASSERT_TRUE((*tx)->exec("INSERT INTO big(pad) VALUES (?)", p).ok());
    }
    ASSERT_TRUE((*tx)->commit().ok());
  };
  {
    auto tx = store_->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE big(id INTEGER PRIMARY KEY, pad TEXT)").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  auto reader = store_->read();
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->query("SELECT count(*) FROM big").ok());  // its snapshot begins
  EXPECT_EQ(store_->group_commit_stats().checkpoint_requests, 0);
  write_rows(SqliteStore::kCheckpointFrames + 100, 4000);  // a page of WAL per row
  EXPECT_EQ(store_->group_commit_stats().checkpoint_requests, 1);
  for (int i = 0; i < 50; ++i) write_rows(1, 100);  // a few frames each, far fewer in all
  EXPECT_EQ(store_->group_commit_stats().checkpoint_requests, 1);
  write_rows(SqliteStore::kCheckpointFrames, 4000);
  EXPECT_EQ(store_->group_commit_stats().checkpoint_requests, 2);
  reader->reset();
  auto tx = store_->read();
  ASSERT_TRUE(tx.ok());
  auto n = (*tx)->query("SELECT count(*) FROM big");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::get<std::int64_t>(n->rows[0][0]), 2 * SqliteStore::kCheckpointFrames + 150);
}

// Back-to-back writes (an index rebuild, an import, a generator) gave the background PASSIVE
// checkpoint no moment to copy the last frames before the next write began, so the WAL never
// started again: 22 GB during one rebuild. The writer now checkpoints once the WAL reaches
// wal_max_frames, and the log starts again: its file stays near that size.
TEST(GroupCommitWal, BackToBackWritesKeepTheWalNearItsBound) {
  TempDir dir;
  const std::string path = dir.file("w.db");
  constexpr int kMaxFrames = 2000, kRowsPerTx = 600, kTransactions = 40;
  auto store = open_store_at(path, 64, kMaxFrames);
  ASSERT_NE(store, nullptr);
  {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE big(id INTEGER PRIMARY KEY, pad TEXT)").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  std::uintmax_t largest = 0;
  for (int t = 0; t < kTransactions; ++t) {  // about 25,000 frames in all
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    for (int i = 0; i < kRowsPerTx; ++i) {
      const SqlValue p[] = {std::string(4000, static_cast<char>('a' + (t + i) % 26))};
      ASSERT_TRUE((*tx)->exec("INSERT INTO big(pad) VALUES (?)", p).ok());
    }
    ASSERT_TRUE((*tx)->commit().ok());
    largest = std::max(largest, std::filesystem::file_size(path + "-wal"));
  }
  EXPECT_GE(store->group_commit_stats().writer_checkpoints, 1);
  // At most the bound plus one transaction's frames (4 KiB pages, 24-byte frame headers).
  const std::uintmax_t bound = std::uintmax_t{kMaxFrames + 2 * kRowsPerTx} * (4096 + 24);
  EXPECT_LE(largest, bound) << "the WAL grew to " << largest << " bytes";
  auto tx = store->read();
  ASSERT_TRUE(tx.ok());
  auto n = (*tx)->query("SELECT count(*) FROM big");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::get<std::int64_t>(n->rows[0][0]), kRowsPerTx * kTransactions);
  tx->reset();
  EXPECT_EQ(*store->integrity_check(), "ok");
}

// An import's batches rewrite the same index pages: while Store::bulk_writes() lives the writer
// checkpoints at bulk_wal_max_frames, not at wal_max_frames after every large transaction, and
// the handle's end copies the whole WAL and truncates its file. Every commit is visible and
// durable all along (a store opened again finds every row).
TEST(GroupCommitWal, BulkWritesCheckpointAtTheirOwnBoundAndOnceAtTheirEnd) {
  TempDir dir;
  const std::string path = dir.file("w.db");
  constexpr int kMaxFrames = 2000, kRowsPerTx = 600, kTransactions = 12;
  StoreOptions options;
  options.group_commit_max_ms = 0;
  options.wal_max_frames = kMaxFrames;
  options.bulk_wal_max_frames = 4 * kMaxFrames;
  auto opened = SqliteStore::open(path, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(opened).value();
  {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE big(id INTEGER PRIMARY KEY, pad TEXT)").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  auto write_tx = [&](int t) {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    for (int i = 0; i < kRowsPerTx; ++i) {  // ~600 frames: a page a row
      const SqlValue p[] = {std::string(4000, static_cast<char>('a' + (t + i) % 26))};
      ASSERT_TRUE((*tx)->exec("INSERT INTO big(pad) VALUES (?)", p).ok());
    }
    ASSERT_TRUE((*tx)->commit().ok());
  };
  const auto before = store->group_commit_stats();
  std::uintmax_t largest = 0;
  {
    auto bulk = store->bulk_writes();
    ASSERT_NE(bulk, nullptr);
    auto nested = store->bulk_writes();        // a second import at the same time
    for (int t = 0; t < kTransactions; ++t) {  // ~7,200 frames: past wal_max_frames 3 times
      write_tx(t);
      largest = std::max(largest, std::filesystem::file_size(path + "-wal"));
    }
    const auto during = store->group_commit_stats();
    EXPECT_EQ(during.writer_checkpoints, before.writer_checkpoints);  // 0 without bulk_writes: 3
    EXPECT_EQ(during.checkpoint_requests, before.checkpoint_requests);
    EXPECT_GE(largest, std::uintmax_t{kRowsPerTx} * kTransactions * 4096);
    nested.reset();  // the other import ends: no checkpoint while this one runs
    EXPECT_EQ(store->group_commit_stats().bulk_end_checkpoints, before.bulk_end_checkpoints);
    EXPECT_GT(std::filesystem::file_size(path + "-wal"), 0u);
    for (int t = kTransactions; t < 2 * kTransactions; ++t) write_tx(t);  // past the bulk bound
    EXPECT_GE(store->group_commit_stats().writer_checkpoints, before.writer_checkpoints + 1);
  }
  const auto after = store->group_commit_stats();
  EXPECT_EQ(after.bulk_end_checkpoints, before.bulk_end_checkpoints + 1);
  EXPECT_EQ(std::filesystem::file_size(path + "-wal"), 0u);  // copied and truncated
  // back to the usual bound: the next transactions past wal_max_frames checkpoint again
  for (int t = 0; t < 5; ++t) write_tx(t);
  EXPECT_GE(store->group_commit_stats().writer_checkpoints, after.writer_checkpoints + 1);
  store.reset();
  auto again = SqliteStore::open(path, options);
  ASSERT_TRUE(again.ok());
  auto tx = (*again)->read();
  ASSERT_TRUE(tx.ok());
  auto n = (*tx)->query("SELECT count(*) FROM big");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::get<std::int64_t>(n->rows[0][0]), kRowsPerTx * (2 * kTransactions + 5));
  tx->reset();
  EXPECT_EQ(*(*again)->integrity_check(), "ok");
}

TEST(GroupCommitFault, FailedCommitFailsEveryMemberAndLeavesNoneVisible) {
  FaultVfs vfs;
  TempDir dir;
  const std::string path = dir.file("f.db");
  auto store = open_store_at(path);
  ASSERT_NE(store, nullptr);
  {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)->exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE)").ok());
    ASSERT_TRUE(insert(**tx, "before").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  g_fail_wal_writes = true;
  constexpr int kOthers = 3;
  std::vector<Status> results(kOthers + 1);
  auto held = store->write();
  ASSERT_TRUE(held.ok());
  std::vector<std::thread> threads;
  for (int i = 0; i < kOthers; ++i) {
    threads.emplace_back([&, i] {
      auto tx = store->write();
      if (!tx.ok()) {
        results[i + 1] = std::move(tx).error();
        return;
      }
      Status s = insert(**tx, "lost" + std::to_string(i));
      results[i + 1] = s.ok() ? (*tx)->commit() : s;
    });
  }
  ASSERT_TRUE(wait_for_waiters(*store, kOthers));
  // …and grouped writes queued behind it fail with the same COMMIT
  std::vector<Status> grouped(2);
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      grouped[i] =
          store->write_grouped([&](Tx& tx) { return insert(tx, "lost-g" + std::to_string(i)); });
    });
  ASSERT_TRUE(wait_for_queued(*store, 2));
  ASSERT_TRUE(insert(**held, "lost-held").ok());
  results[0] = (*held)->commit();
  for (auto& th : threads) th.join();
  results.insert(results.end(), grouped.begin(), grouped.end());
  g_fail_wal_writes = false;

  for (const auto& r : results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kStorage);
    EXPECT_NE(r.error().message.find("disk I/O error"), std::string::npos) << r.error().message;
  }
  auto stats = store->group_commit_stats();
  EXPECT_EQ(stats.failed_batches, 1);
  EXPECT_EQ(names(*store), std::vector<std::string>{"before"});

  // The store recovers: the next write commits.
  {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok()) << tx.error().message;
    ASSERT_TRUE(insert(**tx, "after").ok());
    auto s = (*tx)->commit();
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  store.reset();
  store = open_store_at(path);
  EXPECT_EQ(names(*store), (std::vector<std::string>{"after", "before"}));
  EXPECT_EQ(*store->integrity_check(), "ok");
}

// Issue 5 (durable create): the COMMIT's WAL sync runs on the store's sync thread while the
// writer goes on with the next batch, and a write is answered only once the sync that covers
// its COMMIT has returned. The WAL's syncs are held at a gate: the first write is committed
// (another connection reads it) but not answered; a second write is taken by the writer
// meanwhile (its batch commits once the first sync has returned, so that batches stay whole);
// once the gate opens both are answered, in order, and each answer saw the gate open. Without
// StoreOptions::defer_wal_sync (the default), the COMMIT itself waited at the gate, showed nothing
// to the readers and left the second write queued (the test failed waiting for "a").
TEST(GroupCommitFault, WriteIsAnsweredOnlyAfterTheSyncOfItsCommitWhileTheWriterGoesOn) {
  FaultVfs vfs;
  TempDir dir;
  auto store = open_store_at(dir.file("s.db"), 64, StoreOptions{}.wal_max_frames, true);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(exec_committed(*store, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE)"));
  const std::int64_t syncs_before = store->group_commit_stats().wal_syncs;
  {
    std::lock_guard lock(g_sync_gate.mu);
    g_sync_gate.closed = true;
    g_sync_gate.entered = 0;
  }
  std::atomic<bool> opened{false};
  std::mutex mu;
  std::vector<std::pair<std::string, Status>> answers;
  std::vector<bool> answered_after_sync;
  auto write = [&](const std::string& name) {
    store->write_grouped_async([name](Tx& tx) { return insert(tx, name); },
                               [&, name](Status s) {
                                 const bool after = opened.load();
                                 std::lock_guard lock(mu);
                                 answers.emplace_back(name, std::move(s));
                                 answered_after_sync.push_back(after);
                               });
  };
  auto open_gate = [&] {
    opened = true;
    {
      std::lock_guard lock(g_sync_gate.mu);
      g_sync_gate.closed = false;
    }
    g_sync_gate.cv.notify_all();
  };
  std::thread first([&] { write("a"); });
  {
    std::unique_lock lock(g_sync_gate.mu);
    const bool entered = g_sync_gate.cv.wait_for(lock, std::chrono::seconds(60),
                                                 [] { return g_sync_gate.entered > 0; });
    lock.unlock();
    if (!entered) open_gate();
    ASSERT_TRUE(entered);
  }
  const bool a_read = eventually([&] { return names(*store) == std::vector<std::string>{"a"}; });
  std::thread second([&] { write("b"); });
  // not left queued: the writer runs it while the first sync is held
  const bool b_run = a_read && eventually([&] { return store->grouped_writes_queued() == 0; });
  std::size_t answered_while_held = 0;
  {
    std::lock_guard lock(mu);
    answered_while_held = answers.size();
  }
  open_gate();
  first.join();
  second.join();
  EXPECT_TRUE(a_read);  // committed and shown to other connections before its sync returned
  EXPECT_TRUE(b_run);
  EXPECT_EQ(answered_while_held, 0u);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return answers.size() == 2;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(answers[0].first, "a");  // answered in commit order
  EXPECT_EQ(answers[1].first, "b");
  for (const auto& [name, s] : answers) EXPECT_TRUE(s.ok()) << name << ": " << s.error().message;
  EXPECT_EQ(answered_after_sync, (std::vector<bool>{true, true}));
  EXPECT_GE(store->group_commit_stats().wal_syncs, syncs_before + 2);
  EXPECT_EQ(names(*store), (std::vector<std::string>{"a", "b"}));
}

// A deferred WAL sync that fails: the writes of the batches it covered are answered with a
// storage error (not acknowledged), though they are committed and other connections may read
// them (an outcome the client cannot know, as after a lost connection); the store goes on.
TEST(GroupCommitFault, FailedWalSyncFailsTheWritesItCoveredAndTheStoreGoesOn) {
  FaultVfs vfs;
  TempDir dir;
  auto store = open_store_at(dir.file("s.db"), 64, StoreOptions{}.wal_max_frames, true);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(exec_committed(*store, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE)"));
  g_fail_wal_syncs = true;
  Status failed = store->write_grouped([](Tx& tx) { return insert(tx, "unsynced"); });
  g_fail_wal_syncs = false;
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kStorage);
  EXPECT_EQ(failed.error().message, "cannot sync the write-ahead log: disk I/O error");
  const auto stats = store->group_commit_stats();
  EXPECT_EQ(stats.failed_batches, 1);
  Status after = store->write_grouped([](Tx& tx) { return insert(tx, "after"); });
  EXPECT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(names(*store), (std::vector<std::string>{"after", "unsynced"}));
  EXPECT_EQ(*store->integrity_check(), "ok");
}

// ---- The WAL's writes gathered (wal_buffer.h)

// The writer's COMMIT writes its frames in a few calls (at most 128 KiB each), not two per
// frame (400 for these 200 frames), and syncs the WAL once.
TEST(GroupCommitWal, CommitWritesItsWalFramesInFewWritesAndOneSync) {
  FaultVfs vfs;
  TempDir dir;
  auto store = open_store_at(dir.file("w.db"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(exec_committed(*store, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE)"));
  const int writes_before = g_wal_writes, syncs_before = g_wal_syncs;
  auto tx = store->write();
  ASSERT_TRUE(tx.ok());
  for (int i = 0; i < 100; ++i)  // ~100 pages of rows and ~100 of the unique index
    ASSERT_TRUE(insert(**tx, std::to_string(i) + std::string(2000, 'x')).ok());
  ASSERT_TRUE((*tx)->commit().ok());
  const int writes = g_wal_writes - writes_before, syncs = g_wal_syncs - syncs_before;
  auto wal_bytes = fs::file_size(dir.file("w.db") + "-wal");
  EXPECT_GE(wal_bytes, 100u * 4096);
  // 200 frames: 400 writes without the buffer; ≤ 1 + bytes / (128 KiB − 1) with it
  EXPECT_LE(writes, 2 + static_cast<int>(wal_bytes / 0x1ffff)) << writes;
  EXPECT_EQ(syncs, 1);  // the COMMIT's own, after its frames were written
  tx->reset();
  store.reset();
  store = open_store_at(dir.file("w.db"));
  auto rows = (*store->read())->query("SELECT count(*) FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), 100);
  EXPECT_EQ(*store->integrity_check(), "ok");
}

// A COMMIT of more frames than the buffer gathers (16 MiB) writes them out 16 MiB at a time, in
// pieces the default VFS takes whole (it cuts a write of 128 KiB or more short), and every
// frame reaches the file: the store opened again reads every row.
TEST(GroupCommitWal, CommitOfMoreThanTheGatheredBoundWritesEveryFrameInWholePieces) {
  FaultVfs vfs;
  TempDir dir;
  auto store = open_store_at(dir.file("w.db"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(exec_committed(*store, "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)"));
  constexpr int kRows = 10000;  // a page a row: ~41 MB of frames, 2.5 times the bound
  const int writes_before = g_wal_writes;
  g_wal_largest_write = 0;
  {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    for (int i = 0; i < kRows; ++i) {
      const SqlValue p[] = {std::int64_t{i}, std::string(3500, static_cast<char>('a' + i % 26))};
      ASSERT_TRUE((*tx)->exec("INSERT INTO t(id, body) VALUES (?, ?)", p).ok());
    }
    ASSERT_TRUE((*tx)->commit().ok());
  }
  const auto wal_bytes = fs::file_size(dir.file("w.db") + "-wal");
  EXPECT_GE(wal_bytes, std::uintmax_t{kRows} * 4096);
  EXPECT_LE(g_wal_largest_write.load(), 0x1ffff);
  // pieces of 128 KiB - 1, plus one short piece at each 16 MiB flush and the header
  EXPECT_LE(g_wal_writes - writes_before, 8 + static_cast<int>(wal_bytes / 0x1ffff));
  store.reset();
  store = open_store_at(dir.file("w.db"));
  auto rows = (*store->read())->query("SELECT count(*), sum(length(body)) FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), kRows);
  EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][1]), std::int64_t{kRows} * 3500);
  EXPECT_EQ(*store->integrity_check(), "ok");
}

// A transaction larger than the writer's page cache writes pages into the WAL before its COMMIT,
// rewrites some of them there and reads them back (SQLite's in-place frame rewrite and checksum
// pass): gathered bytes are written out before they are read, so it reads what it wrote.
TEST(GroupCommitWal, TransactionLargerThanTheWriterCacheReadsBackItsGatheredFrames) {
  TempDir dir;
  StoreOptions options;
  options.writer_cache_mib = 1;
  auto opened = SqliteStore::open(dir.file("big.db"), options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(opened).value();
  ASSERT_TRUE(exec_committed(*store, "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)"));
  constexpr int kRows = 3000;  // ~6 MB of rows through a 1 MiB cache
  {
    auto tx = store->write();
    ASSERT_TRUE(tx.ok());
    for (int i = 0; i < kRows; ++i) {
      const SqlValue p[] = {std::int64_t{i}, std::string(2000, static_cast<char>('a' + i % 26))};
      ASSERT_TRUE((*tx)->exec("INSERT INTO t(id, body) VALUES (?, ?)", p).ok());
    }
    // every page again, so frames written before the COMMIT are rewritten and read back
    ASSERT_TRUE((*tx)->exec("UPDATE t SET body = upper(body)").ok());
    ASSERT_TRUE((*tx)->commit().ok());
  }
  auto check = [&](SqliteStore& s) {
    auto rows =
        (*s.read())->query("SELECT count(*), sum(body = upper(body)), sum(length(body)) FROM t");
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][0]), kRows);
    EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][1]), kRows);
    EXPECT_EQ(std::get<std::int64_t>(rows->rows[0][2]), std::int64_t{kRows} * 2000);
    EXPECT_EQ(*s.integrity_check(), "ok");
  };
  check(*store);
  store.reset();
  auto again = SqliteStore::open(dir.file("big.db"), options);
  ASSERT_TRUE(again.ok());
  check(**again);
}

}  // namespace
}  // namespace rapport::storage::sqlite
