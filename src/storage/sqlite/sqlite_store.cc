// The implementation of the SQLite backend: connections with a prepared-statement cache, the
// writer lock and reader pool, transactions, FTS5 search, migrations, online backup and restore.
#include "storage/sqlite/sqlite_store.h"
#include "base/blocking.h"
#include "storage/migrations.h"
#include "storage/shared_read.h"
#include "storage/sqlite/term_codes.h"
#include "storage/sqlite/wal_buffer.h"
#include "storage/text_search.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

namespace rapport::storage::sqlite {
namespace {

using detail::fts_table;

// Above this many cached statements the cache is dropped and rebuilt; bounds the memory that
// dynamically shaped SQL (fts_search with varying term counts) can pin.
constexpr std::size_t kStatementCacheLimit = 512;
// Each reader's page cache (its cache_size), and part of cache_memory()'s bound.
constexpr std::int64_t kReaderCacheMiB = 16;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// "UNIQUE constraint failed: contact.email" → "email"; first column of a composite key.
std::string constraint_field(std::string_view msg) {
  auto colon = msg.find(": ");
  if (colon == std::string_view::npos) return {};
  std::string_view rest = msg.substr(colon + 2);
  rest = rest.substr(0, rest.find(','));
  auto dot = rest.rfind('.');
  if (dot == std::string_view::npos) return {};  // a CHECK constraint's name, not a column
  return std::string(rest.substr(dot + 1));
}

Error sqlite_error(sqlite3* db, int rc, std::string_view context) {
  std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (!context.empty()) msg = std::string(context) + ": " + msg;
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: {
      std::string field = constraint_field(db != nullptr ? sqlite3_errmsg(db) : "");
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return make_error(Errc::kDuplicate, std::move(msg), std::move(field));
      }
      return make_error(Errc::kValidation, std::move(msg), std::move(field));
    }
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return make_error(Errc::kBusy, std::move(msg));
    default:
      return make_error(Errc::kStorage, std::move(msg));
  }
}

// SQLite's heap: the C allocator, its bytes counted here, and SQLite's own memory statistics off.
// With them on (the default), every sqlite3_malloc and sqlite3_free takes one process-wide mutex
// to keep the counts: ~16 of each in a read by id that reads its row whole (each text column is
// copied into a register; this libsqlite3 is built without lookaside), ~5,600 of its ~64,000
// instructions with the allocator's own work (~2,900 with this one), and a lock that every
// reader and the writer contend for. Installed before
// SQLite is first used (the first store opened); if something used SQLite earlier (a test's
// VFS), SQLite keeps its own allocator and statistics and nothing changes.
//
// The count is kept per thread (HeapShard), not in one atomic: a locked add on a cache line
// every reader, I/O thread and the writer share, ~16 times each way in a read by id, ~7 in a
// phone lookup, costs ~10-20 ns each (an atomic read-modify-write; callgrind counts it as one
// instruction). A thread adds to its own shard with a plain load and store; heap_bytes() sums
// the shards. A shard is taken by a thread on its first allocation and handed back when the
// thread ends, its count kept (a block may be freed by another thread than the one that
// allocated it: shards go negative, the sum stays right), and taken again by a later thread.
struct alignas(64) HeapShard {
  std::atomic<std::int64_t> bytes{0};
  std::atomic<bool> taken{false};
  HeapShard* next = nullptr;  // set before the shard is published, never changed
};
std::atomic<HeapShard*> g_heap_shards{nullptr};  // never freed: one per thread alive at once
// Blocks counted by a thread without a shard (allocating while it ends, after its shard went).
std::atomic<std::int64_t> g_heap_bytes{0};

HeapShard* take_heap_shard() {
  for (HeapShard* s = g_heap_shards.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    bool free = false;
    if (!s->taken.load(std::memory_order_relaxed) &&
        s->taken.compare_exchange_strong(free, true, std::memory_order_acquire))
      return s;
  }
  auto* s = new HeapShard;
  s->taken.store(true, std::memory_order_relaxed);
  HeapShard* head = g_heap_shards.load(std::memory_order_relaxed);
  do {
    s->next = head;
  } while (!g_heap_shards.compare_exchange_weak(head, s, std::memory_order_release,
                                                std::memory_order_relaxed));
  return s;
}

// The thread's shard: none yet, its own, or gone (the thread is ending: the shared count).
thread_local HeapShard* t_heap_shard = nullptr;
thread_local bool t_heap_shard_gone = false;
struct HeapShardRelease {
  ~HeapShardRelease() {
    t_heap_shard_gone = true;
    if (HeapShard* s = std::exchange(t_heap_shard, nullptr))
      s->taken.store(false, std::memory_order_release);
  }
};

void count_heap(std::int64_t n) {
  HeapShard* s = t_heap_shard;
  if (s == nullptr) {
    if (t_heap_shard_gone) {
      g_heap_bytes.fetch_add(n, std::memory_order_relaxed);
      return;
    }
    s = t_heap_shard = take_heap_shard();
    thread_local HeapShardRelease release;  // hands the shard back when the thread ends
    (void)release;
  }
  // Only this thread writes its shard; heap_bytes() reads it.
  s->bytes.store(s->bytes.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Each block carries its size in an 8-byte head (SQLite's own mem1.c does the same where the C
// library cannot tell a block's size): asking tcmalloc for it (malloc_usable_size) cost more
// than the lock it replaces.
constexpr std::size_t kHead = 8;
void* heap_malloc(int n) {
  auto* p = static_cast<std::int64_t*>(std::malloc(static_cast<std::size_t>(n) + kHead));
  if (p == nullptr) return nullptr;
  *p = n;
  count_heap(n);
  return p + 1;
}
void heap_free(void* block) {
  if (block == nullptr) return;
  std::int64_t* p = static_cast<std::int64_t*>(block) - 1;
  count_heap(-*p);
  std::free(p);
}
void* heap_realloc(void* block, int n) {
  if (block == nullptr) return heap_malloc(n);
  std::int64_t* p = static_cast<std::int64_t*>(block) - 1;
  const std::int64_t before = *p;
  auto* q = static_cast<std::int64_t*>(std::realloc(p, static_cast<std::size_t>(n) + kHead));
  if (q == nullptr) return nullptr;  // the old block stays, with its size
  *q = n;
  count_heap(n - before);
  return q + 1;
}
int heap_size(void* block) {
  return block != nullptr ? static_cast<int>(*(static_cast<std::int64_t*>(block) - 1)) : 0;
}
int heap_roundup(int n) { return (n + 7) & ~7; }
int heap_init(void*) { return SQLITE_OK; }
void heap_shutdown(void*) {}

// True when SQLite allocates through heap_malloc and keeps no statistics of its own (then
// the heap shards count its heap, and sqlite3_memory_used() would answer 0).
bool own_heap() {
  static const bool installed = [] {
    static const sqlite3_mem_methods methods{heap_malloc,  heap_free, heap_realloc,  heap_size,
                                             heap_roundup, heap_init, heap_shutdown, nullptr};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK) return false;
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK) return false;
    return true;
  }();
  return installed;
}

// Reads of the database and WAL files on a thread that must not wait (ReadRouting::no_wait: an
// I/O thread trying a request in place) ask the kernel for pages it already holds
// (preadv2 with RWF_NOWAIT). A page it would have to fetch from the disk is not read there: the
// routing is marked `would_wait` and the read fails (EAGAIN: SQLITE_IOERR_READ, which ends the
// reader's transaction — SQLite rolls a read back on an I/O error — and leaves its page cache
// as it was); Connection::run answers kBusy and the request runs again on a worker, which reads
// the page. Every other read is the unix VFS's own pread. Installed in the default (unix) VFS
// before SQLite's first use, like the heap above.
using PreadFn = ssize_t (*)(int, void*, std::size_t, off_t);
PreadFn g_pread = nullptr;    // the VFS's pread64 (or pread) this replaces
PreadFn g_pread64 = nullptr;  // the same for the other one, when this SQLite uses it

ssize_t read_unless_waiting(PreadFn plain, int fd, void* buf, std::size_t n, off_t offset) {
  ReadRouting* routing = current_read_routing();
  if (routing != nullptr && routing->no_wait) {
    iovec iov{buf, n};
    const ssize_t got = ::preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
    if (got >= 0) return got;  // SQLite asks again for the rest of a short read
    if (errno == EAGAIN) {
      routing->would_wait = true;
      return got;  // errno EAGAIN: SQLITE_IOERR_READ (EIO would read as a corrupt file)
    }
    if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS) return got;
  }
  return plain(fd, buf, n, offset);
}
ssize_t probe_pread(int fd, void* buf, std::size_t n, off_t offset) {
  return read_unless_waiting(g_pread, fd, buf, n, offset);
}
ssize_t probe_pread64(int fd, void* buf, std::size_t n, off_t offset) {
  return read_unless_waiting(g_pread64, fd, buf, n, offset);
}

bool install_read_probe() {
  static const bool installed = [] {
    sqlite3_vfs* vfs = sqlite3_vfs_find("unix");
    if (vfs == nullptr || vfs->iVersion < 3 || vfs->xGetSystemCall == nullptr) return false;
    bool any = false;
    if (auto f = vfs->xGetSystemCall(vfs, "pread64")) {
      g_pread64 = reinterpret_cast<PreadFn>(f);
      any |=
          vfs->xSetSystemCall(vfs, "pread64",
                              reinterpret_cast<sqlite3_syscall_ptr>(&probe_pread64)) == SQLITE_OK;
    }
    if (auto f = vfs->xGetSystemCall(vfs, "pread")) {
      g_pread = reinterpret_cast<PreadFn>(f);
      any |= vfs->xSetSystemCall(vfs, "pread",
                                 reinterpret_cast<sqlite3_syscall_ptr>(&probe_pread)) == SQLITE_OK;
    }
    return any;
  }();
  return installed;
}

}  // namespace

std::int64_t heap_bytes() {
  if (!own_heap()) return sqlite3_memory_used();
  std::int64_t sum = g_heap_bytes.load(std::memory_order_relaxed);
  for (HeapShard* s = g_heap_shards.load(std::memory_order_acquire); s != nullptr; s = s->next)
    sum += s->bytes.load(std::memory_order_relaxed);
  return sum;
}

bool heap_counted_here() { return own_heap(); }

