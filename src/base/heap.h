// Which heap allocator the process runs on, and handing its free memory back to the system.
// The server is linked with tcmalloc where it is installed (src/CMakeLists.txt); the unit tests,
// tools and sanitizer builds use glibc's. Both answers are looked up at run time.
#pragma once

#include <string_view>

namespace rapport::heap {

// "tcmalloc" when the process's malloc is tcmalloc's, else "glibc".
std::string_view allocator();

// Hands the allocator's free pages back to the system (glibc: malloc_trim; tcmalloc:
// MallocExtension::ReleaseFreeMemory). Costly: each page handed back is faulted in again when
// it is used next.
void release_free_memory();

}  // namespace rapport::heap
