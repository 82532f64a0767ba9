// `rapport copy`: moves an installation from its SQLite file to another database (PostgreSQL).
#pragma once

#include <ostream>
#include <string>

#include "base/error.h"
#include "record/service.h"

namespace rapport::app {

// Copies every table of the SQLite database at `from` ("sqlite:PATH" or a path; brought up to
// this version's schema first) into the empty database at `to`: the schema (migrations, entity
// tables with their custom-field columns, full-text tables), then every row of every table and
// every full-text body in batches, all in one transaction on the target; then compares the row
// count of every table on both sides and prints them to `out`.
// kConflict when the target already holds rows; kStorage when a count differs.
Status copy_database(const std::string& from, const std::string& to, std::ostream& out,
                     const record::RecordOptions& options = {});

}  // namespace rapport::app