// One sqlite3 handle and the statements prepared on it. Used by one thread at a time (the
// holder of the writer lock, or of this reader from the pool), hence SQLITE_OPEN_NOMUTEX.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const std::string& path, int flags,
                                                  int busy_timeout_ms, const char* vfs = nullptr) {
    own_heap();            // before SQLite's first use
    install_read_probe();  // likewise
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, vfs);
    if (rc != SQLITE_OK) {
      std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return make_error(Errc::kStorage, "cannot open database '" + path + "': " + msg);
    }
    sqlite3_extended_result_codes(db, 1);
    std::unique_ptr<Connection> conn(new Connection(db));
    conn->busy_timeout_ms_ = busy_timeout_ms;
    sqlite3_busy_handler(db, &Connection::on_busy, conn.get());
    return conn;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
  // The store's number codes (term_codes.h): noted by this connection's term writes, and read
  // by its statements through rapport_term_codes(entity, id, code, code, n, writer).
  TermCodes* codes() const { return codes_; }
  void use_codes(TermCodes* codes) {
    codes_ = codes;
    sqlite3_create_function_v2(db_, "rapport_term_codes", 6, SQLITE_UTF8, codes,
                               &Connection::term_codes_function, nullptr, nullptr, nullptr);
  }
  // This connection's transaction wrote a record's terms (Tx::fts_noted): its COMMIT sets the
  // row of the last term write first (SqliteStore::end_batch).
  bool terms_noted = false;

  // Runs one statement; collects result rows into `out` when given, or shows each to `visit`
  // (SQLite's own column buffers, nothing copied; false from it stops the statement). Returns
  // rows changed.
  Result<std::int64_t> run(std::string_view sql, std::span<const SqlValue> params = {},
                           Rows* out = nullptr, const RowVisitor* visit = nullptr) {
    RP_ASSIGN(sqlite3_stmt * stmt, prepare(sql));
    // Leave the cached statement reusable whatever happens below.
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{stmt};

    int expected = sqlite3_bind_parameter_count(stmt);
    if (expected != static_cast<int>(params.size())) {
      return make_error(Errc::kInternal, "statement expects " + std::to_string(expected) +
                                             " parameters, got " + std::to_string(params.size()) +
                                             ": " + std::string(sql));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i) + 1;
      int rc = std::visit(
          [&](const auto& v) -> int {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              return sqlite3_bind_null(stmt, idx);
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
              return sqlite3_bind_int64(stmt, idx, v);
            } else if constexpr (std::is_same_v<T, double>) {
              return sqlite3_bind_double(stmt, idx, v);
            } else {
              // SQLITE_STATIC: `params` outlives the statement's use; bindings are cleared below.
              return sqlite3_bind_text64(stmt, idx, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
            }
          },
          params[i]);
      if (rc != SQLITE_OK) return sqlite_error(db_, rc, "bind");
    }

    int ncols = sqlite3_column_count(stmt);
    if (out != nullptr) {
      out->columns.clear();
      out->rows.clear();
      for (int c = 0; c < ncols; ++c) out->columns.emplace_back(sqlite3_column_name(stmt, c));
    }
    std::int64_t before = sqlite3_total_changes64(db_);
    // The row's views for `visit`: on the stack for up to kInlineColumns columns (no allocation
    // per statement), in `wide` for more. Not a member: a visitor may run another statement.
    constexpr int kInlineColumns = 16;
    std::array<SqlView, kInlineColumns> inline_view;
    std::vector<SqlView> wide;
    if (visit != nullptr && ncols > kInlineColumns) wide.resize(static_cast<std::size_t>(ncols));
    const std::span<SqlView> view =
        ncols > kInlineColumns
            ? std::span<SqlView>(wide)
            : std::span<SqlView>(inline_view.data(), static_cast<std::size_t>(ncols));
    // On a thread that must not wait, a read of a page out of memory failed
    // (install_read_probe): the statement's error is kBusy, and the request goes to a worker.
    // Statements that read nothing more (a ROLLBACK on the way out) run as usual.
    const ReadRouting* routing = current_read_routing();
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE && routing != nullptr && routing->no_wait &&
          routing->would_wait)
        return make_error(Errc::kBusy, "a page is not in memory: not on this thread");
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return sqlite_error(db_, sqlite3_extended_errcode(db_), {});
      if (visit != nullptr) {
        for (int c = 0; c < ncols; ++c) {
          // One API call per column, then the value's own accessors (each sqlite3_column_*
          // call looks the column up and checks for an error again). The connection is
          // NOMUTEX, so the column's value may be read directly.
          sqlite3_value* v = sqlite3_column_value(stmt, c);
          switch (sqlite3_value_type(v)) {
            case SQLITE_INTEGER:
              view[c] = static_cast<std::int64_t>(sqlite3_value_int64(v));
              break;
            case SQLITE_FLOAT:
              view[c] = sqlite3_value_double(v);
              break;
            case SQLITE_NULL:
              view[c] = std::monostate{};
              break;
            default: {
              const auto* p = sqlite3_value_blob(v);
              int n = sqlite3_value_bytes(v);
              view[c] = std::string_view(static_cast<const char*>(p), p != nullptr ? n : 0);
            }
          }
        }
        if (!(*visit)(view)) break;
        continue;
      }
      if (out == nullptr) continue;
      std::vector<SqlValue>& row = out->rows.emplace_back();
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER:
            row.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt, c)));
            break;
          case SQLITE_FLOAT:
            row.emplace_back(sqlite3_column_double(stmt, c));
            break;
          case SQLITE_NULL:
            row.emplace_back(std::monostate{});
            break;
          default: {  // TEXT, and BLOB read back as bytes
            const auto* p = sqlite3_column_blob(stmt, c);
            int n = sqlite3_column_bytes(stmt, c);
            row.emplace_back(std::string(static_cast<const char*>(p), p != nullptr ? n : 0));
          }
        }
      }
    }
    // sqlite3_changes() keeps the count of the last DML statement, so DDL and SELECT would
    // report a stale number; only trust it when this statement changed something.
    if (sqlite3_total_changes64(db_) == before) return std::int64_t{0};
    return static_cast<std::int64_t>(sqlite3_changes64(db_));
  }

  // Ends any open transaction, ignoring errors (used on paths that are already failing).
  void rollback_quietly() {
    if (in_transaction()) (void)run("ROLLBACK");
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  Result<sqlite3_stmt*> prepare(std::string_view sql) {
    // A text the caller keeps (a kept statement: by_id's head, a kept count, a literal) comes
    // back at the same address: found by it without hashing the text, which is still compared
    // (another text may have been built at a freed one's address).
    Known& known = known_[(reinterpret_cast<std::uintptr_t>(sql.data()) >> 4) % known_.size()];
    if (known.text != nullptr && known.data == sql.data() && known.text->size() == sql.size() &&
        std::memcmp(known.text->data(), sql.data(), sql.size()) == 0)
      return known.stmt;
    if (auto it = cache_.find(sql); it != cache_.end()) {
      known = Known{sql.data(), &it->first, it->second};
      return it->second;
    }
    if (cache_.size() >= kStatementCacheLimit) {
      // Safe: run() resets every statement before returning, so none is mid-step here.
      known_.fill(Known{});
      for (auto& [text, stmt] : cache_) sqlite3_finalize(stmt);
      cache_.clear();
    }
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return sqlite_error(db_, sqlite3_extended_errcode(db_), {});
    if (stmt == nullptr) return make_error(Errc::kInternal, "empty SQL statement");
    std::string_view rest(tail, sql.data() + sql.size() - tail);
    if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
      // Only comments may follow; anything that compiles to a statement is refused.
      sqlite3_stmt* extra = nullptr;
      rc = sqlite3_prepare_v2(db_, rest.data(), static_cast<int>(rest.size()), &extra, nullptr);
      sqlite3_finalize(extra);
      if (rc != SQLITE_OK || extra != nullptr) {
        sqlite3_finalize(stmt);
        return make_error(Errc::kInternal,
                          "only one SQL statement per call is supported: " + std::string(sql));
      }
    }
    auto [it, added] = cache_.emplace(std::string(sql), stmt);
    known = Known{sql.data(), &it->first, stmt};
    return stmt;
  }

  // The busy handler: another process holds the lock this connection wants. SQLite's own
  // (sqlite3_busy_timeout) sleeps up to 100 ms between tries; a server under write load takes
  // the write lock again within microseconds of each COMMIT, so a CLI command polling that
  // rarely almost never found it free and failed with "database is locked" after its timeout.
  // Trying again every millisecond finds the gaps between the server's batches.
  static int on_busy(void* self, int tries) {
    auto* c = static_cast<Connection*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (tries == 0) c->busy_since_ = now;
    if (now - c->busy_since_ >= std::chrono::milliseconds(c->busy_timeout_ms_)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 1;
  }

  // rapport_term_codes(entity, id, a, b, n, writer): TermCodes::check of the record (0 no, 1
  // maybe, 2 not known: not built yet, or the snapshot's last term write, row (n, writer) of
  // _term_writes, not covered). The entity's codes are looked up once per statement (auxiliary
  // data of its constant first argument).
  static void term_codes_function(sqlite3_context* ctx, int, sqlite3_value** argv) {
    const auto* codes = static_cast<const TermCodes*>(sqlite3_user_data(ctx));
    if (!codes->built() ||
        !codes->fresh(sqlite3_value_int64(argv[4]), sqlite3_value_int64(argv[5]))) {
      sqlite3_result_int(ctx, TermCodes::kUnknown);
      return;
    }
    const auto* e = static_cast<const TermCodes::Entity*>(sqlite3_get_auxdata(ctx, 0));
    if (e == nullptr) {
      const auto* name = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
      e = codes->find(name == nullptr ? "" : name);
      if (e != nullptr) sqlite3_set_auxdata(ctx, 0, const_cast<TermCodes::Entity*>(e), nullptr);
    }
    sqlite3_result_int(ctx,
                       TermCodes::check(e, sqlite3_value_int64(argv[1]), sqlite3_value_int(argv[2]),
                                        sqlite3_value_int(argv[3])));
  }

  TermCodes* codes_ = nullptr;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
  // Statements of cache_ by the address of the text last prepared with them, one per slot of
  // addresses (prepare): `text` is their key in cache_ (a node's: it stays put until cleared).
  struct Known {
    const char* data = nullptr;
    const std::string* text = nullptr;
    sqlite3_stmt* stmt = nullptr;
  };
  std::array<Known, 64> known_{};
  int busy_timeout_ms_ = 0;

 public:
  // A reader's data version (SQLITE_FCNTL_DATA_VERSION) at its last read transaction (-1: none
  // yet), for SqliteStore's change stamp: it changes when another connection (this process's
  // writer or another process) committed since.
  std::int64_t last_data_version = -1;

  // A read transaction left open when the last one on this reader ended, for the next read to
  // take over (SqliteStore::begin_read), with its change stamp, the WAL index header as it was
  // just before its snapshot began, whether that copy was taken (not on the reader's first
  // transaction, when the header's place in shared memory is not known yet), and the idle
  // timer's period in which the snapshot began and in which the reader was last put back.
  bool snapshot_kept = false;
  std::optional<std::uint64_t> kept_stamp;
  std::array<std::uint32_t, 24> header_at_begin{};
  bool header_copied = false;
  std::uint64_t snapshot_epoch = 0;
  std::uint64_t idle_epoch = 0;
  // The WAL index header in the shared memory (the "-shm" file) this connection maps, once known.
  const volatile std::uint32_t* wal_header = nullptr;

  // Ends the read transaction this reader kept (if any).
  void end_snapshot() {
    snapshot_kept = false;
    rollback_quietly();
  }

 private:
  std::chrono::steady_clock::time_point busy_since_;  // the first try of the current wait
};

namespace {

// The statements of a transaction on one connection; how it begins and ends is the subclass's.
class ConnTx : public Tx {
 public:
  explicit ConnTx(Connection* conn) : conn_(conn) {}

  Result<Rows> query(std::string_view sql, std::span<const SqlValue> params) override {
    Rows rows;
    RP_TRY(run(sql, params, &rows));
    return rows;
  }

  Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) override {
    return run(sql, params);
  }

  Status each_row(std::string_view sql, std::span<const SqlValue> params,
                  const RowVisitor& visit) override {
    RP_TRY(check_open());
    RP_TRY(conn_->run(sql, params, nullptr, &visit));
    return {};
  }

  Status fts_put(std::string_view entity, std::int64_t id, std::string_view text,
                 const SqlValue& account_id) override {
    const FtsRow row{id, std::string(text), account_id};
    return fts_put_many(entity, std::span<const FtsRow>(&row, 1), false);
  }

  // Padded statements repeat their last row: the inserts ignore duplicates.
  Status fts_put_many(std::string_view entity, std::span<const FtsRow> rows, bool fresh) override {
    return detail::put_terms(entity, rows, fresh, "INSERT OR IGNORE INTO", "", *this);
  }
  Status fts_put_lists(std::string_view entity, std::span<const FtsRow> rows) override {
    return detail::put_terms(entity, rows, /*fresh=*/true, "INSERT OR IGNORE INTO", "", *this,
                             /*lists_only=*/true);
  }

  Status fts_clear(std::string_view entity) override {
    RP_TRY(fts_table(entity));  // fts_create throws on a bad name
    return detail::clear_terms(entity, SqliteDialect().fts_create(entity), *this);
  }

  void fts_noted(std::string_view entity, std::int64_t id, std::string_view list) override {
    conn_->terms_noted = true;
    if (conn_->codes() != nullptr) conn_->codes()->note(entity, id, list);
  }

  Status fts_delete(std::string_view entity, std::int64_t id) override {
    return detail::remove_terms(entity, std::span<const std::int64_t>(&id, 1), *this);
  }

  // Run at once even in a group-commit member (not queued as its other full-text writes are):
  // plain inserts into the staging table and the term lists.
  Status fts_load(std::string_view entity, std::span<const FtsRow> rows) override {
    RP_TRY(check_open());
    return detail::load_terms(entity, rows, "INSERT OR IGNORE INTO", "", *this);
  }

  // The sort spills to temporary files (temp_store=MEMORY would hold every term in memory).
  Status fts_load_finish(std::string_view entity) override {
    RP_TRY(check_open());
    RP_TRY(run("PRAGMA temp_store=FILE", {}));
    Status s = detail::finish_load_terms(entity, "INSERT OR IGNORE INTO", "", *this);
    auto back = run("PRAGMA temp_store=MEMORY", {});
    RP_TRY(s);
    RP_TRY(back);
    return {};
  }

