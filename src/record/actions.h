// Module actions: endpoints beyond generic CRUD (phone lookup, customer 360, later merge,
// import …). Modules fill the registry at start-up; api/ mounts every action under /api/v1 with
// the usual authentication and error mapping, so modules never include api/ or http/.
// Read-only after start-up; handlers run on the server's worker threads and must be thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "access/access.h"
#include "base/error.h"

namespace rapport::record {

using Params = std::vector<std::pair<std::string, std::string>>;

struct ActionRequest {
  const access::Principal& principal;
  const Params& path;   // captures of the path pattern ("id" for "/accounts/{id}/360")
  const Params& query;  // decoded query string pairs, in order
  std::string_view body;

  // First value of a path capture or query parameter; empty when absent.
  std::string_view param(std::string_view name) const { return find(path, name); }
  std::string_view query_param(std::string_view name) const { return find(query, name); }

 private:
  static std::string_view find(const Params& ps, std::string_view name) {
    for (const auto& [k, v] : ps)
      if (k == name) return v;
    return {};
  }
};

// Answers the JSON body of a successful response; errors map to problem+json as everywhere.
using ActionHandler = std::function<Result<std::string>(const ActionRequest&)>;

// A query parameter of an action, for the API documentation (path captures are read from the
// path pattern).
struct ActionParam {
  std::string name;
  std::string description;
  std::string type = "string";  // JSON Schema type: string, integer, boolean
  bool required = false;
};

struct Action {
  std::string method;   // GET, POST, …
  std::string path;     // below /api/v1, with {captures}: "/lookup/phone", "/accounts/{id}/360"
  std::string summary;  // one line for the API documentation
  ActionHandler handler;
  int status = 200;  // status of a successful answer
  // The entity whose record the path's {id} names ("" when none). A GET answering 404 for the
  // id of a record merged into another is redirected (308) to the same action on the survivor.
  std::string entity{};
  // A quick read (GET): a few indexed reads and little CPU, nothing else waited for. The server
  // may then answer it on the thread that read the request (http::Lane::kIoThread).
  bool quick{};
  // For the OpenAPI document (api/openapi.cc): query parameters, and JSON Schemas (JSON text)
  // of the request body ("" = no body) and of the answer ("" = any JSON object).
  std::vector<ActionParam> query{};
  std::string request_schema{};
  std::string response_schema{};
};

class ActionRegistry {
 public:
  void add(Action a) { actions_.push_back(std::move(a)); }
  const std::vector<Action>& all() const { return actions_; }

 private:
  std::vector<Action> actions_;
};

}  // namespace rapport::record
