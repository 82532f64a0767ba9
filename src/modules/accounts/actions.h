// Actions of the accounts module: caller lookup by phone (R-CTI-1, DOMAIN §7) and the customer
// 360 view (R-CUS-1…3) — one response with the account, its contacts, the dated analytical
// profile and the communication timeline.
#pragma once

#include "record/actions.h"
#include "record/service.h"
#include "schema/schema.h"

namespace rapport::modules::accounts {

// Default and maximum number of timeline entries in one 360 response.
constexpr int kTimelinePage = 50;
// Contacts in one 360 response: the page the 360 view shows. An account with more gets the
// contacts list's `next_cursor`, and the rest page through the generic list with the same query
// (filter account_id = the account, sort full_name). Was 500: such an account's 360 read up to
// one page of the file per contact (bench/README.md, session 15); an account with at most this
// many contacts gets the same answer as before, byte for byte.
constexpr int kMaxContacts360 = 50;
constexpr int kMaxProfile360 = 100;

void register_actions(record::ActionRegistry& actions, record::RecordService& records,
                      const schema::Registry& registry);

}  // namespace rapport::modules::accounts
