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
constexpr int kMaxContacts360 = 500;
constexpr int kMaxProfile360 = 100;

void register_actions(record::ActionRegistry& actions, record::RecordService& records,
                      const schema::Registry& registry);

}  // namespace rapport::modules::accounts
