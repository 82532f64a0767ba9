// Hooks of the admin module: user passwords travel with the user record; role permission
// documents are validated and cached roles refreshed when they change.
#pragma once

#include "access/auth.h"
#include "record/service.h"

namespace rapport::modules::admin {

void register_hooks(record::HookRegistry& hooks, access::AuthService& auth);

}  // namespace rapport::modules::admin
