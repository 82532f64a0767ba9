// The SQLite backend of the Store interface: one writer connection, a pool of snapshot readers,
// WAL with synchronous=FULL, FTS5 trigram tables for search. sqlite3.h stays in the .cc file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/store.h"

struct sqlite3;  // sqlite3.h stays in the .cc file

namespace rapport::storage::sqlite {

class WalSync;  // wal_buffer.h

class TermCodes;   // the number codes of the term index in memory (term_codes.h)
class Connection;  // one sqlite3 handle and its prepared-statement cache (sqlite_store.cc)

// SQLite spellings of the dialect-specific fragments. Stateless; usable from any thread.
class SqliteDialect final : public Dialect {
 public:
  std::string column_type(ColumnType t) const override;
  // Throws std::invalid_argument when `entity` is not a valid identifier (a metadata bug).
  std::vector<std::string> fts_create(std::string_view entity) const override;
  std::string ilike() const override { return "LIKE"; }
  std::string bulk_insert() const override { return "INSERT OR FAIL"; }
  bool plans_by_written_order() const override { return true; }
  std::string fts_condition(std::string_view entity, std::string_view query,
                            std::vector<SqlValue>& params) const override;
  std::string fts_key_counts(std::string_view entity, std::string_view query, int cap,
                             std::vector<SqlValue>& params) const override;
  std::string fts_key_counts_falling(std::string_view entity, std::string_view query, int cap,
                                     std::vector<SqlValue>& params) const override;
  std::string fts_pair_counts(std::string_view entity, std::string_view query, int first,
                              int second, int cap, std::vector<SqlValue>& params) const override;
  std::string fts_scoped(std::string_view entity, std::string_view query, std::string_view ids_sql,
                         std::span<const SqlValue> ids_params,
                         std::vector<SqlValue>& params) const override;
  std::string fts_page(std::string_view entity, std::string_view query, int driver,
                       const FtsPosition* after, int page,
                       std::vector<SqlValue>& params) const override;
  std::string fts_window_end(std::string_view entity, std::string_view query, int driver,
                             const FtsPosition* after, int page,
                             std::vector<SqlValue>& params) const override;
};

// Group commit: the writer connection runs one shared transaction at a time (a "batch"). Each
// write() waits for the connection, joins the open batch (or begins one with BEGIN IMMEDIATE)
// and runs inside its own SAVEPOINT. Its commit() RELEASEs the savepoint, then either hands the
// connection to a waiting writer (which joins the same batch) or, when nobody waits or the batch
// reached its size or age bound, COMMITs the batch (one fsync for all of its members); commit()
// returns only once the batch's COMMIT has returned, with its result: a failed COMMIT fails
// every member, and none is acknowledged. A member that rolls back (or fails) rolls back only to
// its savepoint. Should SQLite end the shared transaction on its own (I/O error, disk full), the
// whole batch fails.
struct GroupCommitStats {
  std::int64_t checkpoints = 0;  // WAL checkpoints run by the background checkpointer
  // times a COMMIT woke the background checkpointer (at most one per kCheckpointFrames frames)
  std::int64_t checkpoint_requests = 0;
  // RESTART checkpoints run by the committing writer because the WAL reached
  // StoreOptions::wal_max_frames.
  std::int64_t writer_checkpoints = 0;
  // TRUNCATE checkpoints that succeeded as the last Store::bulk_writes() handle went.
  std::int64_t bulk_end_checkpoints = 0;
  std::int64_t batches = 0;         // batches ended (COMMIT or rollback)
  std::int64_t committed = 0;       // member transactions acknowledged by a successful COMMIT
  std::int64_t failed_batches = 0;  // batches whose COMMIT failed or whose transaction was lost
  // write_grouped() items run (each by whichever thread held the writer connection)
  std::int64_t combined = 0;
  // write_grouped() items run again because a later item of their run failed (run_jobs)
  std::int64_t rerun = 0;
  // WAL syncs run by the sync thread, each for one or more ended batches (end_batch)
  std::int64_t wal_syncs = 0;
  // Time the writer connection ran grouped items (run_jobs) and COMMITs (end_batch), of it in
  // COMMIT, and time a batch's holder waited for the previous batch's deferred sync.
  std::int64_t busy_ns = 0;
  std::int64_t busy_cpu_ns = 0;  // the same on the thread's CPU clock
  std::int64_t commit_ns = 0;
  std::int64_t sync_wait_ns = 0;
};

// Owns the writer connection (one writer at a time, handed over under group_mu_) and the reader
// connections (handed out under pool_mu_). Any thread may call its methods; each Tx stays on the
// thread that opened it and must be destroyed before the store.
// The bytes SQLite holds on its heap in this process (SqliteStore::cache_memory()'s `used`).
// Counted by the allocator this backend gives SQLite before its first use, with SQLite's own
// memory statistics off (they take a process-wide mutex on every allocation and free); when
// something used SQLite before the first store opened, SQLite's own count.
std::int64_t heap_bytes();
// Whether heap_bytes() is this backend's count (SQLite's statistics off), as it is in a process
// that opened a store before it used SQLite otherwise.
bool heap_counted_here();

class SqliteStore final : public Store {
 public:
  // Opens (creating if missing) the database file at `path`. The directory must exist.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                   const StoreOptions& options);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<std::unique_ptr<Tx>> write() override;
  // Queues `work`; the thread holding the writer connection runs it in a savepoint of the open
  // batch (see Store::write_grouped). A thread that finds the connection free takes it and
  // runs every queued item itself.
  // write_grouped_async() and a wait for its `done`.
  Status write_grouped(const std::function<Status(Tx&)>& work) override;
  // Queues `work` with `done`; when the writer connection is free this thread takes it, runs
  // every queued item and ends the batch; otherwise it returns at once and the thread holding
  // the connection runs the item in its batch, or in the next one: the thread that ends a batch
  // with items still queued begins the next batch itself, unless another thread has taken the
  // connection meanwhile. Each item's `done` is called after its COMMIT on the completion
  // thread (completion_loop), while the next batch runs. No thread sleeps waiting for an
  // item's COMMIT.
  void write_grouped_async(std::function<Status(Tx&)> work,
                           std::function<void(Status)> done) override;
  Result<std::unique_ptr<Tx>> read() override;
  Status migrate(std::span<const Migration> migrations) override;
  Result<int> schema_version() override;
  Status backup_to(const std::string& path) override;
  Result<std::string> integrity_check() override;
  const Dialect& dialect() const override { return dialect_; }
  std::string_view backend_name() const override { return "sqlite"; }