  Result<std::optional<std::vector<std::string>>> table_columns(std::string_view table) override {
    const SqlValue name[] = {std::string(table)};
    Rows rows;
    RP_TRY(run("SELECT name FROM pragma_table_info(?)", name, &rows));
    if (rows.rows.empty()) return std::optional<std::vector<std::string>>();
    std::vector<std::string> cols;
    for (const auto& r : rows.rows) cols.push_back(std::get<std::string>(r[0]));
    return std::optional<std::vector<std::string>>(std::move(cols));
  }

  // An empty query (or one without indexable words) or a non-positive limit matches nothing.
  Result<std::vector<std::int64_t>> fts_search(std::string_view entity, std::string_view query,
                                               int limit) override {
    return search_keys(entity, detail::query_keys(query), limit);
  }

  Result<std::vector<std::int64_t>> fts_search_words(std::string_view entity, std::string_view text,
                                                     int limit) override {
    return search_keys(entity, detail::word_keys(text), limit);
  }

  // The records holding every key (fts_search, fts_search_words), newest first.
  Result<std::vector<std::int64_t>> search_keys(std::string_view entity,
                                                const std::vector<detail::TermKey>& keys,
                                                int limit) {
    RP_ASSIGN(std::string table, fts_table(entity));
    std::vector<std::int64_t> ids;
    if (keys.empty() || limit <= 0) {
      RP_TRY(check_open());
      return ids;
    }
    std::vector<SqlValue> params;
    std::string sql = detail::terms_search_sql(entity, keys, limit, "instr", params);
    Rows rows;
    RP_TRY(run(sql, params, &rows));
    ids.reserve(rows.rows.size());
    for (const auto& row : rows.rows) ids.push_back(std::get<std::int64_t>(row[0]));
    return ids;
  }

 protected:
  virtual Status check_open() const {
    if (conn_ == nullptr) return make_error(Errc::kInternal, "transaction already finished");
    return {};
  }
  // Every statement of the transaction goes through here.
  virtual Result<std::int64_t> run(std::string_view sql, std::span<const SqlValue> params,
                                   Rows* out = nullptr) {
    RP_TRY(check_open());
    return conn_->run(sql, params, out);
  }

  Connection* conn_;
};

// A read transaction on a pooled reader. `release_` returns the reader to the pool, telling it
// whether the transaction may be kept open for the next read (no statement failed: a failed
// one may have ended it or left it in an unknown state). Committing a read changes nothing, so
// commit() ends it the same way.
class ReadTx final : public ConnTx {
 public:
  ReadTx(Connection* conn, std::function<void(bool keep)> release,
         std::optional<std::uint64_t> stamp)
      : ConnTx(conn), release_(std::move(release)), stamp_(stamp) {}
  ~ReadTx() override {
    if (conn_ != nullptr) finish();
  }
  ReadTx(const ReadTx&) = delete;
  ReadTx& operator=(const ReadTx&) = delete;

  Status commit() override {
    RP_TRY(check_open());
    finish();
    return {};
  }
  std::optional<std::uint64_t> change_stamp() const override { return stamp_; }

  Status each_row(std::string_view sql, std::span<const SqlValue> params,
                  const RowVisitor& visit) override {
    Status s = ConnTx::each_row(sql, params, visit);
    if (!s.ok()) failed_ = true;
    return s;
  }

 private:
  Result<std::int64_t> run(std::string_view sql, std::span<const SqlValue> params,
                           Rows* out) override {
    auto r = ConnTx::run(sql, params, out);
    if (!r.ok()) failed_ = true;
    return r;
  }

  void finish() {
    conn_ = nullptr;
    if (release_) std::exchange(release_, nullptr)(!failed_);
  }

  std::function<void(bool)> release_;
  std::optional<std::uint64_t> stamp_;
  bool failed_ = false;
};

// The first keyword of `sql`, upper-cased (ASCII), and whether the statement names TO (as in
// ROLLBACK TO SAVEPOINT x).
std::string first_keyword(std::string_view sql) {
  std::size_t i = sql.find_first_not_of(" \t\r\n(");
  std::string word;
  for (; i != std::string_view::npos && i < sql.size(); ++i) {
    char c = sql[i];
    if (!std::isalpha(static_cast<unsigned char>(c))) break;
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return word;
}

bool names_to(std::string_view sql) {
  std::string upper(sql);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (std::size_t at = upper.find("TO"); at != std::string::npos; at = upper.find("TO", at + 1)) {
    bool before = at == 0 || std::isspace(static_cast<unsigned char>(upper[at - 1]));
    bool after = at + 2 == upper.size() || std::isspace(static_cast<unsigned char>(upper[at + 2]));
    if (before && after) return true;
  }
  return false;
}

constexpr std::string_view kMemberSavepoint = "rapport_write";
constexpr std::string_view kSavepointSql = "SAVEPOINT rapport_write";

// A full-text write of a member, applied when its batch ends (see WriteTx).
struct FtsOp {
  enum Kind { kPut, kPutFresh, kPutLists, kDelete, kClear };
  std::string entity;
  std::int64_t id;
  std::string text;
  Kind kind;
  SqlValue account_id{};
  std::shared_ptr<const Tx::FtsTerms> terms{};  // a put's Tx::FtsRow::terms
};

// Runs the batch's full-text writes on the writer connection through the ordinary ConnTx
// statements, outside any member's savepoint.
class BatchFtsTx final : public ConnTx {
 public:
  using ConnTx::ConnTx;
  Status commit() override { return make_error(Errc::kInternal, "not a transaction"); }
};

// Applies `ops` in their order, reduced to one write per record: the last put (fresh when the
// record's first operation in the batch was a fresh put: it had no entry before the batch), or
// a delete. Few statements per entity, so FTS5 writes one segment for the whole batch.
// A put of a record that had terms, and a delete, are noted in `pending` (a term build beside
// them takes the record's list again).
Status apply_fts(Connection& conn, const std::vector<FtsOp>& ops, PendingTerms& pending) {
  struct Final {
    bool was_absent;    // the record had no entry before the batch
    const FtsOp* last;  // the operation that decides the entry
  };
  std::map<std::string_view,
           std::pair<std::vector<std::int64_t>, std::unordered_map<std::int64_t, Final>>>
      by_entity;
  // A clear drops every earlier write of its entity: it runs first, and every record is then
  // absent (no entry to replace or delete).
  std::map<std::string_view, std::size_t> last_clear;
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (ops[i].kind == FtsOp::kClear) last_clear[ops[i].entity] = i;
  BatchFtsTx tx(&conn);
  for (const auto& [entity, at] : last_clear) RP_TRY(tx.fts_clear(entity));
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const FtsOp& op = ops[i];
    auto cleared = last_clear.find(op.entity);
    if (cleared != last_clear.end() && i <= cleared->second) continue;
    auto& [order, finals] = by_entity[op.entity];
    bool absent =
        op.kind == FtsOp::kPutFresh || op.kind == FtsOp::kPutLists || cleared != last_clear.end();
    auto [it, added] = finals.try_emplace(op.id, Final{absent, &op});
    if (added)
      order.push_back(op.id);
    else
      it->second.last = &op;
  }
  for (const auto& [entity, entry] : by_entity) {
    const auto& [order, finals] = entry;
    std::vector<Tx::FtsRow> fresh, replaced, lists;
    for (std::int64_t id : order) {
      const Final& f = finals.at(id);
      if (!f.was_absent) pending.touched(entity, id);
      if (f.last->kind == FtsOp::kDelete) {
        if (!f.was_absent) RP_TRY(tx.fts_delete(entity, id));
      } else {
        (!f.was_absent                      ? replaced
         : f.last->kind == FtsOp::kPutLists ? lists
                                            : fresh)
            .push_back({id, f.last->text, f.last->account_id, f.last->terms});
      }
    }
    if (!lists.empty()) RP_TRY(tx.fts_put_lists(entity, lists));
    if (!fresh.empty()) RP_TRY(tx.fts_put_many(entity, fresh, /*fresh=*/true));
    if (!replaced.empty()) RP_TRY(tx.fts_put_many(entity, replaced, /*fresh=*/false));
  }
  return {};
}

}  // namespace

struct SqliteStore::Batch {
  std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
  // Written and read only by the writer holding the connection (handed over under group_mu_):
  int members = 0;            // released savepoints that the COMMIT will make durable
  std::optional<Error> lost;  // SQLite ended the shared transaction: every member fails
  std::vector<FtsOp> fts;     // full-text writes of the released members, in order
  // grouped items that ran in it (their `done` is called once it has ended), in order
  std::vector<std::unique_ptr<Job>> ran;
  // Guarded by group_mu_:
  bool done = false;
  Status result;
};

struct SqliteStore::Job {
  std::function<Status(Tx&)> work;
  std::function<void(Status)> done;  // called once, after its batch has ended
  Status own;  // its own result (work, savepoint), before the COMMIT; set by the thread running it
  // Its `done` is called on the completion thread (write_grouped_async), not on the thread
  // that ended the batch (write_grouped's, which only wakes its waiting caller).
  bool on_completion_thread = false;
};

// A member of the shared write transaction: its own SAVEPOINT on the writer connection.
// Its full-text writes are queued, not run: they join the batch's queue when the member's
// savepoint is released (dropped when it rolls back) and the batch applies them all just before
// its COMMIT. FTS5 flushes its pending terms into a new segment at every savepoint, so writing
// them inside each member's savepoint cost one segment write (and its merges) per member.
// Consequence: a write transaction's own full-text reads do not see its full-text writes
// (nothing reads the index inside a write transaction).
class WriteTx final : public ConnTx {
 public:
  WriteTx(SqliteStore* store, Connection* conn, std::shared_ptr<SqliteStore::Batch> batch)
      : ConnTx(conn), store_(store), batch_(std::move(batch)) {}
  ~WriteTx() override {
    if (conn_ != nullptr && !combined_) {
      rollback_member();
      conn_ = nullptr;
      store_->leave_writer(batch_, true);
    }
  }
  WriteTx(const WriteTx&) = delete;
  WriteTx& operator=(const WriteTx&) = delete;

  Status fts_put(std::string_view entity, std::int64_t id, std::string_view text,
                 const SqlValue& account_id) override {
    RP_TRY(check_open());
    RP_TRY(fts_table(entity));
    pending_fts_.push_back({std::string(entity), id, std::string(text), FtsOp::kPut, account_id});
    return {};
  }
  Status fts_put_many(std::string_view entity, std::span<const FtsRow> rows, bool fresh) override {
    RP_TRY(check_open());
    RP_TRY(fts_table(entity));
    for (const auto& r : rows)
      pending_fts_.push_back({std::string(entity), r.id, r.text,
                              fresh ? FtsOp::kPutFresh : FtsOp::kPut, r.account_id, r.terms});
    return {};
  }
  Status fts_put_lists(std::string_view entity, std::span<const FtsRow> rows) override {
    RP_TRY(check_open());
    RP_TRY(fts_table(entity));
    for (const auto& r : rows)
      pending_fts_.push_back(
          {std::string(entity), r.id, r.text, FtsOp::kPutLists, r.account_id, r.terms});
    return {};
  }
  Status fts_delete(std::string_view entity, std::int64_t id) override {
    RP_TRY(check_open());
    RP_TRY(fts_table(entity));
    pending_fts_.push_back({std::string(entity), id, {}, FtsOp::kDelete});
    return {};
  }
  Status fts_clear(std::string_view entity) override {
    RP_TRY(check_open());
    RP_TRY(fts_table(entity));
    pending_fts_.push_back({std::string(entity), 0, {}, FtsOp::kClear});
    return {};
  }

  // A write_grouped() item: run inside the savepoint of its run of items (SqliteStore::run_jobs),
  // without one of its own, and ended by the thread running it (end_in_run), never by commit()
  // (the group commits) nor by the destructor.
  void set_in_run() { combined_ = true; }
  // Ends an item whose work succeeded (`ok`): its result is a deferred foreign key it left
  // unresolved (it fails the item, as release_member() does) or the transaction lost; on success
  // its full-text writes move to `fts`, the run's. The connection stays with the caller.
  Status end_in_run(bool ok, std::vector<FtsOp>& fts) {
    Status own;
    if (ok) {
      own = check_open();
      if (own.ok() && deferred_foreign_keys() > 0)
        own = make_error(Errc::kValidation, "FOREIGN KEY constraint failed");
      if (own.ok()) {
        std::move(pending_fts_.begin(), pending_fts_.end(), std::back_inserter(fts));
        pending_fts_.clear();
      }
    }
    conn_ = nullptr;
    return own;
  }

