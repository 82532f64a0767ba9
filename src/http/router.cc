// Router: picks the most specific route for a path (literal segments beat captures, compared
// left to right), tells 404 from 405, and turns handler exceptions into a logged 500.
#include "http/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>

#include "http/internal.h"

namespace rapport::http {
namespace {

// A path's segments without allocating (dispatch runs for every request):
// "/api/v1/{entity}" -> "api", "v1", "{entity}". A trailing slash yields a trailing empty
// segment, so "/accounts/" does not silently match "/accounts". `count` is the real number of
// segments, which may exceed what is kept: such a path matches no route (add() refuses
// patterns longer than kMaxSegments).
struct PathSegments {
  std::array<std::string_view, Router::kMaxSegments> at;
  std::size_t count = 0;
};

PathSegments split_path(std::string_view path) {
  PathSegments out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return out;
  for (;;) {
    auto slash = path.find('/');
    if (out.count < out.at.size()) out.at[out.count] = path.substr(0, slash);
    ++out.count;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_capture(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

Response default_fallback(Request&, bool method_not_allowed) {
  if (method_not_allowed) return detail::problem(405, "Method Not Allowed", "method_not_allowed");
  return detail::problem(404, "Not Found", "not_found");
}

Response internal_error() { return detail::problem(500, "Internal Server Error", "internal"); }

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler, Lane lane) {
  const PathSegments split = split_path(pattern);
  if (split.count > kMaxSegments)
    throw std::logic_error("route pattern of more than " + std::to_string(kMaxSegments) +
                           " segments: " + pattern);
  std::vector<std::string> segments(split.at.begin(), split.at.begin() + split.count);
  std::uint32_t captures = 0;
  for (std::size_t i = 0; i < segments.size(); ++i)
    if (is_capture(segments[i])) captures |= std::uint32_t{1} << i;
  // Only reads may be tried in place: a deferred request runs again from the start.
  if (method != "GET" && method != "HEAD") lane = Lane::kWorker;
  routes_.push_back(Route{std::move(method), std::move(pattern), std::move(segments), captures,
                          std::move(handler), lane, std::make_unique<RouteLatency>()});
  // The routes of as many segments, most specific first: at the first position where two
  // differ in kind, the literal one goes first (equal kinds: registration order). The first
  // route of a bucket that matches a path and its method is then the most specific one.
  const std::size_t n = routes_.back().segments.size();
  if (by_count_.size() <= n) by_count_.resize(n + 1);
  auto& bucket = by_count_[n];
  bucket.push_back(routes_.size() - 1);
  std::stable_sort(bucket.begin(), bucket.end(), [this](std::size_t a, std::size_t b) {
    const std::uint32_t x = routes_[a].captures;
    const std::uint32_t y = routes_[b].captures;
    const std::uint32_t diff = x ^ y;
    return diff != 0 && (x & (diff & (~diff + 1))) == 0;
  });
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
  const PathSegments path = split_path(req.path);
  // Whether `route` (of path.count segments) matches; literals compared last to first, where
  // routes of a bucket mostly differ.
  auto matches = [&path](const Route& route) {
    for (std::size_t i = path.count; i-- > 0;) {
      if (route.captures & (std::uint32_t{1} << i)) {
        if (path.at[i].empty()) return false;
      } else if (route.segments[i] != path.at[i]) {
        return false;
      }
    }
    return true;
  };
  const Route* best = nullptr;
  const Route* best_get = nullptr;  // HEAD is answered by the GET route when there is no HEAD one
  bool any = false;                 // some route matches the path, whatever its method
  if (req.route != 0 && req.route <= routes_.size()) {
    best = &routes_[req.route - 1];  // matched by the in-place try of this request
  } else if (path.count < by_count_.size()) {
    for (std::size_t index : by_count_[path.count]) {
      const Route& route = routes_[index];
      if (!matches(route)) continue;
      any = true;
      if (route.method == req.method) {
        best = &route;  // the bucket is ordered most specific first
        break;
      }
      if (best_get == nullptr && route.method == "GET" && req.method == "HEAD") best_get = &route;
    }
  }
  if (best == nullptr) best = best_get;
  if (best != nullptr) req.route = static_cast<std::uint32_t>(best - routes_.data()) + 1;
  if (req.in_place &&
      (best == nullptr || best->lane != Lane::kIoThread ||
       (req.method != "GET" && req.method != "HEAD") || !best->latency->try_in_place())) {
    return Response::deferred();
  }

  try {
    if (best == nullptr) {
      const bool method_not_allowed = any;
      std::string allow;  // for the Allow header of a 405: the methods of the path's routes
      if (method_not_allowed) {
        for (std::size_t index : by_count_[path.count]) {
          const Route& route = routes_[index];
          if (!matches(route)) continue;
          if (allow.find(route.method) == std::string::npos) {
            allow += allow.empty() ? "" : ", ";
            allow += route.method;
          }
        }
      }
      Response res = fallback_ ? fallback_(req, method_not_allowed)
                               : default_fallback(req, method_not_allowed);
      if (method_not_allowed) res.set_header("Allow", allow);
      return res;
    }
    req.params.clear();
    for (std::size_t i = 0; i < path.count; ++i) {
      const auto& segment = best->segments[i];
      if (best->captures & (std::uint32_t{1} << i)) {
        req.params.emplace_back(segment.substr(1, segment.size() - 2), std::string(path.at[i]));
      }
    }
    const auto began = std::chrono::steady_clock::now();
    struct Timer {  // records on every way out, a throwing handler included
      const Route& route;
      const Request& req;
      std::chrono::steady_clock::time_point began;
      bool deferred = false;  // not answered here: the pool's run is the one recorded
      bool later = false;     // answered later: record_later_answer records it
      ~Timer() {
        if (req.in_place) route.latency->count_try(deferred);
        if (deferred) {
          route.latency->deferred.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        if (later) return;
        const auto done = std::chrono::steady_clock::now();
        route.latency->handler.record(done - began);
        if (req.received != std::chrono::steady_clock::time_point{})
          route.latency->server.record(done - req.received);
      }
    } timer{*best, req, began};
    req.handler_began = began;
    Response res = best->handler(req);
    timer.deferred = res.defer;
    timer.later = res.later;
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

void Router::record_later_answer(const Request& req) const {
  if (req.route == 0 || req.route > routes_.size()) return;
  const Route& route = routes_[req.route - 1];
  const auto done = std::chrono::steady_clock::now();
  route.latency->handler.record(done - req.handler_began);
  if (req.received != std::chrono::steady_clock::time_point{})
    route.latency->server.record(done - req.received);
}

std::vector<Router::RouteLatencySummary> Router::latency() const {
  std::vector<RouteLatencySummary> out;
  for (const auto& route : routes_) {
    auto handler = route.latency->handler.summary();
    if (handler.count == 0) continue;
    out.push_back({route.method, route.pattern, handler, route.latency->server.summary(),
                   route.latency->deferred.load(std::memory_order_relaxed)});
  }
  return out;
}

void Router::reset_latency() const {
  for (const auto& route : routes_) {
    route.latency->handler.reset();
    route.latency->server.reset();
    route.latency->deferred.store(0, std::memory_order_relaxed);
  }
}

}  // namespace rapport::http
