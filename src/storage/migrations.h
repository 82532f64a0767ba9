// The migration runner both backends share: ordering, duplicate-version check, one write
// transaction per migration, and the re-check that makes concurrent migrators safe.
#pragma once

#include <functional>
#include <span>

#include "storage/store.h"

namespace rapport::storage::detail {

// Applies the migrations above the stored version. `lock` runs first in every write transaction
// (PostgreSQL takes an advisory lock there; SQLite's write lock already serialises migrators).
Status apply_migrations(Store& store, std::span<const Migration> migrations,
                        const std::function<Status(Tx&)>& lock);

}  // namespace rapport::storage::detail