  Status commit() override {
    if (combined_) return make_error(Errc::kInternal, "a grouped write is committed by its group");
    RP_TRY(check_open());
    Status own = release_member();
    if (!own.ok()) rollback_member();
    conn_ = nullptr;
    store_->leave_writer(batch_, true);
    if (!own.ok()) return own;
    return store_->wait_for(batch_);
  }

 private:
  Status check_open() const override {
    RP_TRY(ConnTx::check_open());
    if (batch_->lost) return *batch_->lost;
    return {};
  }

  Result<std::int64_t> run(std::string_view sql, std::span<const SqlValue> params,
                           Rows* out) override {
    RP_TRY(check_open());
    // The shared transaction belongs to the batch: a member may not end it.
    std::string keyword = first_keyword(sql);
    if (keyword == "BEGIN" || keyword == "COMMIT" || keyword == "END" ||
        (keyword == "ROLLBACK" && !names_to(sql))) {
      return make_error(Errc::kInternal, "transaction control is the store's: " + std::string(sql));
    }
    auto r = conn_->run(sql, params, out);
    note_lost();
    return r;
  }

  Status each_row(std::string_view sql, std::span<const SqlValue> params,
                  const RowVisitor& visit) override {
    Status s = ConnTx::each_row(sql, params, visit);
    note_lost();
    return s;
  }

  // SQLite rolls the whole transaction back on some errors (I/O error, disk full, out of
  // memory): then every released member's work is gone too, and the batch must fail.
  void note_lost() {
    if (!batch_->lost && !conn_->in_transaction()) {
      batch_->lost = make_error(Errc::kStorage,
                                std::string("the write transaction was rolled back by SQLite: ") +
                                    sqlite3_errmsg(conn_->db()));
    }
  }

  // Makes this member part of the batch's COMMIT. A deferred foreign key left unresolved would
  // fail the COMMIT of every member, so it fails this one alone, here.
  int deferred_foreign_keys() const {
    int pending = 0;
    int highwater = 0;
    sqlite3_db_status(conn_->db(), SQLITE_DBSTATUS_DEFERRED_FKS, &pending, &highwater, 0);
    return pending;
  }

  Status release_member() {
    if (deferred_foreign_keys() > 0)
      return make_error(Errc::kValidation, "FOREIGN KEY constraint failed");
    auto r = conn_->run("RELEASE SAVEPOINT " + std::string(kMemberSavepoint));
    note_lost();
    if (!r.ok()) return std::move(r).error();
    if (batch_->lost) return *batch_->lost;
    ++batch_->members;
    std::move(pending_fts_.begin(), pending_fts_.end(), std::back_inserter(batch_->fts));
    pending_fts_.clear();
    return {};
  }

  void rollback_member() {
    if (batch_->lost) return;
    bool ok = conn_->run("ROLLBACK TO SAVEPOINT " + std::string(kMemberSavepoint)).ok() &&
              conn_->run("RELEASE SAVEPOINT " + std::string(kMemberSavepoint)).ok();
    note_lost();
    if (!ok && !batch_->lost) {
      batch_->lost = make_error(Errc::kStorage, std::string("cannot roll back a savepoint: ") +
                                                    sqlite3_errmsg(conn_->db()));
    }
  }

  SqliteStore* store_;
  std::shared_ptr<SqliteStore::Batch> batch_;
  std::vector<FtsOp> pending_fts_;  // this member's full-text writes, until it is released
  bool combined_ = false;
};

namespace {

Status pragma(Connection& c, std::string_view sql) {
  auto r = c.run(sql);
  if (!r.ok()) return std::move(r).error();
  return {};
}

// Copies the whole of `src` into `dst` in one step, so the source is read as one snapshot.
Status copy_database(sqlite3* dst, sqlite3* src, std::string_view context) {
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  if (b == nullptr) return sqlite_error(dst, sqlite3_extended_errcode(dst), context);
  int step_rc = sqlite3_backup_step(b, -1);
  int finish_rc = sqlite3_backup_finish(b);
  if (step_rc != SQLITE_DONE) {
    return sqlite_error(nullptr, step_rc, std::string(context) + " (" + sqlite3_errmsg(dst) + ")");
  }
  if (finish_rc != SQLITE_OK) return sqlite_error(dst, finish_rc, context);
  return {};
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix, ec);
  }
}

}  // namespace

std::string SqliteDialect::column_type(ColumnType t) const {
  switch (t) {
    case ColumnType::kInteger:
      return "INTEGER";
    case ColumnType::kReal:
      return "REAL";
    case ColumnType::kText:
      return "TEXT";
  }
  return "TEXT";
}

std::string SqliteDialect::fts_condition(std::string_view entity, std::string_view query,
                                         std::vector<SqlValue>& params) const {
  return detail::terms_condition(entity, query, "instr", params);
}

std::string SqliteDialect::fts_key_counts(std::string_view entity, std::string_view query, int cap,
                                          std::vector<SqlValue>& params) const {
  return detail::terms_key_counts(entity, query, cap, params);
}

std::string SqliteDialect::fts_key_counts_falling(std::string_view entity, std::string_view query,
                                                  int cap, std::vector<SqlValue>& params) const {
  return detail::terms_key_counts_falling(entity, query, cap, params);
}

std::string SqliteDialect::fts_pair_counts(std::string_view entity, std::string_view query,
                                           int first, int second, int cap,
                                           std::vector<SqlValue>& params) const {
  return detail::terms_pair_counts(entity, query, first, second, cap, params);
}

std::string SqliteDialect::fts_scoped(std::string_view entity, std::string_view query,
                                      std::string_view ids_sql,
                                      std::span<const SqlValue> ids_params,
                                      std::vector<SqlValue>& params) const {
  return detail::terms_scoped(entity, query, ids_sql, ids_params, "instr", params);
}

std::string SqliteDialect::fts_page(std::string_view entity, std::string_view query, int driver,
                                    const FtsPosition* after, int page,
                                    std::vector<SqlValue>& params) const {
  return detail::terms_page(entity, query, driver, after, page, "instr", true, true, params);
}

std::string SqliteDialect::fts_window_end(std::string_view entity, std::string_view query,
                                          int driver, const FtsPosition* after, int page,
                                          std::vector<SqlValue>& params) const {
  return detail::terms_window_end(entity, query, driver, after, page, true, params);
}

// The term table (see text_search.h), clustered on (term, id DESC) so that a prefix is one
// range whose first entries are the best matches (exact word first, then newest),
// and the records' term lists. The FTS5 trigram table of earlier versions is dropped (RecordService
// rebuilds the terms).
std::vector<std::string> SqliteDialect::fts_create(std::string_view entity) const {
  auto table = fts_table(entity);
  if (!table.ok()) throw std::invalid_argument(table.error().message);
  return {
      "DROP TABLE IF EXISTS " + detail::legacy_fts_table(entity),
      "CREATE TABLE IF NOT EXISTS " + *table +
          " (term TEXT NOT NULL, id INTEGER NOT NULL, account_id INTEGER, sig INTEGER NOT NULL, "
          "PRIMARY KEY (term, id DESC)) WITHOUT ROWID",
      "CREATE TABLE IF NOT EXISTS " + detail::term_lists_table(entity) +
          " (id INTEGER PRIMARY KEY, account_id INTEGER, terms TEXT NOT NULL)"};
}

SqliteStore::SqliteStore(std::string path, const StoreOptions& options)
    : path_(std::move(path)), options_(options) {}

