// Transport-level request and response, free of Beast types so that api/ and app/ compile
// without Boost headers. The http library converts to and from Beast messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace rapport::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Response;

struct Request {
  std::string method;  // "GET", "POST", …
  std::string target;  // raw request target as received
  std::string path;    // percent-decoded path without the query
  std::string query;   // raw query string after '?', not decoded
  Headers headers;     // names lower-cased
  std::string body;
  // Upload routes (ServerOptions::upload_path_suffix): the body arrives spooled to an unnamed
  // temporary file, positioned at its start, and `body` is empty. Null for other requests.
  std::shared_ptr<std::FILE> body_file;
  std::string remote_addr;  // peer IP
  std::string request_id;   // X-Request-Id from the client if sane, else generated
  Headers params;           // path parameters filled by the Router ("entity", "id", …)
  // When the server began reading the request (its first bytes); the Router measures the
  // server-side latency from here. Unset (epoch) for requests not from the network.
  std::chrono::steady_clock::time_point received{};
  // True while an I/O thread tries the request in place (a route of Lane::kIoThread, GET or
  // HEAD): the handler must not wait for anything (a database connection, the network, a lock
  // held for long) and answers Response::deferred() instead; the server then runs it again on
  // the worker pool with this false.
  bool in_place = false;
  // The route the Router matched in the in-place try, plus one (0: none yet), so that the
  // worker pool's run does not match the path again. Only the Router reads it.
  std::uint32_t route = 0;
  // Set by the server for a run on the worker pool (empty otherwise: in place, tests): a
  // handler whose answer comes after it returns — once a group COMMIT that another thread
  // runs has made its write durable — moves this out, returns Response::answered_later(), and
  // the work's completion calls it exactly once, on any thread, with the response. No worker
  // waits meanwhile. Should every copy of it go without being called, the client gets a 500.
  std::function<void(Response)> answer_later;
  // When the handler began (the Router's, for a later answer's latency).
  std::chrono::steady_clock::time_point handler_began{};

  // The query string's parameters as parse_query gives them, parsed on first use and kept:
  // the check every API route makes and the handler's own read then parse it once.
  const Result<Headers>& query_params() const;
  mutable std::optional<Result<Headers>> parsed_query;  // query_params()'s, of `query`

  // First header with this (lower-case) name, or nullptr.
  const std::string* header(std::string_view name) const;
  // Path parameter by name, empty when absent.
  std::string_view param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;  // extra headers (Set-Cookie may repeat)
  std::string body;
  // A body too large to hold in memory (exports): when set, `body` is ignored and the server
  // sends the status and headers, then calls this on the worker pool to write the body piece by
  // piece (HTTP/1.1 chunked transfer; HTTP/1.0: until the connection closes). `write` sends one
  // piece and answers false once the client has gone (disconnected, or stopped reading for
  // ServerOptions::read_timeout_s), after which the producer should stop. When the producer
  // answers an error (or throws) the server resets the connection (TCP RST) without the last
  // chunk, so a client never mistakes a cut-off body for a complete one. Not compressed.
  using BodyWriter = std::function<bool(std::string_view piece)>;
  std::function<Status(const BodyWriter& write)> stream;

  // Set by deferred(): not an answer — run the request again on the worker pool.
  bool defer = false;
  // Set by answered_later(): not an answer — the handler took Request::answer_later.
  bool later = false;

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  // The answer of a handler tried in place (Request::in_place) that would have to wait.
  static Response deferred() {
    Response r;
    r.defer = true;
    return r;
  }
  // The return of a handler that took Request::answer_later (and will call it).
  static Response answered_later() {
    Response r;
    r.later = true;
    return r;
  }
};

// Handlers are plain synchronous functions. The server runs them on its blocking worker pool,
// so they may wait on the database — except that a handler of a Lane::kIoThread route is first
// tried on the I/O thread that read the request (Request::in_place), which spares the hand-off
// to a worker and the wait behind slower requests; it answers Response::deferred() whenever it
// would wait.
using Handler = std::function<Response(Request&)>;

// Where a route's handler runs. kIoThread is for quick read-only GET/HEAD handlers (a record by
// id, a phone lookup): tried in place first, on the pool when they defer.
enum class Lane { kWorker, kIoThread };

// Decoded query string pairs, in order. kBadRequest on malformed percent-encoding, and when a
// decoded name or value is not well-formed UTF-8 (the error's field names the parameter).
Result<Headers> parse_query(std::string_view query);

}  // namespace rapport::http
