// Duplicate detection profiles of the accounts module (DOMAIN §9): contacts match as persons
// (email, phone + name, company + first/last name), accounts as organisations (tax id, company
// domain, name in the same country with address or city + phone). The engine is record/.
#pragma once

#include "record/service.h"

namespace rapport::modules::accounts {

void register_dedupe(record::HookRegistry& hooks);

}  // namespace rapport::modules::accounts
