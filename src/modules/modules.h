// The business modules' registration: each module's entity declarations (embedded from
// src/modules/<module>/entities/*.json), its hooks and its actions. Modules never include each
// other.
#pragma once

#include "access/auth.h"
#include "record/actions.h"
#include "record/service.h"
#include "schema/schema.h"

namespace rapport::modules {

// Parses every embedded entity declaration into the registry and registers module hooks.
Status register_all(schema::Registry& registry, record::HookRegistry& hooks,
                    access::AuthService& auth);

// Registers every module's actions (endpoints beyond generic CRUD) once the record service
// exists; api/ mounts them under /api/v1.
void register_actions(record::ActionRegistry& actions, record::RecordService& records,
                      const schema::Registry& registry);

}  // namespace rapport::modules
