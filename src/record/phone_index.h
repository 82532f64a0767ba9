// The phone index: every number of every phone_list field of every entity, as E.164, in the
// table phone_index(e164, entity, record_id). Maintained in the record's write transaction (live
// records only), so caller lookup (ANI → customer) and duplicate checks are one indexed read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record {

// Bumped when what goes into the index changes; the index is then rebuilt at start-up.
constexpr int kPhoneIndexVersion = 2;  // 2: account_id (distribution key)

bool has_phone_list(const schema::Entity& e);

// Appends the E.164 numbers of one stored phone_list value (JSON text) to `out`.
void append_phone_keys(const storage::SqlValue& stored, std::string_view region,
                       std::vector<std::string>& out);

// Distinct E.164 numbers of the record's phone_list fields (stored row as select_list yields
// it). Entries that do not normalise (extensions alone, short codes) are left out.
std::vector<std::string> phone_keys(const schema::Entity& e,
                                    const std::vector<storage::SqlValue>& row,
                                    std::string_view region);

// Replaces the record's index rows with its current numbers (`fresh`: a new record, nothing to
// replace); `account` is the record's distribution key (distribution_value), stored beside.
Status index_phones(storage::Tx& tx, const schema::Entity& e, std::int64_t id,
                    const std::vector<storage::SqlValue>& row, std::string_view region,
                    bool fresh = false, const storage::SqlValue& account = {});
// Removes the record from the index (deleted, merged).
Status unindex_phones(storage::Tx& tx, const schema::Entity& e, std::int64_t id);

}  // namespace rapport::record