  const std::string& path() const { return path_; }

  // The number codes of the term index (term_codes.h), built at open on a thread of their own
  // (and again after another process's term writes); wait_term_codes() waits until they are
  // built and cover every term write seen (tests).
  const TermCodes& term_codes() const { return *term_codes_; }
  void wait_term_codes();
  // Tests: while the handle lives, the store acts as when one of its checkpoints waits for
  // readers (HoldSnapshots).
  std::shared_ptr<void> hold_snapshots_for_tests();

  // Observability (and deterministic tests): writers blocked in write() right now, and totals.
  int writers_waiting() const;
  int grouped_writes_queued() const;  // write_grouped() items waiting to be run
  GroupCommitStats group_commit_stats() const;
  CacheMemory cache_memory() const override;
  WriteStats write_stats() const override;
  // While a handle lives, the writer checkpoints at StoreOptions::bulk_wal_max_frames and does
  // not wake the background checkpointer; when the last one goes, its thread checkpoints the
  // whole WAL (PASSIVE, beside other writers; then TRUNCATE, which waits for readers and the
  // writer up to the busy timeout to copy the rest and truncate the file).
  std::unique_ptr<BulkWrites> bulk_writes() override;
  // Database file descriptors of the reader connections marked for random access at open
  // (posix_fadvise RANDOM: no readahead; one per reader on Linux, 0 where that is unknown).
  int random_read_files() const { return random_read_files_; }
  // Each reader's PRAGMA mmap_size (StoreOptions::reader_map_mib, 0 when the file is larger).
  std::int64_t reader_map_bytes() const { return reader_map_bytes_; }

