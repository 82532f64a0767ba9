// The writer's VFS (see wal_buffer.h): a WAL file's sequential writes gathered until something
// needs them in the file, and a COMMIT's WAL sync handed over while a DeferWalSync lives; every
// other file and method forwarded to the default VFS.
#include "storage/sqlite/wal_buffer.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <utility>

namespace rapport::storage::sqlite {
namespace {

// Gathered bytes past this are written out at once (a batch of 64 creates is about 3 MiB). The
// buffer never holds more: it grows to this size and stays there, so a large transaction (an
// import's batch writes ~110 MB of frames) reuses it for each 16 MiB instead of growing it
// again by doubling from nothing — copying each piece several times and faulting fresh pages
// in (memory given back above 16 MiB after every flush, as it was, freed it every time).
constexpr std::size_t kMaxGathered = 16u << 20;
// The default (unix) VFS writes at most 128 KiB − 1 bytes per call (a longer write is cut
// short, and a short write is reported as a full disk).
constexpr std::size_t kMaxWrite = 0x1ffff;

// The WAL opened a second time through the default VFS, for WalSync::run() only (the writer's
// own handle stays the writer thread's: SQLite's unix files are not made for two threads at
// once). Opened at its first sync, closed when the last WalSync and the WAL file let it go.
std::atomic<std::int64_t> g_wal_syncs{0};
std::atomic<std::int64_t> g_wal_sync_ns{0};

// A WAL file's sync through `file`, counted in wal_sync_totals().
int timed_sync(sqlite3_file* file, int flags) {
  const auto start = std::chrono::steady_clock::now();
  const int rc = file->pMethods->xSync(file, flags);
  g_wal_sync_ns.fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count(),
      std::memory_order_relaxed);
  g_wal_syncs.fetch_add(1, std::memory_order_relaxed);
  return rc;
}

class SyncHandle {
 public:
  // name: as SQLite passed it to xOpen (kept with two more NULs: the unix VFS may look past the
  // first one for URI parameters).
  SyncHandle(sqlite3_vfs* vfs, std::string name) : vfs_(vfs), name_(std::move(name)) {
    name_.append(2, '\0');
  }
  ~SyncHandle() {
    if (file_ != nullptr && file_->pMethods != nullptr) file_->pMethods->xClose(file_);
    std::free(file_);
  }
  SyncHandle(const SyncHandle&) = delete;
  SyncHandle& operator=(const SyncHandle&) = delete;

  int sync(int flags) {
    if (file_ == nullptr) {
      file_ = static_cast<sqlite3_file*>(std::calloc(1, static_cast<std::size_t>(vfs_->szOsFile)));
      if (file_ == nullptr) return SQLITE_NOMEM;
      int out = 0;
      const int rc =
          vfs_->xOpen(vfs_, name_.c_str(), file_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_WAL, &out);
      if (rc != SQLITE_OK) {
        if (file_->pMethods != nullptr) file_->pMethods->xClose(file_);
        std::free(file_);
        file_ = nullptr;
        return rc;
      }
    }
    return timed_sync(file_, flags);
  }

 private:
  sqlite3_vfs* vfs_;
  std::string name_;  // outlives file_ (the unix VFS keeps a pointer to it)
  sqlite3_file* file_ = nullptr;
};

class PendingSync final : public WalSync {
 public:
  PendingSync(std::shared_ptr<SyncHandle> handle, int flags)
      : handle_(std::move(handle)), flags_(flags) {}
  int run() override { return handle_->sync(flags_); }

 private:
  std::shared_ptr<SyncHandle> handle_;
  int flags_;
};

// SQLite's WAL header: the first 32 bytes of the file, written when the log (re)starts.
constexpr sqlite3_int64 kWalHeaderBytes = 32;

struct Gathered {
  std::string bytes;
  sqlite3_int64 offset = 0;  // of bytes[0] in the file
  // The header was written since the last sync done here: the next sync is not deferred.
  bool header_unsynced = false;
  std::shared_ptr<SyncHandle> sync_handle;
};

thread_local DeferWalSync* t_defer = nullptr;

// SQLite allocates szOsFile bytes for each file: this struct, then the default VFS's file.
struct BufferedFile {
  sqlite3_file base;
  sqlite3_file* real;
  Gathered* gathered;  // WAL files only (nullptr: every call forwarded)
};

sqlite3_vfs* real_vfs() { return sqlite3_vfs_find(nullptr); }
sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<BufferedFile*>(f)->real; }
Gathered* gathered_of(sqlite3_file* f) { return reinterpret_cast<BufferedFile*>(f)->gathered; }

