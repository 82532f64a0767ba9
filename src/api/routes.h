// The REST surface: registers every /api/v1 route on the router and builds the WebSocket
// acceptor for /api/v1/events. Handlers authenticate, translate HTTP to service calls and map
// errors once through api/problem.
#pragma once

#include <string_view>

#include "access/auth.h"
#include "http/router.h"
#include "http/server.h"
#include "record/actions.h"
#include "record/service.h"
#include "schema/schema.h"

namespace rapport::api {

struct Services {
  record::RecordService& records;
  access::AuthService& auth;
  schema::Registry& registry;
  const record::ActionRegistry* actions = nullptr;  // module actions, mounted under /api/v1
};

void register_routes(http::Router& router, Services services);
http::WsAcceptor make_ws_acceptor(Services services);
// The text published to WebSocket subscribers for an event (filtered per subscriber).
std::string ws_envelope(const record::Event& e);
// The envelope of a message every WebSocket subscriber receives as is (no entity, no scope):
// `json` must be an object with a "kind".
std::string ws_broadcast_envelope(std::string_view json);
// {"kind":"resync"}: events may have been missed (this server's link to the other servers was
// lost for a while); a client re-reads what it shows. docs/API.md.
inline constexpr std::string_view kWsResync = R"({"kind":"resync"})";
// OpenAPI 3.1 document generated from the metadata and the registered module actions.
std::string openapi_json(const schema::Registry& registry,
                         const record::ActionRegistry* actions = nullptr);

}  // namespace rapport::api
