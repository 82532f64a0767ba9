// Router: maps (method, path pattern) to a Handler. Patterns are literal segments and
// `{name}` captures, e.g. "/api/v1/{entity}/{id}". Literal segments win over captures.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/latency.h"
#include "http/types.h"

namespace rapport::http {

class Router {
 public:
  // The most segments a route pattern may have (add() throws beyond it); a longer path
  // matches no route.
  static constexpr std::size_t kMaxSegments = 16;

  // Throws std::logic_error for a pattern of more than kMaxSegments segments.
  void add(std::string method, std::string pattern, Handler handler, Lane lane = Lane::kWorker);
  // Moves the route added as (method, pattern) to `lane` (GET/HEAD routes only; others stay on
  // the workers). Throws std::logic_error when there is no such route.
  void set_lane(std::string_view method, std::string_view pattern, Lane lane);
  // Fallback for unmatched paths (404) and wrong methods (405: `method_not_allowed` is true).
  void set_fallback(std::function<Response(Request&, bool method_not_allowed)> fallback);
  // Finds the handler, fills req.params, runs it. Never throws: exceptions become 500.
  // Records each matched route's handler time and, when req.received is set, the server time
  // (received → handler done) in that route's histograms. With req.in_place, only a GET/HEAD
  // route of Lane::kIoThread runs; anything else answers Response::deferred() untouched, and a
  // deferred answer is not recorded in the histograms, only counted (RouteLatency::deferred).
  Response dispatch(Request& req) const;
  // Records the latency of a request whose handler answered later (Response::answered_later),
  // now that its answer is given: called by the server with the request dispatch() ran.
  void record_later_answer(const Request& req) const;

  // Server-side latency of every route that answered since the last reset, in registration order.
  struct RouteLatencySummary {
    std::string method;
    std::string pattern;  // "/api/v1/{entity}/{id}"
    LatencyHistogram::Summary handler;
    LatencyHistogram::Summary server;
    std::uint64_t deferred = 0;  // in-place tries handed to the worker pool (RouteLatency)
  };
  std::vector<RouteLatencySummary> latency() const;
  void reset_latency() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    std::uint32_t captures = 0;  // bit i: segment i is a capture
    Handler handler;
    Lane lane = Lane::kWorker;
    std::unique_ptr<RouteLatency> latency;  // stable address: routes_ may grow
  };
  std::vector<Route> routes_;  // in registration order
  // by_count_[n]: indices into routes_ of the routes of n segments, most specific first.
  std::vector<std::vector<std::size_t>> by_count_;
  std::function<Response(Request&, bool)> fallback_;
};

}  // namespace rapport::http