SqliteStore::~SqliteStore() {
  term_codes_stop_ = true;
  if (term_codes_) term_codes_->stop();
  if (term_codes_thread_.joinable()) term_codes_thread_.join();
  drain_grouped();
  {
    std::lock_guard lock(group_mu_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  combiner_cv_.notify_all();
  sync_cv_.notify_all();
  holder_cv_.notify_all();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  if (combiner_thread_.joinable()) combiner_thread_.join();
  if (sync_thread_.joinable()) sync_thread_.join();  // after it delivered every ended batch
  {
    std::lock_guard lock(group_mu_);
    completion_stopping_ = true;
  }
  completion_cv_.notify_all();
  if (completion_thread_.joinable()) completion_thread_.join();  // after it called every `done`
  if (writer_) sqlite3_wal_hook(writer_->db(), nullptr, nullptr);
}

class SqliteStore::HoldSnapshots {
 public:
  explicit HoldSnapshots(SqliteStore& store) : store_(store) {
    store_.checkpoints_waiting_.fetch_add(1, std::memory_order_acq_rel);
    store_.end_idle_snapshots(/*all=*/true);
  }
  ~HoldSnapshots() { store_.checkpoints_waiting_.fetch_sub(1, std::memory_order_acq_rel); }
  HoldSnapshots(const HoldSnapshots&) = delete;
  HoldSnapshots& operator=(const HoldSnapshots&) = delete;

 private:
  SqliteStore& store_;
};

int SqliteStore::on_wal_commit(void* self, sqlite3* db, const char*, int frames) {
  auto* store = static_cast<SqliteStore*>(self);
  const bool bulk = store->bulk_writers_.load(std::memory_order_acquire) > 0;
  const int bound =
      bulk ? std::max(store->options_.wal_max_frames, store->options_.bulk_wal_max_frames)
           : store->options_.wal_max_frames;
  if (frames >= bound) {
    int log = 0, done = 0;
    // SQLite answers SQLITE_BUSY at once, without waiting, while another checkpoint runs: wait
    // for the background one here. Not SQLITE_OK otherwise (readers held on past the busy
    // timeout, another process's checkpoint): it ran as far as it could, as a PASSIVE one
    // would; the next COMMIT tries again.
    std::lock_guard running(store->checkpoint_run_mu_);
    HoldSnapshots held(*store);  // waits for the reads in progress only
    // Inside the COMMIT (end_batch's DeferWalSync): the checkpoint syncs the WAL before it
    // copies frames into the database file, and that sync is done here, not deferred.
    DeferWalSync::Suspend syncs_now;
    int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, &log, &done);
    std::lock_guard lock(store->group_mu_);
    if (rc == SQLITE_OK) ++store->stats_.writer_checkpoints;
    return SQLITE_OK;
  }
  // Only the writer holding the connection runs this hook: checkpoint_woken_at_ needs no lock.
  if (frames < store->checkpoint_woken_at_) store->checkpoint_woken_at_ = 0;  // the log restarted
  // A bulk load's frames are copied by the writer's next checkpoint at the bulk bound or at the
  // load's end: a background copy now would copy pages the next batch writes again.
  if (bulk) return SQLITE_OK;
  if (frames - store->checkpoint_woken_at_ >= kCheckpointFrames) {
    store->checkpoint_woken_at_ = frames;
    {
      std::lock_guard lock(store->group_mu_);
      store->checkpoint_wanted_ = true;
      ++store->stats_.checkpoint_requests;
    }
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

namespace {
class SqliteBulkWrites final : public Store::BulkWrites {
 public:
  explicit SqliteBulkWrites(std::function<void()> end) : end_(std::move(end)) {}
  ~SqliteBulkWrites() override { end_(); }

 private:
  std::function<void()> end_;
};
}  // namespace

std::unique_ptr<Store::BulkWrites> SqliteStore::bulk_writes() {
  bulk_writers_.fetch_add(1, std::memory_order_acq_rel);
  return std::make_unique<SqliteBulkWrites>([this] { end_bulk_writes(); });
}

void SqliteStore::end_bulk_writes() {
  if (bulk_writers_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // another one lives
  // The WAL may hold up to bulk_wal_max_frames: copy it now, on the bulk load's thread, rather
  // than in the COMMIT of whichever write comes next, and give its file's space back (the next
  // COMMITs regrow it only to wal_max_frames). First PASSIVE, which copies while writers go on;
  // then TRUNCATE, which holds off the writer connection (a write waits up to the busy timeout)
  // only to copy what was committed meanwhile and to truncate the file. BUSY (a reader or a
  // writer held on past the busy timeout) leaves the rest to the next checkpoint.
  int log = 0, done = 0;
  std::lock_guard running(checkpoint_run_mu_);
  HoldSnapshots held(*this);
  sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
  const int rc = sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                           &log, &done);
  std::lock_guard lock(group_mu_);
  if (rc == SQLITE_OK) ++stats_.bulk_end_checkpoints;
}

void SqliteStore::checkpoint_loop() {
  std::unique_lock lock(group_mu_);
  // While readers keep snapshots (reaper_armed_), the thread also wakes every kSnapshotIdleMs to
  // end those of readers idle since its last round.
  constexpr auto kNever = std::chrono::steady_clock::time_point::max();
  auto reap_at = kNever;
  while (true) {
    if (reap_at == kNever && reaper_armed_.load(std::memory_order_acquire))
      reap_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSnapshotIdleMs);
    if (reap_at != kNever) {
      checkpoint_cv_.wait_until(lock, reap_at, [&] { return checkpoint_wanted_ || stopping_; });
    } else {
      checkpoint_cv_.wait(lock, [&] {
        return checkpoint_wanted_ || stopping_ || reaper_armed_.load(std::memory_order_acquire);
      });
    }
    if (stopping_) return;
    if (reap_at != kNever && std::chrono::steady_clock::now() >= reap_at) {
      lock.unlock();
      end_idle_snapshots(/*all=*/false);
      lock.lock();
      reap_at = kNever;
    }
    if (!checkpoint_wanted_) continue;
    checkpoint_wanted_ = false;
    lock.unlock();
    int log = 0, done = 0;
    // SQLITE_BUSY (another checkpoint, a writer of another process) is harmless: the next
    // COMMIT past the threshold asks again.
    int rc;
    {
      std::lock_guard running(checkpoint_run_mu_);
      // A PASSIVE checkpoint waits for nobody, but copies no frame past the oldest snapshot in
      // use: snapshots kept by idle readers end first.
      end_idle_snapshots(/*all=*/true);
      rc = sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                     &done);
    }
    lock.lock();
    if (rc == SQLITE_OK) ++stats_.checkpoints;
  }
}

namespace {
// This process's open file descriptors of `file` (Linux: /proc/self/fd); empty elsewhere.
std::vector<int> open_descriptors(const std::filesystem::path& file) {
  std::vector<int> fds;
  std::error_code ec;
  const auto target = std::filesystem::canonical(file, ec);
  if (ec) return fds;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    const auto link = std::filesystem::read_symlink(entry.path(), link_ec);
    if (link_ec || link != target) continue;
    int fd = -1;
    const std::string name = entry.path().filename().string();
    auto [ptr, err] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (err == std::errc() && ptr == name.data() + name.size()) fds.push_back(fd);
  }
  std::sort(fds.begin(), fds.end());
  return fds;
}
}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                       const StoreOptions& options) {
  own_heap();  // before SQLite's first use (wal_buffer_vfs() below uses it)
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, options));
  auto context = [&](Error e) {
    e.message = "cannot open database '" + path + "': " + e.message;
    e.code = e.code == Errc::kBusy ? Errc::kBusy : Errc::kStorage;
    return e;
  };

  // The writer's WAL writes go through wal_buffer_vfs(): a COMMIT's frames in one write.
  RP_ASSIGN(
      store->writer_,
      Connection::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE,
                       options.busy_timeout_ms, wal_buffer_vfs()));
  Rows mode;
  if (auto r = store->writer_->run("PRAGMA journal_mode=WAL", {}, &mode); !r.ok()) {
    return context(std::move(r).error());
  }
  if (mode.rows.empty() || mode.rows[0].empty() ||
      std::get_if<std::string>(&mode.rows[0][0]) == nullptr ||
      std::get<std::string>(mode.rows[0][0]) != "wal") {
    return make_error(Errc::kStorage, "cannot open database '" + path + "': WAL mode refused");
  }
  // The writer's page cache holds the random-key indexes (full text, phones, audit) of bulk
  // writes: SQLite's 2 MB default made imports and generators page-thrash (1.6x slower).
  const std::string cache =
      "PRAGMA cache_size=-" + std::to_string(1024LL * std::max(1, options.writer_cache_mib));
  for (const char* sql : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", cache.c_str(),
                          "PRAGMA temp_store=MEMORY", "PRAGMA mmap_size=268435456"}) {
    if (auto s = pragma(*store->writer_, sql); !s.ok()) return context(std::move(s).error());
  }

  RP_ASSIGN(store->checkpointer_,
            Connection::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE,
                             options.busy_timeout_ms));
  if (auto s = pragma(*store->checkpointer_, "PRAGMA synchronous=FULL"); !s.ok())
    return context(std::move(s).error());
  // Replaces SQLite's automatic checkpoint on the writer (which is itself a WAL hook).
  sqlite3_wal_hook(store->writer_->db(), &SqliteStore::on_wal_commit, store.get());
  store->checkpoint_thread_ = std::thread([s = store.get()] { s->checkpoint_loop(); });
  store->combiner_thread_ = std::thread([s = store.get()] { s->combiner_loop(); });
  store->completion_thread_ = std::thread([s = store.get()] { s->completion_loop(); });
  store->sync_thread_ = std::thread([s = store.get()] { s->sync_loop(); });

  // The readers' reads of the database file are random pages (a record by id, an index probe):
  // their descriptors are told so, and the kernel does not read ahead 128 KB around each page
  // that is not cached. At 1M records (a database larger than the page cache) readahead took
  // 13% of a customer 360's CPU and filled the page cache with pages nobody asked for. The
  // writer and checkpointer keep readahead (bulk loads, index builds, checkpoints).
  //
  // The readers map the file only when all of it fits in reader_map_mib (see StoreOptions): a
  // mapping of part of a large file is mostly pages nobody reads, each touch of which counts in
  // the RSS once per reader.
  std::error_code size_ec;
  const auto file_bytes = static_cast<std::int64_t>(std::filesystem::file_size(path, size_ec));
  const std::int64_t map_limit = std::int64_t{std::max(0, options.reader_map_mib)} << 20;
  store->reader_map_bytes_ = !size_ec && file_bytes <= map_limit ? map_limit : 0;
  const std::string reader_map = "PRAGMA mmap_size=" + std::to_string(store->reader_map_bytes_);
  const std::string reader_cache = "PRAGMA cache_size=-" + std::to_string(kReaderCacheMiB * 1024);
  const std::vector<int> before = open_descriptors(path);
  int readers = std::max(1, options.readers);
  for (int i = 0; i < readers; ++i) {
    RP_ASSIGN(auto reader, Connection::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE,
                                            options.busy_timeout_ms));
    for (const char* sql :
         {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA query_only=1",
          reader_cache.c_str(), "PRAGMA temp_store=MEMORY", reader_map.c_str()}) {
      if (auto s = pragma(*reader, sql); !s.ok()) return context(std::move(s).error());
    }
    store->free_readers_.push_back(reader.get());
    store->readers_.push_back(std::move(reader));
  }
  for (int fd : open_descriptors(path)) {
    if (std::binary_search(before.begin(), before.end(), fd)) continue;
    if (::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) == 0) ++store->random_read_files_;
  }
  // The term codes (term_codes.h): noted by the writer's term writes from now on, read by the
  // readers' searches, and the terms already written added by a thread of their own (at 1M
  // accounts and 2M contacts about 10 s of CPU for their number and Chinese terms, and ~250 MB
  // held); until it ends a search checks the other key as before.
  store->term_codes_ = std::make_unique<TermCodes>();
  // The row of the last term write (term_codes.h: other processes' writes), and this store's
  // writer id in it.
  {
    Rows exists;
    if (auto r =
            store->writer_->run("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '" +
                                    std::string(detail::kTermWritesTable) + "'",
                                {}, &exists);
        !r.ok())
      return context(std::move(r).error());
    if (exists.rows.empty()) {
      for (std::string sql :
           {std::string("BEGIN IMMEDIATE"),
            "CREATE TABLE IF NOT EXISTS " + std::string(detail::kTermWritesTable) +
                " (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL, writer INTEGER NOT "
                "NULL)",
            "INSERT OR IGNORE INTO " + std::string(detail::kTermWritesTable) +
                " (id, n, writer) VALUES (1, 0, 0)",
            std::string("COMMIT")}) {
        if (auto r = store->writer_->run(sql); !r.ok()) {
          store->writer_->rollback_quietly();
          return context(std::move(r).error());
        }
      }
    }
    std::random_device random;
    std::int64_t own = 0;
    while (own == 0)
      own = static_cast<std::int64_t>((std::uint64_t{random()} << 32 | random()) >> 1);
    store->term_codes_->set_own_writer(own);
  }
  store->writer_->use_codes(store->term_codes_.get());
  for (auto& reader : store->readers_) reader->use_codes(store->term_codes_.get());
  store->term_codes_thread_ = std::thread([s = store.get()] { s->term_codes_loop(); });
  return store;
}

void SqliteStore::wait_term_codes() { term_codes_->wait_current(); }

std::shared_ptr<void> SqliteStore::hold_snapshots_for_tests() {
  return std::make_shared<HoldSnapshots>(*this);
}

Status SqliteStore::note_term_write() {
  const std::string table(detail::kTermWritesTable);
  Rows row;
  RP_TRY(writer_->run("SELECT n, writer FROM " + table + " WHERE id = 1", {}, &row));
  std::int64_t n = 0, writer = 0;
  if (!row.rows.empty()) {
    if (const auto* v = std::get_if<std::int64_t>(&row.rows[0][0])) n = *v;
    if (const auto* v = std::get_if<std::int64_t>(&row.rows[0][1])) writer = *v;
  }
  // Another writer's term write since this store's last one, which the codes have not read.
  if (writer != term_codes_->own_writer() && n > term_codes_->covered()) term_codes_->want(n);
  const std::vector<SqlValue> params{std::int64_t{n + 1}, term_codes_->own_writer()};
  RP_TRY(writer_->run("INSERT INTO " + table +
                          " (id, n, writer) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET n = "
                          "excluded.n, writer = excluded.writer",
                      params));
  return {};
}

// The codes of every term in the file, at open and again whenever a term write of another
// writer is seen that the codes do not cover (term_codes.h).
// A build again waits at least as long as the last one took, so that another process's
// steady writes (an import beside the server) take at most half a core for the builds; the
// searches of snapshots they do not cover take their earlier path meanwhile.
// Between builds, the index of the codes by code is made again when asked for (TermCodes::index:
// many records noted since the last).
void SqliteStore::term_codes_loop() {
  for (bool first = true;; first = false) {
    const auto start = std::chrono::steady_clock::now();
    if (!build_term_codes()) return;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    for (;;) {
      if (!term_codes_->wait_wanted()) return;
      if (term_codes_->build_wanted()) break;
      term_codes_->index();
    }
    if (!first && !term_codes_->pause(took.count())) return;
  }
}

