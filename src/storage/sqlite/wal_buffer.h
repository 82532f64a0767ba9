// A SQLite VFS for the writer connection that writes a COMMIT's WAL frames with one pwrite
// (in pieces of at most 128 KiB) instead of two per frame (its 24-byte header, then its page),
// and that can leave a COMMIT's WAL sync to another thread (DeferWalSync).
// sqlite3.h stays in the .cc file.
#pragma once

#include <cstdint>
#include <memory>

namespace rapport::storage::sqlite {

// The name of the VFS (registered on first use, not as the default): forwards everything to
// the default VFS, except that the writes to a WAL file are gathered in memory while they are
// sequential (or rewrite bytes still gathered) and written out before anything else touches the
// file: a sync, a read of gathered bytes, a truncation, its size, its close, or a write that
// does not follow on. Every sync SQLite asks for writes the gathered frames first, so the file
// holds, at each sync, exactly what it held without the buffer: crash safety is SQLite's own
// (a process killed between writes loses only frames no COMMIT had synced or published).
// Only for a connection with synchronous=FULL: SQLite shows a COMMIT's frames to the other
// connections (the wal-index) right after the COMMIT's sync, which writes the gathered frames
// first; without that sync they would be shown while still gathered here.
const char* wal_buffer_vfs();

// The WAL syncs done through wal_buffer_vfs() and WalSync::run() in this process since it
// started (every store's), and the time they took.
struct WalSyncTotals {
  std::int64_t syncs = 0;
  std::int64_t ns = 0;
};
WalSyncTotals wal_sync_totals();

// A WAL sync that a COMMIT asked for and did not wait for (DeferWalSync::take): the COMMIT's
// frames are written to the file (the kernel's page cache) and shown to other connections, not
// yet on the disk. run() syncs the WAL file through a handle of its own (opened through the
// default VFS of the moment the WAL was opened, so SQLite's own xSync: fdatasync on Linux), which
// covers every frame written before it was called — this COMMIT's and all earlier ones. One
// thread at a time may call run(); the handle stays open while a WalSync lives.
class WalSync {
 public:
  virtual ~WalSync() = default;
  virtual int run() = 0;  // SQLITE_OK or SQLite's error code of the sync
};

// While one lives on a thread, the WAL sync of a COMMIT run on that thread through
// wal_buffer_vfs() is not done but handed over (take()): the frames are written first, as for
// any sync. Every other sync is done as before: the WAL header's after the log restarted (SQLite
// syncs it before writing the first frames over an older log, or an out-of-order write could
// corrupt the database), and any sync while a Suspend lives (a checkpoint run inside the COMMIT's
// WAL hook: it must sync the WAL before it copies frames into the database file).
class DeferWalSync {
 public:
  DeferWalSync();
  ~DeferWalSync();
  DeferWalSync(const DeferWalSync&) = delete;
  DeferWalSync& operator=(const DeferWalSync&) = delete;

  // The sync a COMMIT in this scope left undone; nullptr when none was (nothing written, or
  // the sync was done: the header's, or while suspended). One not taken is run by the
  // destructor.
  std::shared_ptr<WalSync> take();

  // Syncs are done as without a DeferWalSync while one lives (on this thread).
  class Suspend {
   public:
    Suspend();
    ~Suspend();
    Suspend(const Suspend&) = delete;
    Suspend& operator=(const Suspend&) = delete;

   private:
    DeferWalSync* saved_;
  };

 private:
  friend struct DeferredSyncAccess;  // the VFS's sync (wal_buffer.cc)
  DeferWalSync* outer_;
  std::shared_ptr<WalSync> pending_;
};

}  // namespace rapport::storage::sqlite
