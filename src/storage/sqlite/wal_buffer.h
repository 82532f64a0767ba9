// A SQLite VFS for the writer connection that writes a COMMIT's WAL frames with one pwrite
// (in pieces of at most 128 KiB) instead of two per frame (its 24-byte header, then its page).
// sqlite3.h stays in the .cc file.
#pragma once

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

}  // namespace rapport::storage::sqlite