bool SqliteStore::build_term_codes() {
  auto conn = Connection::open(path_, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE,
                               options_.busy_timeout_ms);
  if (!conn.ok()) return false;
  // The row of the last term write before the terms are read: every term write up to it is
  // among what they give.
  Rows last;
  if (!(*conn)
           ->run("SELECT n FROM " + std::string(detail::kTermWritesTable) + " WHERE id = 1", {},
                 &last)
           .ok())
    return false;
  const std::int64_t covered = last.rows.empty() || last.rows[0].empty() ? 0
                               : std::get_if<std::int64_t>(&last.rows[0][0]) != nullptr
                                   ? std::get<std::int64_t>(last.rows[0][0])
                                   : 0;
  Rows tables;
  if (!(*conn)->run("SELECT name FROM sqlite_master WHERE type = 'table'", {}, &tables).ok())
    return false;
  for (const auto& row : tables.rows) {
    const auto* name = std::get_if<std::string>(&row[0]);
    if (name == nullptr) continue;
    // The term tables and a staging table an interrupted load left (its rows go into the term
    // table without another put).
    std::string_view entity(*name);
    if (entity.ends_with("_terms"))
      entity.remove_suffix(6);
    else if (entity.ends_with("_terms_in"))
      entity.remove_suffix(9);
    else
      continue;
    if (!detail::valid_identifier(entity)) continue;
    TermCodes::Entity* e = term_codes_->entity(entity);
    // Read in pieces of options_.term_codes_chunk_rows rows, each its own statement and so its
    // own read transaction: a read of millions of rows held one snapshot for seconds, and the
    // writer's RESTART checkpoint (on_wal_commit) waited the whole busy timeout for it, holding
    // the writer — creates stalled 5 s while a server started. Codes are a superset whatever the
    // pieces' snapshots: this process's term writes add their codes themselves, and another
    // process's after `covered` (read above, before any piece) make the codes be built again.
    // A piece also ends early when a checkpoint waits (HoldSnapshots): the writer's RESTART
    // checkpoint waits for this read transaction to end, and every write waits for the writer
    // meanwhile. On a cold start at 1M, a piece whose pages come from the disk took seconds:
    // creates in a server's first seconds stalled 2–4 s (AUDIT 4.20).
    const std::int64_t chunk = std::max(1, options_.term_codes_chunk_rows);
    std::string last_term;
    std::int64_t last_id = 0;
    std::int64_t rows = 0;
    bool cut = false;  // the piece ended before `chunk` rows: a checkpoint waits
    const RowVisitor visit = [&](std::span<const SqlView> r) {
      if (term_codes_stop_.load(std::memory_order_relaxed)) return false;
      const auto* id = std::get_if<std::int64_t>(&r[0]);
      const auto* term = std::get_if<std::string_view>(&r[1]);
      if (id == nullptr || term == nullptr) return true;
      const int c =
          term->starts_with(detail::kReversedMarker) ? TermCodes::code(term->substr(1), true)
          : !term->empty() && (*term)[0] >= '0' && (*term)[0] <= '9' ? TermCodes::code(*term, false)
                                                                     : TermCodes::char_code(*term);
      TermCodes::add(*e, *id, c);
      cut = ++rows < chunk && checkpoints_waiting_.load(std::memory_order_acquire) > 0;
      if (rows == chunk || cut) {  // the piece's last row: where the next one starts
        last_term.assign(*term);
        last_id = *id;
      }
      return !cut;
    };
    // A number's start (terms of digits), its end (the reversed terms), and the terms
    // starting with a CJK unified ideograph (U+4E00 to U+9FFF), in the primary key's order.
    const std::string select = "SELECT id, term FROM \"" + *name + "\" WHERE ";
    const std::string tail = " ORDER BY term, id DESC LIMIT " + std::to_string(chunk);
    for (const auto& [lo, hi] : {std::pair<std::string_view, std::string_view>{"0", ":"},
                                 {"~", "\x7f"},
                                 {"\xe4\xb8\x80", "\xea\x80\x80"}}) {
      const std::string first = select + "term >= ?1 AND term < ?2" + tail;
      const std::string next =
          select + "term >= ?1 AND term < ?2 AND (term > ?1 OR id < ?3)" + tail;
      std::vector<SqlValue> params{std::string(lo), std::string(hi)};
      for (bool more = true; more;) {
        // After a cut piece, the next begins once the checkpoint is over (a new read of its
        // own would otherwise be cut at its first row), or after the busy timeout at most.
        for (const auto since = std::chrono::steady_clock::now();
             cut && checkpoints_waiting_.load(std::memory_order_acquire) > 0 &&
             !term_codes_stop_.load(std::memory_order_relaxed) &&
             std::chrono::steady_clock::now() - since <
                 std::chrono::milliseconds(options_.busy_timeout_ms);)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        rows = 0;
        cut = false;
        if (!(*conn)->run(params.size() == 2 ? first : next, params, nullptr, &visit).ok())
          return false;
        if (options_.after_term_codes_chunk) options_.after_term_codes_chunk(rows);
        if (term_codes_stop_.load(std::memory_order_relaxed)) return false;
        more = rows == chunk || cut;
        if (more) params = {last_term, std::string(hi), last_id};
      }
    }
  }
  conn->reset();         // its descriptor closed before anyone waiting learns the build is over
  term_codes_->index();  // before the codes answer: their first checks read the index
  term_codes_->covered_to(covered);
  return true;
}

namespace {
// Before write() or write_grouped() on this thread: refused on a thread that must not wait
// (ReadRouting::no_wait, the I/O thread's quick reads); otherwise the thread's shared read
// snapshot is let go, so that reads after the write see it.
Status prepare_thread_for_write() {
  if (ReadRouting* routing = current_read_routing()) {
    if (routing->no_wait) {
      routing->would_wait = true;
      return make_error(Errc::kBusy, "a write may wait for the writer: not on this thread");
    }
    routing->shared_read.reset();
  }
  return {};
}
}  // namespace

Result<std::unique_ptr<Tx>> SqliteStore::write() {
  // Reads after this write see it: they no longer share the snapshot taken before. (The shared
  // transaction ends now unless a read handle still holds it.)
  RP_TRY(prepare_thread_for_write());
  std::shared_ptr<Batch> batch;
  {
    std::unique_lock lock(group_mu_);
    std::optional<ScopedBlocking> waiting;  // for the writer, held by another member
    if (writer_busy_) waiting.emplace();
    ++writers_waiting_;
    if (holder_waiting_) holder_cv_.notify_one();
    bool free = writer_free_cv_.wait_for(lock, std::chrono::milliseconds(options_.busy_timeout_ms),
                                         [&] { return !writer_busy_; });
    --writers_waiting_;
    if (!free) return make_error(Errc::kBusy, "timed out waiting for the write transaction");
    writer_busy_ = true;
  }
  RP_ASSIGN(batch, join_or_begin_batch());
  if (auto r = writer_->run(kSavepointSql); !r.ok()) {
    if (!batch->lost && !writer_->in_transaction()) batch->lost = r.error();
    leave_writer(batch, true);
    return std::move(r).error();
  }
  return std::unique_ptr<Tx>(std::make_unique<WriteTx>(this, writer_.get(), batch));
}

Result<std::shared_ptr<SqliteStore::Batch>> SqliteStore::join_or_begin_batch() {
  {
    std::lock_guard lock(group_mu_);
    if (batch_ != nullptr) return batch_;
  }
  // BEGIN IMMEDIATE takes the database write lock now, so another process's writer makes us
  // wait (busy timeout) here rather than fail half-way through the transaction.
  if (auto r = writer_->run("BEGIN IMMEDIATE"); !r.ok()) {
    {
      std::lock_guard lock(group_mu_);
      writer_busy_ = false;
    }
    writer_free_cv_.notify_one();
    fail_queued(r.error());  // no thread waits for the queued grouped writes: they fail too
    return std::move(r).error();
  }
  auto batch = std::make_shared<Batch>();
  std::lock_guard lock(group_mu_);
  batch_ = batch;
  return batch;
}

void SqliteStore::run_jobs(std::vector<std::unique_ptr<Job>> pending,
                           const std::shared_ptr<Batch>& batch) {
  // An item's result is known: its `done` is called once the batch has ended (end_batch).
  const auto finish = [&](std::unique_ptr<Job> job, Status own) {
    job->own = std::move(own);
    batch->ran.push_back(std::move(job));
  };
  const std::string release = "RELEASE SAVEPOINT " + std::string(kMemberSavepoint);
  const std::string rollback = "ROLLBACK TO SAVEPOINT " + std::string(kMemberSavepoint);
  while (!pending.empty()) {
    Status begun;
    if (batch->lost) {
      begun = *batch->lost;
    } else if (auto r = writer_->run(kSavepointSql); !r.ok()) {
      if (!batch->lost && !writer_->in_transaction()) batch->lost = r.error();
      begun = std::move(r).error();
    }
    if (!begun.ok()) {
      for (auto& job : pending) finish(std::move(job), begun);
      return;
    }
    std::vector<FtsOp> fts;  // the run's full-text writes, in item order
    constexpr std::size_t kNone = static_cast<std::size_t>(-1);
    std::size_t failed = kNone;  // the item whose failure rolls the run back
    Status failure;
    for (std::size_t i = 0; i < pending.size();) {
      const sqlite3_int64 changes = sqlite3_total_changes64(writer_->db());
      WriteTx tx(this, writer_.get(), batch);
      tx.set_in_run();
      Status own;
      try {
        own = pending[i]->work(tx);
      } catch (const std::exception& ex) {
        own = make_error(Errc::kInternal, std::string("grouped write failed: ") + ex.what());
      }
      Status ended = tx.end_in_run(own.ok(), fts);
      if (own.ok()) own = std::move(ended);
      if (own.ok()) {
        ++i;
        continue;
      }
      // An item refused before it changed a row (not found, a stale version, an Idempotency-Key
      // conflict, a single INSERT refused by a constraint) fails alone, and the run goes on.
      // (Its full-text writes were not taken; grouped items run no schema statements.)
      if (sqlite3_total_changes64(writer_->db()) == changes && !batch->lost) {
        finish(std::move(pending[i]), std::move(own));
        pending.erase(pending.begin() + static_cast<long>(i));
        continue;
      }
      failed = i;
      failure = std::move(own);
      break;
    }
    if (failed == kNone) {
      auto r = writer_->run(release);
      if (!r.ok() && !batch->lost && !writer_->in_transaction()) batch->lost = r.error();
      if (r.ok() && batch->lost) r = *batch->lost;
      if (!r.ok()) {
        if (!batch->lost) writer_->rollback_quietly();  // not released: nothing of the run stays
        if (!batch->lost) batch->lost = r.error();
        for (auto& job : pending) finish(std::move(job), r.error());
        return;
      }
      batch->members += static_cast<int>(pending.size());
      std::move(fts.begin(), fts.end(), std::back_inserter(batch->fts));
      for (auto& job : pending) finish(std::move(job), Status());
      return;
    }
    // The failing item fails alone: the run is rolled back to its savepoint and the items
    // before it run again (the ones after it had not run).
    if (!batch->lost) {
      bool ok = writer_->run(rollback).ok() && writer_->run(release).ok();
      if (!ok && !batch->lost) {
        batch->lost = make_error(Errc::kStorage, std::string("cannot roll back a savepoint: ") +
                                                     sqlite3_errmsg(writer_->db()));
      }
    }
    finish(std::move(pending[failed]), std::move(failure));
    pending.erase(pending.begin() + static_cast<long>(failed));
    std::lock_guard lock(group_mu_);
    stats_.rerun += static_cast<std::int64_t>(failed);
  }
}

Status SqliteStore::write_grouped(const std::function<Status(Tx&)>& work) {
  RP_TRY(prepare_thread_for_write());
  // The item's result, set by whichever thread ends its batch (this one, or another).
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> result;
  };
  auto wait = std::make_shared<Wait>();
  enqueue(
      std::function<Status(Tx&)>(std::cref(work)),
      [wait](Status s) {
        {
          std::lock_guard lock(wait->mu);
          wait->result = std::move(s);
        }
        wait->cv.notify_one();
      },
      true);
  std::unique_lock lock(wait->mu);
  if (!wait->result) {
    ScopedBlocking waiting;  // for the writer, or for the batch's COMMIT
    wait->cv.wait(lock, [&] { return wait->result.has_value(); });
  }
  return std::move(*wait->result);
}

void SqliteStore::write_grouped_async(std::function<Status(Tx&)> work,
                                      std::function<void(Status)> done) {
  enqueue(std::move(work), std::move(done), false);
}

void SqliteStore::completion_loop() {
  std::unique_lock lock(group_mu_);
  for (;;) {
    completion_cv_.wait(lock, [&] { return !completions_.empty() || completion_stopping_; });
    if (completions_.empty()) return;  // stopping, and every `done` has been called
    std::vector<Completion> ready;
    ready.swap(completions_);
    lock.unlock();
    for (auto& c : ready)
      for (auto& job : c.jobs) job->done(job->own.ok() ? c.result : std::move(job->own));
    ready.clear();  // the items' state is freed here too, not on the writer
    lock.lock();
  }
}

void SqliteStore::drain_grouped() {
  // Items queued or running now (a create whose request the server accepted before it stopped)
  // are run and committed, and their `done` called, before the store closes: none is dropped.
  std::unique_lock lock(group_mu_);
  for (;;) {
    // writer_free_cv_ is notified once per hand-over; a short wait in a loop cannot miss one.
    while (writer_busy_) writer_free_cv_.wait_for(lock, std::chrono::milliseconds(5));
    if (jobs_.empty()) return;
    writer_busy_ = true;
    lock.unlock();
    auto batch = join_or_begin_batch();  // on failure it failed the queued items
    if (batch.ok()) leave_writer(*batch, false);
    lock.lock();
  }
}

void SqliteStore::enqueue(std::function<Status(Tx&)> work, std::function<void(Status)> done,
                          bool caller_waits) {
  if (Status s = prepare_thread_for_write(); !s.ok()) {
    done(std::move(s));
    return;
  }
  auto job = std::make_unique<Job>();
  job->work = std::move(work);
  job->done = std::move(done);
  job->on_completion_thread = !caller_waits;
  {
    std::lock_guard lock(group_mu_);
    jobs_.push_back(std::move(job));
    if (writer_busy_) {
      // the holder runs it, in its batch or the next (end_batch)
      if (holder_waiting_) holder_cv_.notify_one();
      return;
    }
    writer_busy_ = true;
  }
  // The connection is free: run every queued item (this one among them) and end the batch
  // (or hand it on), as leave_writer does for a member of write(), and the next batches while
  // items are queued and nobody else has taken the connection.
  auto batch = join_or_begin_batch();  // on failure it failed the queued items, this one too
  if (batch.ok()) leave_writer(*batch, caller_waits);
}