// Writes `n` bytes at `offset` through the default VFS, in pieces it takes whole.
int write_pieces(sqlite3_file* f, const char* data, std::size_t n, sqlite3_int64 offset) {
  sqlite3_file* real = real_of(f);
  int rc = SQLITE_OK;
  for (std::size_t at = 0; at < n && rc == SQLITE_OK; at += kMaxWrite) {
    const std::size_t piece = std::min(kMaxWrite, n - at);
    rc = real->pMethods->xWrite(real, data + at, static_cast<int>(piece),
                                offset + static_cast<sqlite3_int64>(at));
  }
  return rc;
}

// Writes the gathered bytes (if any) and forgets them, written or not.
int flush(sqlite3_file* f) {
  Gathered* g = gathered_of(f);
  if (g == nullptr || g->bytes.empty()) return SQLITE_OK;
  const int rc = write_pieces(f, g->bytes.data(), g->bytes.size(), g->offset);
  g->bytes.clear();
  return rc;
}

// Appends to the gathered bytes; the capacity grows (doubling) up to kMaxGathered, not past it.
void gather(Gathered& g, const char* p, std::size_t n) {
  const std::size_t need = g.bytes.size() + n;
  if (need > g.bytes.capacity())
    g.bytes.reserve(std::min(kMaxGathered, std::max(need, 2 * g.bytes.capacity())));
  g.bytes.append(p, n);
}

int buffered_close(sqlite3_file* f) {
  const int flushed = flush(f);
  sqlite3_file* real = real_of(f);
  const int rc = real->pMethods != nullptr ? real->pMethods->xClose(real) : SQLITE_OK;
  delete gathered_of(f);
  reinterpret_cast<BufferedFile*>(f)->gathered = nullptr;
  return flushed != SQLITE_OK ? flushed : rc;
}

int buffered_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (Gathered* g = gathered_of(f); g != nullptr && !g->bytes.empty()) {
    const sqlite3_int64 end = g->offset + static_cast<sqlite3_int64>(g->bytes.size());
    if (off < end && off + n > g->offset) {
      if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    }
  }
  return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

int buffered_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  Gathered* g = gathered_of(f);
  if (g == nullptr) return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
  const char* p = static_cast<const char*>(buf);
  const auto size = static_cast<std::size_t>(n);
  if (off < kWalHeaderBytes) g->header_unsynced = true;
  const sqlite3_int64 end = g->offset + static_cast<sqlite3_int64>(g->bytes.size());
  if (!g->bytes.empty() && off >= g->offset && off + n <= end) {
    // a frame of this transaction written again (SQLite rewrites a page it wrote earlier)
    std::memcpy(g->bytes.data() + (off - g->offset), p, size);
    return SQLITE_OK;
  }
  // Gathered bytes that this write does not follow on, or that it would take past the bound,
  // go out first.
  if (!g->bytes.empty() && (off != end || g->bytes.size() + size > kMaxGathered)) {
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  if (size > kMaxGathered) return write_pieces(f, p, size, off);
  if (g->bytes.empty()) g->offset = off;
  gather(*g, p, size);
  return SQLITE_OK;
}

int buffered_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

}  // namespace

struct DeferredSyncAccess {
  static void hand_over(DeferWalSync& d, std::shared_ptr<WalSync> s) { d.pending_ = std::move(s); }
};

namespace {

int buffered_sync(sqlite3_file* f, int flags) {
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  Gathered* g = gathered_of(f);
  if (g != nullptr && t_defer != nullptr && !g->header_unsynced && g->sync_handle != nullptr) {
    // A COMMIT's sync: its frames are in the file; the caller of DeferWalSync::take() syncs.
    DeferredSyncAccess::hand_over(*t_defer, std::make_shared<PendingSync>(g->sync_handle, flags));
    return SQLITE_OK;
  }
  const int rc =
      g != nullptr ? timed_sync(real_of(f), flags) : real_of(f)->pMethods->xSync(real_of(f), flags);
  if (rc == SQLITE_OK && g != nullptr) g->header_unsynced = false;
  return rc;
}

int buffered_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

int buffered_lock(sqlite3_file* f, int lock) {
  return real_of(f)->pMethods->xLock(real_of(f), lock);
}
int buffered_unlock(sqlite3_file* f, int lock) {
  return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}
int buffered_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int buffered_file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int buffered_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int buffered_device(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int buffered_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  sqlite3_file* real = real_of(f);
  if (real->pMethods->iVersion < 2) return SQLITE_IOERR;
  return real->pMethods->xShmMap(real, page, size, extend, out);
}
int buffered_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  sqlite3_file* real = real_of(f);
  if (real->pMethods->iVersion < 2) return SQLITE_IOERR;
  return real->pMethods->xShmLock(real, offset, n, flags);
}
void buffered_shm_barrier(sqlite3_file* f) {
  sqlite3_file* real = real_of(f);
  if (real->pMethods->iVersion >= 2) real->pMethods->xShmBarrier(real);
}
int buffered_shm_unmap(sqlite3_file* f, int del) {
  sqlite3_file* real = real_of(f);
  if (real->pMethods->iVersion < 2) return SQLITE_OK;
  return real->pMethods->xShmUnmap(real, del);
}
int buffered_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  sqlite3_file* real = real_of(f);
  if (real->pMethods->iVersion < 3) {
    *out = nullptr;
    return SQLITE_OK;
  }
  return real->pMethods->xFetch(real, off, n, out);
}
int buffered_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  sqlite3_file* real = real_of(f);
  if (real->pMethods->iVersion < 3) return SQLITE_OK;
  return real->pMethods->xUnfetch(real, off, p);
}