  // Read snapshots kept across transactions (see begin_read): read transactions that began a
  // snapshot of their own (BEGIN), those that took over the one their reader kept, and kept
  // snapshots ended while their reader sat idle in the pool (by the idle timer or before a
  // checkpoint).
  struct ReadSnapshotStats {
    std::int64_t begun = 0;
    std::int64_t reused = 0;
    std::int64_t ended_idle = 0;
  };
  ReadSnapshotStats read_snapshot_stats() const;
  // A reader's kept snapshot is ended once it has sat idle in the pool through one whole period
  // of this length (between one and two periods), and one in use is not taken over by a read
  // that begins more than two periods after it began: another process's RESTART or TRUNCATE
  // checkpoint (which waits for every reader of an older snapshot) then waits at most this long.
  static constexpr int kSnapshotIdleMs = 100;

  struct Batch;  // one shared write transaction (sqlite_store.cc)
  struct Job;    // one write_grouped() item (sqlite_store.cc)

  // WAL frames added since the background checkpointer was last woken at which a COMMIT wakes
  // it again (below). 16,000 (~63 MiB of WAL), not 1000 or 4000: the hot pages (table and index
  // tails, the audit log, the upper B-tree levels, the term index's common terms) recur in more
  // of the frames each copy covers, so fewer of them are copied per create (at 1M: 4.2–4.8 →
  // 3.1–3.3 pages copied a create, a fifth to a third as many database syncs, ~4% less server
  // CPU a create than at 4000; bench/README.md, session 19). StoreOptions::wal_max_frames stays
  // well above it, so that the writer's own RESTART is the exception.
  static constexpr int kCheckpointFrames = 16000;

 private:
  friend class WriteTx;
  SqliteStore(std::string path, const StoreOptions& options);
  // A read transaction of its own on a pooled reader.
  // A reader from the pool; with routing->no_wait, kBusy at once when none is free.
  Result<std::unique_ptr<Tx>> begin_read(ReadRouting* routing = nullptr);
  // Back to the pool; with `keep` (no statement of the transaction failed) the reader keeps its
  // read transaction open for the next read while its snapshot stays current (keeps_snapshot).
  void return_reader(Connection* reader, bool keep);
  // Whether `reader`'s open snapshot is still the latest: the WAL index header in shared memory
  // is as it was just before the snapshot began (every commit, by any process, rewrites it), no
  // checkpoint of this store waits for readers, and it began at most two idle periods ago.
  // Called with pool_mu_ held (reap_epoch_).
  bool keeps_snapshot(const Connection& reader) const;
  // Ends the kept snapshots of readers idle in the pool: every one (`all`, before a checkpoint),
  // or those idle since before the previous call (the idle timer, which then advances
  // reap_epoch_, and disarms it when no kept snapshot is left in the pool).
  void end_idle_snapshots(bool all);
  // Held around a checkpoint of this store that waits for readers (RESTART, TRUNCATE): ends
  // idle snapshots and keeps readers from keeping or taking over one until it is destroyed, so
  // that the checkpoint waits only for the reads in progress.
  class HoldSnapshots;
  // Called by the writer that holds the connection once its savepoint is released or rolled
  // back: hands the connection to a waiting writer, or ends the batch (COMMIT, or ROLLBACK when
  // it is broken or holds nothing) and wakes every member waiting for it.
  // Queued write_grouped() items are run first (in `batch`, by the calling thread) while the
  // batch has room.
  // `caller_waits`: the calling thread has a caller waiting for it (write(), write_grouped):
  // it does not begin the next batch for items queued meanwhile, the combiner thread does.
  void leave_writer(const std::shared_ptr<Batch>& batch, bool caller_waits);
  // Queues a grouped item (write_grouped_async; write_grouped with `caller_waits`).
  void enqueue(std::function<Status(Tx&)> work, std::function<void(Status)> done,
               bool caller_waits);
  // Begins the next batch for items queued when a batch ended on a thread whose caller waits
  // (write(), write_grouped): woken then, it runs batches while items are queued and the
  // connection is free, and sleeps otherwise.
  void combiner_loop();
  // Calls the `done` of write_grouped_async() items whose batch has ended (end_batch queues
  // them in completions_), off the thread that ends batches and begins the next. Returns once
  // the store stops and nothing is left to call.
  void completion_loop();
  // Before the store closes: runs every queued grouped item and ends its batch (waiting for
  // the thread that holds the connection first), so that their `done` is called with the
  // result of a COMMIT rather than dropped.
  void drain_grouped();
  // Begins a batch on the writer connection (held by the caller) unless one is open.
  Result<std::shared_ptr<Batch>> join_or_begin_batch();
  // Runs queued items back to back in one savepoint of `batch` (writer held by the caller), not
  // one savepoint each: SQLite copies every page a savepoint's statements change, that the
  // transaction had changed before, into its statement journal (in memory, 1 KB pieces), and
  // the items of a batch change the same pages (table and index tails, the audit log): a
  // savepoint per create cost ~30 µs of the writer's time on its row and audit entry alone.
  // An item that fails rolls the run back to its savepoint; the failing item fails alone and
  // the items before it run again (so an item's work may run more than once, see
  // Store::write_grouped).
  void run_jobs(std::vector<std::unique_ptr<Job>> pending, const std::shared_ptr<Batch>& batch);
  // Blocks until `batch` has ended; its result.
  Status wait_for(const std::shared_ptr<Batch>& batch);
  // Ends `batch` (COMMIT, or ROLLBACK when it is broken or holds nothing), frees the writer
  // connection, wakes the members waiting for it and calls the `done` of its grouped items.
  // Answers whether items are still queued (the caller then tries to begin the next batch).
  bool end_batch(const std::shared_ptr<Batch>& batch);
  // Tells an ended batch's members its result: wakes write_grouped callers, queues the other
  // items' `done` for the completion thread. Called once the COMMIT's sync has returned.
  void deliver(std::vector<std::unique_ptr<Job>> ran, const Status& result);
  // Runs the WAL syncs that ended batches' COMMITs left undone (wal_buffer.h, DeferWalSync):
  // one sync for every batch queued meanwhile, then their members learn their result (batch
  // order). Returns once the store stops and every queued batch is delivered.
  void sync_loop();
  // Calls the `done` of every queued item with `error` (the next batch could not begin).
  void fail_queued(const Error& error);