void SqliteStore::combiner_loop() {
  std::unique_lock lock(group_mu_);
  for (;;) {
    combiner_cv_.wait(lock, [&] { return combiner_wanted_ || stopping_; });
    if (stopping_) return;
    combiner_wanted_ = false;
    if (writer_busy_ || jobs_.empty()) continue;  // another thread has them
    writer_busy_ = true;
    lock.unlock();
    auto batch = join_or_begin_batch();  // on failure it failed the queued items
    if (batch.ok()) leave_writer(*batch, false);
    lock.lock();
  }
}

void SqliteStore::fail_queued(const Error& error) {
  // BEGIN IMMEDIATE waited the busy timeout for another process's writer (or failed): the
  // queued items fail with its error rather than wait again, each in turn.
  std::vector<std::unique_ptr<Job>> failed;
  {
    std::lock_guard lock(group_mu_);
    failed.swap(jobs_);
  }
  for (auto& j : failed) j->done(error);
}

namespace {
std::int64_t elapsed_ns(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              since)
      .count();
}
// This thread's CPU time (user and system), in ns.
std::int64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}
}  // namespace

void SqliteStore::leave_writer(const std::shared_ptr<Batch>& first, bool caller_waits) {
  std::shared_ptr<Batch> batch = first;
  std::int64_t ran_ns = 0;  // the last run of items, counted under the lock below
  std::int64_t ran_cpu_ns = 0;
  for (;;) {
    for (;;) {
      std::unique_lock lock(group_mu_);
      stats_.busy_ns += std::exchange(ran_ns, 0);
      stats_.busy_cpu_ns += std::exchange(ran_cpu_ns, 0);
      const int room = std::max(1, options_.group_commit_max_members) - batch->members;
      const bool old = options_.group_commit_max_ms > 0 &&
                       std::chrono::steady_clock::now() - batch->opened >=
                           std::chrono::milliseconds(options_.group_commit_max_ms);
      // An old batch still waits for the sync in flight (below): its members could not be
      // answered before that sync anyway, and committing it now made small batches whenever
      // syncs were slow.
      if (batch->lost || room <= 0 || (old && syncs_in_flight_ == 0)) break;
      if (!jobs_.empty()) {
        // Queued grouped writes run here, on this thread, back to back: no hand-over.
        const std::size_t take = std::min(jobs_.size(), static_cast<std::size_t>(room));
        std::vector<std::unique_ptr<Job>> run;
        run.reserve(take);
        std::move(jobs_.begin(), jobs_.begin() + static_cast<long>(take), std::back_inserter(run));
        jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<long>(take));
        stats_.combined += static_cast<std::int64_t>(take);
        lock.unlock();
        const auto start = std::chrono::steady_clock::now();
        const std::int64_t cpu_start = thread_cpu_ns();
        run_jobs(std::move(run), batch);
        ran_ns = elapsed_ns(start);
        ran_cpu_ns = thread_cpu_ns() - cpu_start;
        continue;
      }
      if (writers_waiting_ > 0) {
        writer_busy_ = false;  // the next writer joins this batch
        lock.unlock();
        writer_free_cv_.notify_one();
        return;
      }
      if (syncs_in_flight_ > 0 && batch->members > 0 && !stopping_) {
        // The previous batch's sync is still running: this batch takes the items that come
        // meanwhile and commits once that sync has returned (its own sync then runs while the
        // next batch fills). Committing at once made batches of a few members, each COMMIT
        // rewriting the pages every batch shares (table and index tails, the audit log).
        ScopedBlocking waiting;  // for the sync, not work
        const auto start = std::chrono::steady_clock::now();
        holder_waiting_ = true;
        holder_cv_.wait(lock, [&] {
          return !jobs_.empty() || writers_waiting_ > 0 || syncs_in_flight_ == 0 || stopping_;
        });
        holder_waiting_ = false;
        stats_.sync_wait_ns += elapsed_ns(start);
        continue;
      }
      break;
    }
    if (!end_batch(batch)) return;
    // Items queued while the batch committed have no thread waiting for them: this one begins
    // the next batch, unless another thread has taken the connection meanwhile — or, when its
    // own caller waits (an update, a write() member), the combiner thread does, so that a
    // steady stream of creates does not keep that caller from its answer.
    {
      std::lock_guard lock(group_mu_);
      if (writer_busy_ || jobs_.empty()) return;
      if (caller_waits) {
        combiner_wanted_ = true;
        combiner_cv_.notify_one();
        return;
      }
      writer_busy_ = true;
    }
    auto next = join_or_begin_batch();  // on failure it failed the queued items
    if (!next.ok()) return;
    batch = *next;
  }
}

bool SqliteStore::end_batch(const std::shared_ptr<Batch>& batch) {
  Status result;
  std::shared_ptr<WalSync> sync;  // the COMMIT's WAL sync, left to the sync thread
  std::int64_t commit_ns = 0;
  std::int64_t commit_cpu_ns = 0;
  if (batch->lost) {
    result = *batch->lost;
    writer_->rollback_quietly();
  } else if (batch->members == 0) {
    writer_->rollback_quietly();  // every member rolled back: nothing to make durable
  } else if (auto f = apply_fts(*writer_, batch->fts, pending_terms()); !f.ok()) {
    result = std::move(f);  // the members' full-text writes are part of what they committed
    writer_->rollback_quietly();
  } else if (auto w = writer_->terms_noted ? note_term_write() : Status{}; !w.ok()) {
    result = std::move(w);
    writer_->rollback_quietly();
  } else {
    // The COMMIT writes its frames and publishes them to the other connections without waiting
    // for their fdatasync (wal_buffer.h, DeferWalSync): the sync thread runs it while this
    // thread begins the next batch, and the members learn their result only after it returned.
    std::optional<DeferWalSync> deferred;
    if (options_.defer_wal_sync) deferred.emplace();
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t cpu_start = thread_cpu_ns();
    Result<std::int64_t> r = [&] {
      ScopedBlocking syncing;  // a header or checkpoint sync may still run inside it
      return writer_->run("COMMIT");
    }();
    commit_ns = elapsed_ns(start);
    commit_cpu_ns = thread_cpu_ns() - cpu_start;
    if (deferred) sync = deferred->take();
    if (!r.ok()) {
      result = std::move(r).error();
      writer_->rollback_quietly();
      // A COMMIT that failed after its sync was deferred (not expected: the sync is its last
      // step) is synced here: its frames may be published.
      if (sync != nullptr) sync->run();
      sync.reset();
    }
  }
  writer_->terms_noted = false;
  batch->fts.clear();
  // Before any member learns its result: a read that begins after a member's write was
  // acknowledged has a newer change stamp than every answer cached before the COMMIT.
  change_stamp_.fetch_add(1, std::memory_order_acq_rel);
  std::vector<std::unique_ptr<Job>> ran = std::move(batch->ran);
  bool queued = false;
  bool to_sync_thread = false;
  {
    std::lock_guard lock(group_mu_);
    batch_.reset();
    writer_busy_ = false;
    ++stats_.batches;
    stats_.busy_ns += commit_ns;
    stats_.busy_cpu_ns += commit_cpu_ns;
    stats_.commit_ns += commit_ns;
    // Ended batches reach their members in order: behind a batch still waiting for its sync,
    // one that needs none waits too.
    to_sync_thread = sync != nullptr || syncs_in_flight_ > 0;
    if (to_sync_thread) {
      ++syncs_in_flight_;
      syncs_.push_back({batch, std::move(ran), result, std::move(sync)});
    } else {
      batch->done = true;
      batch->result = result;
      if (result.ok()) {
        stats_.committed += batch->members;
      } else {
        ++stats_.failed_batches;
      }
    }
    queued = !jobs_.empty();
  }
  writer_free_cv_.notify_one();
  if (to_sync_thread) {
    sync_cv_.notify_one();
    return queued;
  }
  batch_done_cv_.notify_all();
  deliver(std::move(ran), result);
  std::lock_guard lock(group_mu_);
  return queued || !jobs_.empty();
}

void SqliteStore::deliver(std::vector<std::unique_ptr<Job>> ran, const Status& result) {
  // Outside the lock, with the connection free for another thread to begin the next batch.
  // A waiting caller's item (write_grouped) is woken here; the others' `done` (a create's
  // duplicate scoring, its answer) runs on the completion thread, so that neither the thread
  // that ends batches nor the sync thread waits for the last answer of this one.
  std::vector<std::unique_ptr<Job>> later;
  for (auto& job : ran) {
    if (job->on_completion_thread)
      later.push_back(std::move(job));
    else
      job->done(job->own.ok() ? result : std::move(job->own));
  }
  if (later.empty()) return;
  bool wake = false;
  {
    std::lock_guard lock(group_mu_);
    wake = completions_.empty();
    completions_.push_back({std::move(later), result});
  }
  if (wake) completion_cv_.notify_one();
}

void SqliteStore::sync_loop() {
  std::unique_lock lock(group_mu_);
  for (;;) {
    sync_cv_.wait(lock, [&] { return !syncs_.empty() || stopping_; });
    if (syncs_.empty()) break;  // stopping, and every ended batch has been delivered
    std::vector<Synced> ready;
    ready.swap(syncs_);
    lock.unlock();
    // One sync covers every batch taken: each one's frames were written before it was queued.
    // The last one's handle (the same WAL file as the others').
    std::shared_ptr<WalSync> sync;
    for (auto& r : ready)
      if (r.sync != nullptr) sync = r.sync;
    Status synced;
    if (sync != nullptr) {
      if (const int rc = sync->run(); rc != SQLITE_OK) {
        // The batches are committed and other connections may have read them, but they may not
        // be on the disk: their members are not told they are durable.
        synced = make_error(Errc::kStorage,
                            std::string("cannot sync the write-ahead log: ") + sqlite3_errstr(rc));
      }
    }
    lock.lock();
    if (sync != nullptr) ++stats_.wal_syncs;
    for (auto& r : ready) {
      if (r.result.ok() && r.sync != nullptr) r.result = synced;
      r.batch->done = true;
      r.batch->result = r.result;
      if (r.result.ok()) {
        stats_.committed += r.batch->members;
      } else {
        ++stats_.failed_batches;
      }
    }
    lock.unlock();
    batch_done_cv_.notify_all();
    for (auto& r : ready) deliver(std::move(r.ran), r.result);
    const int delivered = static_cast<int>(ready.size());
    ready.clear();
    lock.lock();
    syncs_in_flight_ -= delivered;  // after delivering: a later batch is delivered after these
    if (holder_waiting_) holder_cv_.notify_one();
  }
}

Status SqliteStore::wait_for(const std::shared_ptr<Batch>& batch) {
  std::unique_lock lock(group_mu_);
  std::optional<ScopedBlocking> waiting;  // for the batch's COMMIT (its fsync)
  if (!batch->done) waiting.emplace();
  batch_done_cv_.wait(lock, [&] { return batch->done; });
  return batch->result;
}

int SqliteStore::grouped_writes_queued() const {
  std::lock_guard lock(group_mu_);
  return static_cast<int>(jobs_.size());
}

int SqliteStore::writers_waiting() const {
  std::lock_guard lock(group_mu_);
  return writers_waiting_;
}

Store::CacheMemory SqliteStore::cache_memory() const {
  // The cache_size PRAGMAs of open(): writer_cache_mib for the writer, kReaderCacheMiB per reader.
  constexpr std::int64_t kMiB = 1024 * 1024;
  const auto readers = static_cast<std::int64_t>(readers_.size());
  return {heap_bytes(),
          std::int64_t{std::max(1, options_.writer_cache_mib)} * kMiB +
              readers * kReaderCacheMiB * kMiB,
          readers * reader_map_bytes_};
}

GroupCommitStats SqliteStore::group_commit_stats() const {
  std::lock_guard lock(group_mu_);
  return stats_;
}

Store::WriteStats SqliteStore::write_stats() const {
  const WalSyncTotals syncs = wal_sync_totals();
  std::lock_guard lock(group_mu_);
  return {stats_.batches,   stats_.committed, stats_.busy_ns, stats_.busy_cpu_ns,
          stats_.commit_ns, syncs.syncs,      syncs.ns,       stats_.sync_wait_ns};
}

