// Router: picks the most specific route for a path (literal segments beat captures, compared
// left to right), tells 404 from 405, and turns handler exceptions into a logged 500.
#include "http/router.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <stdexcept>

#include "http/internal.h"

namespace rapport::http {
namespace {

// "/api/v1/{entity}" -> {"api", "v1", "{entity}"}. A trailing slash yields a trailing empty
// segment, so "/accounts/" does not silently match "/accounts".
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return out;
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_capture(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path) {
  if (pattern.size() != path.size()) return false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (is_capture(pattern[i])) {
      if (path[i].empty()) return false;
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

// True when `a` is more specific than `b`: at the first position where one has a literal and
// the other a capture, the literal wins.
bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    bool ca = is_capture(a[i]);
    bool cb = is_capture(b[i]);
    if (ca != cb) return !ca;
  }
  return false;
}

Response default_fallback(Request&, bool method_not_allowed) {
  if (method_not_allowed) return detail::problem(405, "Method Not Allowed", "method_not_allowed");
  return detail::problem(404, "Not Found", "not_found");
}

Response internal_error() { return detail::problem(500, "Internal Server Error", "internal"); }

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler, Lane lane) {
  std::vector<std::string> segments;
  for (auto segment : split_path(pattern)) segments.emplace_back(segment);
  // Only reads may be tried in place: a deferred request runs again from the start.
  if (method != "GET" && method != "HEAD") lane = Lane::kWorker;
  routes_.push_back(Route{std::move(method), std::move(pattern), std::move(segments),
                          std::move(handler), lane, std::make_unique<RouteLatency>()});
}

void Router::set_lane(std::string_view method, std::string_view pattern, Lane lane) {
  for (auto& route : routes_) {
    if (route.method != method || route.pattern != pattern) continue;
    route.lane = method == "GET" || method == "HEAD" ? lane : Lane::kWorker;
    return;
  }
  throw std::logic_error("no route " + std::string(method) + " " + std::string(pattern));
}

void Router::set_fallback(std::function<Response(Request&, bool method_not_allowed)> fallback) {
  fallback_ = std::move(fallback);
}

Response Router::dispatch(Request& req) const {
  const auto path = split_path(req.path);
  const Route* best = nullptr;
  const Route* best_get = nullptr;  // HEAD is answered by the GET route when there is no HEAD one
  std::string allow;                // for the Allow header of a 405
  for (const auto& route : routes_) {
    if (!matches(route.segments, path)) continue;
    if (allow.find(route.method) == std::string::npos) {
      allow += allow.empty() ? "" : ", ";
      allow += route.method;
    }
    if (route.method == req.method) {
      if (best == nullptr || more_specific(route.segments, best->segments)) best = &route;
    } else if (req.method == "HEAD" && route.method == "GET") {
      if (best_get == nullptr || more_specific(route.segments, best_get->segments)) {
        best_get = &route;
      }
    }
  }
  if (best == nullptr) best = best_get;
  if (req.in_place && (best == nullptr || best->lane != Lane::kIoThread ||
                       (req.method != "GET" && req.method != "HEAD"))) {
    return Response::deferred();
  }

  try {
    if (best == nullptr) {
      const bool method_not_allowed = !allow.empty();
      Response res = fallback_ ? fallback_(req, method_not_allowed)
                               : default_fallback(req, method_not_allowed);
      if (method_not_allowed) res.set_header("Allow", allow);
      return res;
    }
    req.params.clear();
    for (std::size_t i = 0; i < path.size(); ++i) {
      const auto& segment = best->segments[i];
      if (is_capture(segment)) {
        req.params.emplace_back(segment.substr(1, segment.size() - 2), std::string(path[i]));
      }
    }
    const auto began = std::chrono::steady_clock::now();
    struct Timer {  // records on every way out, a throwing handler included
      const Route& route;
      const Request& req;
      std::chrono::steady_clock::time_point began;
      bool deferred = false;  // not answered here: the pool's run is the one recorded
      ~Timer() {
        if (deferred) return;
        const auto done = std::chrono::steady_clock::now();
        route.latency->handler.record(done - began);
        if (req.received != std::chrono::steady_clock::time_point{})
          route.latency->server.record(done - req.received);
      }
    } timer{*best, req, began};
    Response res = best->handler(req);
    timer.deferred = res.defer;
    return res;
  } catch (const std::exception& e) {
    spdlog::error("request {} {} {}: handler threw: {}", req.request_id, req.method, req.path,
                  e.what());
  } catch (...) {
    spdlog::error("request {} {} {}: handler threw a non-std exception", req.request_id, req.method,
                  req.path);
  }
  return internal_error();
}

std::vector<Router::RouteLatencySummary> Router::latency() const {
  std::vector<RouteLatencySummary> out;
  for (const auto& route : routes_) {
    auto handler = route.latency->handler.summary();
    if (handler.count == 0) continue;
    out.push_back({route.method, route.pattern, handler, route.latency->server.summary()});
  }
  return out;
}

void Router::reset_latency() const {
  for (const auto& route : routes_) {
    route.latency->handler.reset();
    route.latency->server.reset();
  }
}

}  // namespace rapport::http