  std::string path_;
  StoreOptions options_;
  SqliteDialect dialect_;

  std::unique_ptr<Connection> writer_;
  mutable std::mutex group_mu_;
  std::condition_variable writer_free_cv_;  // writer_busy_ became false
  std::condition_variable batch_done_cv_;   // a batch ended
  bool writer_busy_ = false;                // a member transaction holds the writer connection
  int writers_waiting_ = 0;
  std::shared_ptr<Batch> batch_;            // the open shared transaction, if any
  std::vector<std::unique_ptr<Job>> jobs_;  // write_grouped() items not yet run
  GroupCommitStats stats_;

  // WAL checkpoints run on a thread and connection of their own, not by the committing writer
  // (SQLite's automatic checkpoint ran in the COMMIT that crossed 1000 WAL frames, copying
  // pages and syncing the database file while every waiting writer waited too). A hook on the
  // writer wakes the thread once a COMMIT leaves kCheckpointFrames more frames in the WAL than
  // at the last wake-up; it runs a PASSIVE checkpoint, which never blocks writers or readers.
  // Woken after every COMMIT past the first kCheckpointFrames (as before), it copied each batch's
  // pages into the database file (and synced it) once per batch: the pages every batch writes
  // (table and index tails, the audit log, the hot index pages) were copied again and again.
  // Now each copy covers kCheckpointFrames frames, in which those pages recur. A PASSIVE checkpoint
  // racing back-to-back writes never copies the last frames before the next write begins, so the
  // log never starts again: once a COMMIT leaves StoreOptions::wal_max_frames frames, the
  // committing writer runs a RESTART checkpoint itself (waiting for readers and for the
  // background checkpoint, up to the busy timeout), holding its waiting writers back meanwhile.
  // RESTART, not TRUNCATE: the next COMMITs overwrite the log file from its start, in blocks the
  // file system has already allocated, where after a truncation every WAL write allocated and
  // zeroed new blocks (3% of a create's CPU).
  // While bulk_writes() handles live (bulk_writers_ > 0) the bound is bulk_wal_max_frames and the
  // background checkpointer sleeps: an import's batches rewrite the same index pages, and a
  // checkpoint every few batches copies each page once for all of them.
  static int on_wal_commit(void* self, ::sqlite3* db, const char* schema, int frames);
  void end_bulk_writes();
  std::atomic<int> bulk_writers_{0};
  void checkpoint_loop();
  std::unique_ptr<Connection> checkpointer_;
  std::thread checkpoint_thread_;
  std::unique_ptr<TermCodes> term_codes_;
  std::thread term_codes_thread_;
  std::atomic<bool> term_codes_stop_{false};
  void term_codes_loop();
  bool build_term_codes();  // false: stopped or failed
  // Before the COMMIT of a transaction that wrote terms: the row of the last term write set to
  // this store's writer, after telling the codes of another writer's write it replaces.
  Status note_term_write();
  std::thread combiner_thread_;
  std::condition_variable combiner_cv_;  // guarded by group_mu_
  bool combiner_wanted_ = false;
  // Ended batches' write_grouped_async() items, with the batch's result, for completion_loop.
  struct Completion {
    std::vector<std::unique_ptr<Job>> jobs;
    Status result;
  };
  std::vector<Completion> completions_;  // guarded by group_mu_
  std::condition_variable completion_cv_;
  std::thread completion_thread_;
  // Ended batches waiting for the sync thread: committed (other connections may read them),
  // their members not yet told. Guarded by group_mu_.
  struct Synced {
    std::shared_ptr<Batch> batch;
    std::vector<std::unique_ptr<Job>> ran;
    Status result;                  // the COMMIT's
    std::shared_ptr<WalSync> sync;  // its WAL sync (nullptr: none left undone)
  };
  std::vector<Synced> syncs_;
  int syncs_in_flight_ = 0;  // queued or being delivered by the sync thread
  // The writer's holder waits (leave_writer) for the sync in flight before it commits its
  // batch, taking queued items meanwhile: woken by enqueue, a waiting writer and the sync thread.
  bool holder_waiting_ = false;
  std::condition_variable holder_cv_;
  std::condition_variable sync_cv_;
  std::thread sync_thread_;
  std::condition_variable checkpoint_cv_;  // guarded by group_mu_
  std::mutex checkpoint_run_mu_;           // held while either checkpoint runs
  bool checkpoint_wanted_ = false;
  int checkpoint_woken_at_ = 0;  // WAL frames at the last wake-up (the writer's hook only)
  bool stopping_ = false;
  // Set once the threads that end batches (and the sync thread) are gone: the completion thread
  // stops when it has called every `done` they handed over (an ended batch's delivery can follow
  // the moment its writer is free, which drain_grouped() may take for the end of the work).
  bool completion_stopping_ = false;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> readers_;
  int random_read_files_ = 0;
  std::int64_t reader_map_bytes_ = 0;
  std::vector<Connection*> free_readers_;  // guarded by pool_mu_
  // Kept read snapshots: the idle timer's period count (guarded by pool_mu_), whether a free
  // reader may keep one (the checkpoint thread then wakes every kSnapshotIdleMs to end idle
  // ones), checkpoints of this store that wait for readers, and the counts.
  std::uint64_t reap_epoch_ = 0;
  std::atomic<bool> reaper_armed_{false};
  std::atomic<int> checkpoints_waiting_{0};
  std::atomic<std::int64_t> snapshots_begun_{0};
  std::atomic<std::int64_t> snapshots_reused_{0};
  std::atomic<std::int64_t> snapshots_ended_idle_{0};
  // Tx::change_stamp of read transactions: counts every batch's end (after its COMMIT, before
  // its members learn the result) and every change a reader's PRAGMA data_version shows.
  std::atomic<std::uint64_t> change_stamp_{1};
};

// Replaces the SQLite database at `target_path` with the backup at `backup_path` after checking
// that the backup is a sound SQLite database. The server must be stopped.
Status restore(const std::string& target_path, const std::string& backup_path);

}  // namespace rapport::storage::sqlite