const sqlite3_io_methods kMethods = {
    3,
    buffered_close,
    buffered_read,
    buffered_write,
    buffered_truncate,
    buffered_sync,
    buffered_file_size,
    buffered_lock,
    buffered_unlock,
    buffered_check_reserved,
    buffered_file_control,
    buffered_sector_size,
    buffered_device,
    buffered_shm_map,
    buffered_shm_lock,
    buffered_shm_barrier,
    buffered_shm_unmap,
    buffered_fetch,
    buffered_unfetch,
};

int buffered_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                  int* out_flags) {
  auto* real_vfs_ = static_cast<sqlite3_vfs*>(vfs->pAppData);
  auto* bf = reinterpret_cast<BufferedFile*>(file);
  bf->base.pMethods = nullptr;
  bf->real = reinterpret_cast<sqlite3_file*>(bf + 1);
  bf->gathered = nullptr;
  const int rc = real_vfs_->xOpen(real_vfs_, name, bf->real, flags, out_flags);
  if (rc != SQLITE_OK || bf->real->pMethods == nullptr) {
    // SQLite calls xClose on a file whose pMethods is set even when xOpen failed
    if (bf->real->pMethods != nullptr) bf->base.pMethods = &kMethods;
    return rc;
  }
  if ((flags & SQLITE_OPEN_WAL) != 0 && name != nullptr) {
    bf->gathered = new (std::nothrow) Gathered;
    if (bf->gathered != nullptr) {
      bf->gathered->header_unsynced = true;  // a WAL just opened: its first sync is done here
      bf->gathered->sync_handle = std::make_shared<SyncHandle>(real_vfs_, name);
    }
  }
  bf->base.pMethods = &kMethods;
  return SQLITE_OK;
}

sqlite3_vfs g_vfs;

}  // namespace

const char* wal_buffer_vfs() {
  // Forwards to the default VFS of the moment a store opens (tests make a fault-injecting VFS
  // the default for a while); files already open keep the one they were opened with.
  static std::mutex mu;
  std::lock_guard lock(mu);
  sqlite3_vfs* real = real_vfs();
  if (g_vfs.zName == nullptr) {
    g_vfs = *real;
    g_vfs.zName = "rapport-wal-buffer";
    g_vfs.xOpen = buffered_open;
    g_vfs.pNext = nullptr;
    g_vfs.pAppData = real;
    g_vfs.szOsFile = static_cast<int>(sizeof(BufferedFile)) + real->szOsFile;
    sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
  } else if (g_vfs.pAppData != real) {
    g_vfs.pAppData = real;
    g_vfs.szOsFile = static_cast<int>(sizeof(BufferedFile)) + real->szOsFile;
  }
  return g_vfs.zName;
}

WalSyncTotals wal_sync_totals() {
  return {g_wal_syncs.load(std::memory_order_relaxed),
          g_wal_sync_ns.load(std::memory_order_relaxed)};
}

DeferWalSync::DeferWalSync() : outer_(t_defer) { t_defer = this; }
DeferWalSync::~DeferWalSync() {
  t_defer = outer_;
  if (pending_ != nullptr) pending_->run();  // not taken: nobody else will sync it
}
std::shared_ptr<WalSync> DeferWalSync::take() { return std::move(pending_); }

DeferWalSync::Suspend::Suspend() : saved_(t_defer) { t_defer = nullptr; }
DeferWalSync::Suspend::~Suspend() { t_defer = saved_; }

}  // namespace rapport::storage::sqlite