Result<std::unique_ptr<Tx>> SqliteStore::read() {
  // A GET's reads share one transaction (one snapshot, one reader taken from the pool once).
  ReadRouting* routing = current_read_routing();
  if (routing != nullptr && routing->share_reads) {
    if (!routing->shared_read) {
      RP_ASSIGN(auto tx, begin_read(routing));
      routing->shared_read = std::shared_ptr<Tx>(std::move(tx));
    }
    return std::unique_ptr<Tx>(std::make_unique<SharedReadTx>(routing->shared_read, routing));
  }
  return begin_read(routing);
}

namespace {
// The two copies of the WAL index header (SQLite's WalIndexHdr, 48 bytes each) at the start of
// the WAL index in shared memory. A COMMIT of any connection, in any process, rewrites them
// (its change counter, last frame and checksums) before it returns.
constexpr std::size_t kWalHeaderWords = 24;

// The WAL index header of `db`'s main database, mapped by SQLite's VFS (the region SQLite itself
// reads at each BEGIN); nullptr when the VFS has no shared memory. Only while a read
// transaction is open on `db` (its WAL index is then open and mapped: this maps nothing new).
const volatile std::uint32_t* wal_index_header(sqlite3* db) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr || file->pMethods->iVersion < 2 ||
      file->pMethods->xShmMap == nullptr) {
    return nullptr;
  }
  void volatile* region = nullptr;
  constexpr int kWalIndexPage = 32768;  // SQLite's WALINDEX_PGSZ
  if (file->pMethods->xShmMap(file, 0, kWalIndexPage, 0, &region) != SQLITE_OK) return nullptr;
  return static_cast<const volatile std::uint32_t*>(region);
}

// Word by word (a writer may be rewriting it: a torn copy only differs, which ends a snapshot
// that could have been kept).
void copy_wal_header(const volatile std::uint32_t* header,
                     std::array<std::uint32_t, kWalHeaderWords>& out) {
  for (std::size_t i = 0; i < kWalHeaderWords; ++i) out[i] = header[i];
}

bool wal_header_unchanged(const volatile std::uint32_t* header,
                          const std::array<std::uint32_t, kWalHeaderWords>& at) {
  for (std::size_t i = 0; i < kWalHeaderWords; ++i)
    if (header[i] != at[i]) return false;
  return true;
}
}  // namespace

// A read keeps its reader's read transaction open when it ends, and the next read on that
// reader takes it over while nothing was committed since it began: BEGIN, the snapshot's first
// page read and ROLLBACK took ~7,200 instructions and four to six system calls (the WAL read
// lock's fcntl, fstat) of a 50,000-instruction read by id. Whether anything was committed is the
// WAL index header in shared memory, which every COMMIT rewrites before it returns, whichever
// connection or process made it: a read that begins after a write was acknowledged sees the
// header changed and begins a new snapshot. A kept snapshot does not hold up checkpoints of
// this store (HoldSnapshots) nor, beyond kSnapshotIdleMs or two, another process's.
bool SqliteStore::keeps_snapshot(const Connection& reader) const {
  return reader.header_copied && reader.wal_header != nullptr &&
         checkpoints_waiting_.load(std::memory_order_acquire) == 0 &&
         reap_epoch_ - reader.snapshot_epoch <= 1 &&
         wal_header_unchanged(reader.wal_header, reader.header_at_begin);
}

Result<std::unique_ptr<Tx>> SqliteStore::begin_read(ReadRouting* routing) {
  Connection* conn = nullptr;
  bool reuse = false;
  {
    std::unique_lock lock(pool_mu_);
    if (routing != nullptr && routing->no_wait && free_readers_.empty()) {
      routing->would_wait = true;
      return make_error(Errc::kBusy, "every reader connection is in use");
    }
    if (!pool_cv_.wait_for(lock, std::chrono::milliseconds(options_.busy_timeout_ms),
                           [&] { return !free_readers_.empty(); })) {
      return make_error(Errc::kBusy, "timed out waiting for a reader connection");
    }
    conn = free_readers_.back();
    free_readers_.pop_back();
    reuse = conn->snapshot_kept && keeps_snapshot(*conn);
  }
  auto release = [this, conn](bool keep) { return_reader(conn, keep); };
  if (reuse) {
    snapshots_reused_.fetch_add(1, std::memory_order_relaxed);
    return std::unique_ptr<Tx>(std::make_unique<ReadTx>(conn, release, conn->kept_stamp));
  }
  if (conn->snapshot_kept) conn->end_snapshot();
  snapshots_begun_.fetch_add(1, std::memory_order_relaxed);
  // The change stamp before the snapshot (see Tx::change_stamp): a write committed after this
  // load and before the snapshot makes the stamp older than the snapshot, never newer.
  std::optional<std::uint64_t> stamp = change_stamp_.load(std::memory_order_acquire);
  // The header before the snapshot, likewise: a commit after this copy and before the snapshot
  // only ends the snapshot sooner than needed.
  conn->header_copied = conn->wal_header != nullptr;
  if (conn->header_copied) copy_wal_header(conn->wal_header, conn->header_at_begin);
  // A deferred BEGIN takes its snapshot at the first read; read the schema now so the snapshot
  // is the database as of this call, not of the caller's first query.
  Status begun = [&]() -> Status {
    RP_TRY(conn->run("BEGIN"));
    RP_TRY(conn->run("SELECT 1 FROM sqlite_schema LIMIT 1"));
    // Whether any other connection (this process's writer, or another process such as a
    // command-line tool) committed since this reader's last snapshot: then the stamp counts
    // one more change, and this transaction has none (its snapshot may hold a change that
    // transactions with the same stamp began before). A reader's first transaction counts as
    // a change: its earlier history is unknown.
    // SQLITE_FCNTL_DATA_VERSION reads the pager's data version (which PRAGMA data_version
    // reports, and which also counts the connection's own commits — a reader makes none)
    // without a statement to step (the PRAGMA ran at every read's BEGIN).
    unsigned int data_version = 0;
    const std::int64_t version = sqlite3_file_control(conn->db(), "main", SQLITE_FCNTL_DATA_VERSION,
                                                      &data_version) == SQLITE_OK
                                     ? static_cast<std::int64_t>(data_version)
                                     : -1;
    if (version < 0 || version != conn->last_data_version) {
      conn->last_data_version = version;
      change_stamp_.fetch_add(1, std::memory_order_acq_rel);
      stamp.reset();
    }
    return {};
  }();
  if (!begun.ok()) {
    conn->rollback_quietly();
    return_reader(conn, false);
    return std::move(begun).error();
  }
  if (conn->wal_header == nullptr) conn->wal_header = wal_index_header(conn->db());
  conn->kept_stamp = stamp;
  {
    std::lock_guard lock(pool_mu_);
    conn->snapshot_epoch = reap_epoch_;
  }
  return std::unique_ptr<Tx>(std::make_unique<ReadTx>(conn, release, stamp));
}

void SqliteStore::return_reader(Connection* reader, bool keep) {
  bool arm = false;
  {
    std::lock_guard lock(pool_mu_);
    // Not a snapshot without a change stamp (one that may hold a change the stamp does not
    // count yet): the next read begins anew and, nothing having changed, gets one.
    reader->snapshot_kept = keep && reader->in_transaction() && reader->kept_stamp.has_value() &&
                            keeps_snapshot(*reader);
    if (!reader->snapshot_kept) reader->rollback_quietly();
    reader->idle_epoch = reap_epoch_;
    free_readers_.push_back(reader);
    arm = reader->snapshot_kept && !reaper_armed_.exchange(true, std::memory_order_acq_rel);
  }
  pool_cv_.notify_one();
  if (arm) {
    // The checkpoint thread waits on group_mu_ for reaper_armed_: taking the mutex between the
    // store and the notification means it either saw the flag or is already waiting.
    { std::lock_guard lock(group_mu_); }
    checkpoint_cv_.notify_one();
  }
}

void SqliteStore::end_idle_snapshots(bool all) {
  std::lock_guard lock(pool_mu_);
  bool left = false;
  for (Connection* reader : free_readers_) {
    if (!reader->snapshot_kept) continue;
    if (all || reader->idle_epoch < reap_epoch_) {
      reader->end_snapshot();
      snapshots_ended_idle_.fetch_add(1, std::memory_order_relaxed);
    } else {
      left = true;
    }
  }
  if (!all) {
    ++reap_epoch_;
    // Readers in use arm the timer again when they come back with a snapshot to keep.
    if (!left) reaper_armed_.store(false, std::memory_order_release);
  }
}

SqliteStore::ReadSnapshotStats SqliteStore::read_snapshot_stats() const {
  return {snapshots_begun_.load(std::memory_order_relaxed),
          snapshots_reused_.load(std::memory_order_relaxed),
          snapshots_ended_idle_.load(std::memory_order_relaxed)};
}

Status SqliteStore::migrate(std::span<const Migration> migrations) {
  return detail::apply_migrations(*this, migrations, [](Tx&) -> Status { return {}; });
}

Result<int> SqliteStore::schema_version() {
  RP_ASSIGN(auto tx, read());
  RP_ASSIGN(Rows exists, tx->query("SELECT count(*) FROM sqlite_schema "
                                   "WHERE type = 'table' AND name = '_migrations'"));
  if (std::get<std::int64_t>(exists.rows[0][0]) == 0) return 0;
  RP_ASSIGN(Rows max, tx->query("SELECT coalesce(max(version), 0) FROM _migrations"));
  return static_cast<int>(std::get<std::int64_t>(max.rows[0][0]));
}

Status SqliteStore::backup_to(const std::string& path) {
  // A fresh connection so the copy neither waits for nor holds up the pool and the writer.
  RP_ASSIGN(auto src, Connection::open(path_, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE,
                                       options_.busy_timeout_ms));
  // Written under a temporary name and renamed, so a half-written backup never has the real name.
  const std::string tmp = path + ".tmp";
  remove_quietly(tmp);
  Status copied = [&]() -> Status {
    RP_ASSIGN(auto dst, Connection::open(
                            tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE,
                            options_.busy_timeout_ms));
    RP_TRY(pragma(*dst, "PRAGMA synchronous=FULL"));
    return copy_database(dst->db(), src->db(), "backup to '" + path + "'");
  }();  // closing the destination here flushes it before the rename
  if (!copied.ok()) {
    remove_quietly(tmp);
    return copied;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    remove_quietly(tmp);
    return make_error(Errc::kStorage,
                      "backup: cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
  return {};
}

Result<std::string> SqliteStore::integrity_check() {
  RP_ASSIGN(auto tx, read());
  RP_ASSIGN(Rows rows, tx->query("PRAGMA integrity_check"));
  std::string out;
  for (const auto& row : rows.rows) {
    if (!out.empty()) out += '\n';
    if (const auto* s = std::get_if<std::string>(&row[0])) out += *s;
  }
  return out;
}

Status restore(const std::string& target_path, const std::string& backup_path) {
  auto invalid = [&](const std::string& why) {
    return make_error(Errc::kBadRequest,
                      "not a valid Rapport backup: '" + backup_path + "': " + why);
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(backup_path, ec)) return invalid("no such file");
  auto src = Connection::open(backup_path, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, 5000);
  if (!src.ok()) return invalid(src.error().message);

  Rows check;
  if (auto r = (*src)->run("PRAGMA integrity_check", {}, &check); !r.ok()) {
    return invalid(r.error().message);
  }
  if (check.rows.empty() || check.rows[0].empty() ||
      std::get_if<std::string>(&check.rows[0][0]) == nullptr ||
      std::get<std::string>(check.rows[0][0]) != "ok") {
    std::string found = check.rows.empty() ? "no result"
                        : std::get_if<std::string>(&check.rows[0][0]) != nullptr
                            ? std::get<std::string>(check.rows[0][0])
                            : "unexpected result";
    return invalid("integrity check failed: " + found);
  }
  // An empty (zero-byte) file passes the integrity check; restoring it would wipe everything.
  Rows tables;
  if (auto r = (*src)->run("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", {}, &tables);
      !r.ok()) {
    return invalid(r.error().message);
  }
  if (std::get<std::int64_t>(tables.rows[0][0]) == 0) return invalid("it contains no tables");

  RP_ASSIGN(
      auto dst,
      Connection::open(target_path,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE, 5000));
  RP_TRY(pragma(*dst, "PRAGMA synchronous=FULL"));
  return copy_database(dst->db(), (*src)->db(), "restore into '" + target_path + "'");
}

}  // namespace rapport::storage::sqlite
