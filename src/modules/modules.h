// The business modules' registration: each module's entity declarations (embedded from
// src/modules/<module>/entities/*.json) and its hooks. Modules never include each other.
#pragma once

#include "access/auth.h"
#include "record/service.h"
#include "schema/schema.h"

namespace rapport::modules {

// Parses every embedded entity declaration into the registry and registers module hooks.
Status register_all(schema::Registry& registry, record::HookRegistry& hooks,
                    access::AuthService& auth);

}  // namespace rapport::modules
