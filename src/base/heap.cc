// heap.h: the allocator is told apart by tcmalloc's C entry points, found with dlsym, so that
// nothing links against tcmalloc but the server binary itself.
#include "base/heap.h"

#include <dlfcn.h>
#include <malloc.h>

namespace rapport::heap {
namespace {

using ReleaseFn = void (*)();

ReleaseFn tcmalloc_release() {
  static const ReleaseFn fn =
      reinterpret_cast<ReleaseFn>(::dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"));
  return fn;
}

}  // namespace

std::string_view allocator() { return tcmalloc_release() ? "tcmalloc" : "glibc"; }

void release_free_memory() {
  if (ReleaseFn release = tcmalloc_release()) {
    release();
    return;
  }
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace rapport::heap
