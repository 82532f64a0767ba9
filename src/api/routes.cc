// /api/v1 handlers: auth, metadata, generic records, search, export, history, events.
#include "api/routes.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "api/problem.h"
#include "base/heap.h"
#include "core/csv.h"
#include "record/duplicates.h"
#include "record/import.h"

namespace rapport::api {

namespace {

constexpr const char* kSessionCookie = "rapport_session";
// Read your own writes with read replicas: the commit position of the caller's last write,
// sent back by the client (cookie, or header for API clients) to any server.
constexpr const char* kReadAfterCookie = "rapport_read_after";
constexpr const char* kReadAfterHeader = "Rapport-Read-After";
// Debug aid on GET answers when replicas are configured: "replica" or "primary".
constexpr const char* kReadFromHeader = "Rapport-Read-From";

// The request being handled on this thread: its read routing and who made it.
struct RequestState {
  storage::ReadRouting routing;
  std::int64_t user_id = 0;
  bool primary_only = false;  // a retry after a replica failed
};
thread_local RequestState* t_request = nullptr;

// Last commit position per user in this process, for clients that send neither the cookie
// nor the header back (bounded by the number of users).
class Positions {
 public:
  std::uint64_t get(std::int64_t user) {
    std::lock_guard lock(mu_);
    auto it = map_.find(user);
    return it == map_.end() ? 0 : it->second;
  }
  void raise(std::int64_t user, std::uint64_t position) {
    std::lock_guard lock(mu_);
    auto& p = map_[user];
    p = std::max(p, position);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::int64_t, std::uint64_t> map_;
};
Positions& positions() {
  static Positions p;
  return p;
}

std::uint64_t parse_position(std::string_view s) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  return ec == std::errc() && ptr == s.data() + s.size() ? v : 0;
}

std::string format_position(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%" PRIx64, v);
  return buf;
}

std::string cookie(const http::Request& req, std::string_view name) {
  const std::string* h = req.header("cookie");
  if (!h) return {};
  std::string_view s = *h;
  while (!s.empty()) {
    size_t semi = s.find(';');
    std::string_view part = s.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    s = semi == std::string_view::npos ? std::string_view{} : s.substr(semi + 1);
  }
  return {};
}

std::string query_param(const http::Request& req, std::string_view name, bool* bad = nullptr) {
  const auto& q = req.query_params();
  if (!q.ok()) {
    if (bad) *bad = true;
    return {};
  }
  for (const auto& [k, v] : *q)
    if (k == name) return v;
  return {};
}

// Who is calling: bearer token or session cookie (with CSRF check on writes).
Result<access::Principal> authenticate(Services& s, const http::Request& req,
                                       bool allow_query_token = false) {
  if (const std::string* auth = req.header("authorization")) {
    if (auth->rfind("Bearer ", 0) != 0)
      return make_error(Errc::kUnauthenticated, "Authorization must be \"Bearer <token>\"");
    return s.auth.from_bearer(std::string_view(*auth).substr(7));
  }
  if (allow_query_token) {
    std::string token = query_param(req, "token");
    if (!token.empty()) return s.auth.from_bearer(token);
  }
  std::string session = cookie(req, kSessionCookie);
  if (session.empty()) return make_error(Errc::kUnauthenticated, "log in or send an API token");
  RP_ASSIGN(access::Principal p, s.auth.from_session(session));
  if (req.method != "GET" && req.method != "HEAD") {
    const std::string* csrf = req.header("x-csrf-token");
    if (!csrf || *csrf != p.csrf_token)
      return make_error(Errc::kCsrf, "missing or wrong X-CSRF-Token header", "X-CSRF-Token");
  }
  return p;
}

// authenticate(), then: the rest of a GET may read from a replica that has replayed the
// caller's last write (authentication itself always reads the primary: revoked sessions and
// tokens, changed roles apply at once).
Result<access::Principal> authenticate_request(Services& s, const http::Request& req,
                                               bool allow_query_token = false) {
  // Handed on as it is (not unpacked and packed again: a Principal is a few strings).
  Result<access::Principal> p = authenticate(s, req, allow_query_token);
  if (p.ok() && t_request != nullptr && s.records.store().has_replicas()) {
    t_request->user_id = p->user_id;
    t_request->routing.after = std::max(t_request->routing.after, positions().get(p->user_id));
    t_request->routing.replica_allowed =
        !t_request->primary_only && (req.method == "GET" || req.method == "HEAD");
  }
  return p;
}

Result<std::int64_t> parse_id(std::string_view s) {
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || ptr != s.data() + s.size() || id <= 0)
    return make_error(Errc::kNotFound, "no record with id " + std::string(s));
  return id;
}

Result<std::shared_ptr<const schema::Entity>> entity_of(Services& s, const http::Request& req) {
  auto e = s.registry.by_plural(req.param("entity"));
  if (!e) return make_error(Errc::kNotFound, "no collection " + std::string(req.param("entity")));
  return e;
}

// A file download: the body with its type and the name the browser saves it under.
http::Response download(std::string content_type, const std::string& filename, std::string body) {
  http::Response r;
  r.content_type = std::move(content_type);
  r.set_header("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  r.body = std::move(body);
  return r;
}

http::Response record_response(record::RecordResult&& r) {
  http::Response resp = json_response(r.status, std::move(r.body));
  resp.headers.reserve(2);  // and the server's Vary (maybe_gzip): one allocation, not two
  resp.set_header("ETag", "\"" + std::to_string(r.version) + "\"");
  return resp;
}

// 201 with the new record, its Location and (when the entity checks duplicates) their count.
http::Response created_response(const schema::Entity& e, record::RecordResult&& r) {
  const bool dedupe_checked = r.dedupe_checked;
  const std::size_t duplicates = r.duplicates.size();
  const std::int64_t created = r.id;
  http::Response resp = record_response(std::move(r));
  resp.set_header("Location", "/api/v1/" + e.plural + "/" + std::to_string(created));
  if (dedupe_checked) resp.set_header("X-Rapport-Duplicates", std::to_string(duplicates));
  return resp;
}

// The problem+json of a failed request, logged when it is the server's fault (as guarded()).
http::Response logged_problem(const http::Request& req, const Error& e) {
  if (http_status(e.code) >= 500)
    spdlog::error("[{}] {} {}: {} ({})", req.request_id, req.method, req.path, e.message,
                  errc_name(e.code));
  return problem(e);
}

std::string user_json(const access::Principal& p, const std::string& csrf,
                      const schema::Registry& registry) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("user");
  w.StartObject();
  w.Key("id");
  w.String(std::to_string(p.user_id));
  w.Key("username");
  w.String(p.username);
  w.Key("display_name");
  w.String(p.display_name);
  w.Key("team_id");
  if (p.team_id)
    w.String(std::to_string(p.team_id));
  else
    w.Null();
  w.Key("role");
  w.String(p.role ? p.role->name : "");
  w.Key("is_admin");
  w.Bool(p.is_admin());
  w.EndObject();
  w.Key("csrf_token");
  w.String(csrf);
  // What the UI may offer: per entity, create and the scopes of read/update/delete.
  w.Key("permissions");
  w.StartObject();
  w.Key("entities");
  w.StartObject();
  for (const auto& e : registry.all()) {
    json::key(w, e->name);
    w.StartObject();
    w.Key("create");
    w.Bool(access::can_create(p, e->name));
    w.Key("read");
    w.String(access::scope_name(access::scope_for(p, e->name, access::Op::kRead)));
    w.Key("update");
    w.String(access::scope_name(access::scope_for(p, e->name, access::Op::kUpdate)));
    w.Key("delete");
    w.String(access::scope_name(access::scope_for(p, e->name, access::Op::kDelete)));
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// Wraps a handler body that may fail: Result<Response> → Response.
template <typename F>
http::Handler guarded(Services s, F f) {
  return [s, f](http::Request& req) mutable -> http::Response {
    // The query string is checked once for every endpoint (malformed escapes, parameters that
    // are not UTF-8), whether or not the handler reads it.
    if (!req.query.empty()) {
      if (const auto& q = req.query_params(); !q.ok()) return problem(q.error());
    }
    const bool replicas = s.records.store().has_replicas();
    RequestState state;
    if (replicas) {
      state.routing.after = parse_position(cookie(req, kReadAfterCookie));
      if (const std::string* h = req.header("rapport-read-after"))
        state.routing.after = std::max(state.routing.after, parse_position(*h));
    }
    // A GET's reads (authentication included) share one transaction.
    const bool reading = req.method == "GET" || req.method == "HEAD";
    state.routing.share_reads = reading;
    // Tried on an I/O thread: the store refuses whatever would wait (a busy reader pool, the
    // network), and then the whole request runs again on a worker, whatever it answered here.
    state.routing.no_wait = req.in_place;
    t_request = &state;
    Result<http::Response> r = [&] {
      storage::ScopedReadRouting scope(state.routing);
      return f(s, req);
    }();
    if (state.routing.would_wait) {
      t_request = nullptr;
      return http::Response::deferred();
    }
    bool from_replica = state.routing.replica_reads > 0;
    if (!r.ok() && from_replica && http_status(r.error().code) >= 500) {
      // A replica failed (went away, conflict with recovery, not yet replayed a new column):
      // a GET changes nothing, so it is answered again from the primary alone.
      spdlog::warn("[{}] {} {} failed on a read replica ({}); retried on the primary",
                   req.request_id, req.method, req.path, r.error().message);
      RequestState retry;
      retry.user_id = state.user_id;
      retry.routing.after = state.routing.after;
      retry.primary_only = true;
      retry.routing.share_reads = reading;
      t_request = &retry;
      {
        storage::ScopedReadRouting scope(retry.routing);
        r = f(s, req);
      }
      state.routing.committed = std::max(state.routing.committed, retry.routing.committed);
      from_replica = false;
    }
    t_request = nullptr;
    if (replicas) {
      const std::uint64_t committed = state.routing.committed;
      if (committed > 0 && state.user_id != 0) positions().raise(state.user_id, committed);
      http::Response resp = r.ok() ? std::move(r).value() : problem(r.error());
      if (committed > 0) {
        const std::string pos = format_position(std::max(committed, state.routing.after));
        resp.set_header(kReadAfterHeader, pos);
        resp.set_header("Set-Cookie", std::string(kReadAfterCookie) + "=" + pos +
                                          "; HttpOnly; SameSite=Lax; Path=/");
      }
      if (req.method == "GET" || req.method == "HEAD")
        resp.set_header(kReadFromHeader, from_replica ? "replica" : "primary");
      if (!r.ok() && http_status(r.error().code) >= 500)
        spdlog::error("[{}] {} {}: {} ({})", req.request_id, req.method, req.path,
                      r.error().message, errc_name(r.error().code));
      return resp;
    }
    if (r.ok()) return std::move(r).value();
    return logged_problem(req, r.error());
  };
}

void write_latency(json::Writer& w, const http::LatencyHistogram::Summary& h) {
  w.StartObject();
  w.Key("p50_ms");
  w.Double(h.p50_ms);
  w.Key("p90_ms");
  w.Double(h.p90_ms);
  w.Key("p99_ms");
  w.Double(h.p99_ms);
  w.Key("max_ms");
  w.Double(h.max_ms);
  w.Key("mean_ms");
  w.Double(h.mean_ms);
  w.EndObject();
}

std::string latency_json(const std::vector<http::Router::RouteLatencySummary>& routes) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("routes");
  w.StartArray();
  for (const auto& r : routes) {
    w.StartObject();
    w.Key("method");
    w.String(r.method);
    w.Key("route");
    w.String(r.pattern);
    w.Key("count");
    w.Uint64(r.handler.count);
    w.Key("handler");
    write_latency(w, r.handler);
    w.Key("server");
    write_latency(w, r.server);
    w.Key("deferred");  // in-place tries (quick reads) that ran again on a worker
    w.Uint64(r.deferred);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<record::ListParams> list_params(const http::Request& req) {
  const auto& q = req.query_params();
  if (!q.ok()) return q.error();
  record::ListParams lp;
  for (const auto& [k, v] : *q) {
    if (k == "filter")
      lp.filter = v;
    else if (k == "sort")
      lp.sort = v;
    else if (k == "cursor")
      lp.cursor = v;
    else if (k == "fields")
      lp.fields = v;
    else if (k == "q")
      lp.q = v;
    else if (k == "deleted")
      lp.deleted = v == "true" || v == "1";
    else if (k == "limit") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || ptr != v.data() + v.size())
        return make_error(Errc::kBadRequest, "limit must be an integer", "limit");
      lp.limit = n;
    } else {
      return make_error(Errc::kBadRequest, "unknown query parameter " + k, k);
    }
  }
  return lp;
}

}  // namespace

std::string ws_envelope(const record::Event& e) {
  // entity \t owner \t team \t json — lets each subscriber's filter decide without parsing JSON.
  return e.entity + "\t" + std::to_string(e.owner_id) + "\t" + std::to_string(e.team_id) + "\t" +
         record::event_json(e);
}

std::string ws_broadcast_envelope(std::string_view json) { return "\t0\t0\t" + std::string(json); }

void register_routes(http::Router& router, Services services) {
  const std::string v1 = "/api/v1";

  router.add("POST", v1 + "/auth/login",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(json::Document body, json::parse_body(req.body));
               const json::Value* u = json::member(body, "username");
               const json::Value* pw = json::member(body, "password");
               if (!u || !u->IsString() || u->GetStringLength() == 0)
                 return make_error(Errc::kValidation, "username is required", "username");
               if (!pw || !pw->IsString() || pw->GetStringLength() == 0)
                 return make_error(Errc::kValidation, "password is required", "password");
               RP_ASSIGN(access::Session session,
                         s.auth.login(u->GetString(), pw->GetString(), req.remote_addr));
               http::Response r =
                   json_response(200, user_json(session.principal, session.csrf_token, s.registry));
               r.set_header("Set-Cookie", std::string(kSessionCookie) + "=" + session.token +
                                              "; HttpOnly; SameSite=Lax; Path=/; Max-Age=" +
                                              std::to_string(access::kSessionLifetimeMs / 1000));
               return r;
             }));

  router.add("POST", v1 + "/auth/logout",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               (void)p;
               std::string session = cookie(req, kSessionCookie);
               if (!session.empty()) RP_TRY(s.auth.logout(session));
               http::Response r;
               r.status = 204;
               r.set_header("Set-Cookie", std::string(kSessionCookie) +
                                              "=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
               return r;
             }));

  // Ends API tokens: every token of a user, or those of one name. Administrators revoke anyone's,
  // others their own. Takes effect at once on every server (cached principals are forgotten).
  router.add("POST", v1 + "/auth/revoke-tokens",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(json::Document body, json::parse_body(req.body));
               const json::Value* uid = json::member(body, "user_id");
               std::int64_t user_id = 0;
               if (uid && uid->IsInt64()) user_id = uid->GetInt64();
               if (uid && uid->IsString()) {
                 std::string_view t(uid->GetString(), uid->GetStringLength());
                 auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), user_id);
                 if (ec != std::errc() || ptr != t.data() + t.size()) user_id = 0;
               }
               if (user_id <= 0)
                 return make_error(Errc::kValidation, "user_id must be a user's id", "user_id");
               std::string name;
               if (const json::Value* n = json::member(body, "name")) {
                 if (!n->IsString())
                   return make_error(Errc::kValidation, "name must be a string", "name");
                 name.assign(n->GetString(), n->GetStringLength());
               }
               if (!p.is_admin() && user_id != p.user_id)
                 return make_error(Errc::kForbidden,
                                   "only administrators revoke other users' tokens", "user_id");
               RP_ASSIGN(std::int64_t revoked, s.auth.revoke_tokens(user_id, name));
               return json_response(200, "{\"revoked\":" + std::to_string(revoked) + "}");
             }));

  router.add("GET", v1 + "/auth/me",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               return json_response(200, user_json(p, p.csrf_token, s.registry));
             }));

  router.add("GET", v1 + "/metadata",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               return json_response(200, s.records.metadata_json(p));
             }));

  router.add("POST", v1 + "/metadata/{entity}/fields",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(std::string field,
                         s.records.add_custom_field(p, req.param("entity"), req.body));
               return json_response(201, std::move(field));
             }));

  router.add("GET", v1 + "/openapi.json",
             guarded(services, [](Services& s, http::Request&) -> Result<http::Response> {
               return json_response(200, openapi_json(s.registry, s.actions));
             }));

  router.add(
      "GET", v1 + "/search",
      guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
        RP_ASSIGN(access::Principal p, authenticate_request(s, req));
        bool bad = false;
        std::string q = query_param(req, "q", &bad);
        if (bad)
          return make_error(Errc::kBadRequest, "query string has malformed percent-encoding");
        std::string limit_s = query_param(req, "limit");
        int limit = 20;
        if (!limit_s.empty()) {
          auto [ptr, ec] = std::from_chars(limit_s.data(), limit_s.data() + limit_s.size(), limit);
          if (ec != std::errc() || ptr != limit_s.data() + limit_s.size())
            return make_error(Errc::kBadRequest, "limit must be an integer", "limit");
        }
        RP_ASSIGN(std::string out, s.records.search(p, q, query_param(req, "entity"), limit));
        return json_response(200, std::move(out));
      }));

  // Server-side latency per route since start-up or the last reset (administrators only):
  // what the benchmark reports beside wrk's client-side figures.
  router.add(
      "GET", v1 + "/admin/latency",
      guarded(services, [&router](Services& s, http::Request& req) -> Result<http::Response> {
        RP_ASSIGN(access::Principal p, authenticate_request(s, req));
        if (!p.is_admin())
          return make_error(Errc::kForbidden,
                            "only administrators may read the server's latency figures");
        return json_response(200, latency_json(router.latency()));
      }));
  // The server's memory (administrators only): its resident set and what the store's caches
  // hold against their bound, so that a soak test can tell caches filling from a leak; the
  // search answer and list page caches (serve --search-cache-mib, --page-cache-mib) likewise,
  // with their hits; the record text cache (--list-cache-mib: its bytes, of them list pages'
  // records', hits and misses) and how many list pages copied their records from it or were
  // read whole (RowJsonCache); and which heap
  // allocator it runs on (tcmalloc, linked where installed, or glibc's).
  router.add(
      "GET", v1 + "/admin/memory",
      guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
        RP_ASSIGN(access::Principal p, authenticate_request(s, req));
        if (!p.is_admin())
          return make_error(Errc::kForbidden,
                            "only administrators may read the server's memory figures");
        long pages = 0, resident = 0;
        if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
          if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
          std::fclose(f);
        }
        auto cache = s.records.store().cache_memory();
        return json_response(
            200,
            "{\"rss_bytes\":" + std::to_string(resident * ::sysconf(_SC_PAGESIZE)) +
                ",\"store_cache_bytes\":" + std::to_string(cache.used) +
                ",\"store_cache_bound_bytes\":" + std::to_string(cache.bound) +
                ",\"store_map_bound_bytes\":" + std::to_string(cache.mapped) +
                ",\"search_cache_bytes\":" + std::to_string(s.records.search_cache_used_bytes()) +
                ",\"search_cache_bound_bytes\":" +
                std::to_string(s.records.search_cache_bound_bytes()) +
                ",\"search_cache_hits\":" + std::to_string(s.records.search_cache_hits()) +
                ",\"page_cache_bytes\":" + std::to_string(s.records.page_cache_used_bytes()) +
                ",\"page_cache_bound_bytes\":" +
                std::to_string(s.records.page_cache_bound_bytes()) +
                ",\"page_cache_hits\":" + std::to_string(s.records.page_cache_hits()) +
                ",\"record_cache_bytes\":" + std::to_string(s.records.list_cache().bytes()) +
                ",\"record_cache_bound_bytes\":" +
                std::to_string(s.records.options().list_cache_bytes) +
                ",\"record_cache_list_bytes\":" +
                std::to_string(s.records.list_cache().list_bytes()) +
                ",\"record_cache_hits\":" + std::to_string(s.records.list_cache().hits()) +
                ",\"record_cache_misses\":" + std::to_string(s.records.list_cache().misses()) +
                ",\"list_pages_copied\":" + std::to_string(s.records.list_cache().narrow_pages()) +
                ",\"list_pages_read_whole\":" +
                std::to_string(s.records.list_cache().whole_pages()) + ",\"allocator\":\"" +
                std::string(heap::allocator()) + "\"}");
      }));
  // The store's durable write path (administrators only; Store::WriteStats): group commits,
  // the writes they made durable, the writer's busy time, its WAL syncs and their time, so that
  // a benchmark can tell creates per batch and what a batch costs from the machine's load.
  router.add("GET", v1 + "/admin/writes",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               if (!p.is_admin())
                 return make_error(Errc::kForbidden,
                                   "only administrators may read the server's write figures");
               const auto w = s.records.store().write_stats();
               return json_response(
                   200, "{\"backend\":\"" + std::string(s.records.store().backend_name()) +
                            "\",\"batches\":" + std::to_string(w.batches) +
                            ",\"committed\":" + std::to_string(w.committed) +
                            ",\"busy_ns\":" + std::to_string(w.busy_ns) +
                            ",\"busy_cpu_ns\":" + std::to_string(w.busy_cpu_ns) +
                            ",\"commit_ns\":" + std::to_string(w.commit_ns) +
                            ",\"wal_syncs\":" + std::to_string(w.wal_syncs) +
                            ",\"wal_sync_ns\":" + std::to_string(w.wal_sync_ns) +
                            ",\"sync_wait_ns\":" + std::to_string(w.sync_wait_ns) + "}");
             }));
  router.add(
      "DELETE", v1 + "/admin/latency",
      guarded(services, [&router](Services& s, http::Request& req) -> Result<http::Response> {
        RP_ASSIGN(access::Principal p, authenticate_request(s, req));
        if (!p.is_admin())
          return make_error(Errc::kForbidden,
                            "only administrators may reset the server's latency figures");
        router.reset_latency();
        http::Response r;
        r.status = 204;
        return r;
      }));

  // Module actions (phone lookup, customer 360, …): same authentication and error mapping as
  // every route; literal path segments make them win over the generic {entity} routes.
  if (services.actions) {
    for (const auto& action : services.actions->all()) {
      const record::Action* a = &action;
      router.add(
          a->method, v1 + a->path,
          guarded(services, [a](Services& s, http::Request& req) -> Result<http::Response> {
            RP_ASSIGN(access::Principal p, authenticate_request(s, req));
            const auto& query = req.query_params();
            if (!query.ok()) return query.error();
            record::ActionRequest ar{p, req.params, *query, req.body};
            auto out = a->handler(ar);
            if (!out.ok() && out.error().code == Errc::kNotFound && a->method == "GET" &&
                !a->entity.empty()) {
              // A merged record's id resolves to the survivor, as GET /{plural}/{id}
              // does: 308 to the same action on it.
              auto e = s.registry.get(a->entity);
              auto id = parse_id(ar.param("id"));
              if (e && id.ok()) {
                RP_ASSIGN(auto survivor, record::Deduper(s.records).merged_into(p, *e, *id));
                if (survivor) {
                  std::string to = std::to_string(*survivor), path = a->path;
                  path.replace(path.find("{id}"), 4, to);
                  http::Response moved = json_response(308, "{\"merged_into\":\"" + to + "\"}");
                  moved.set_header("Location",
                                   "/api/v1" + path + (req.query.empty() ? "" : "?" + req.query));
                  return moved;
                }
              }
            }
            RP_ASSIGN(std::string body, std::move(out));
            return json_response(a->status, std::move(body));
          }));
      if (a->quick) router.set_lane(a->method, v1 + a->path, http::Lane::kIoThread);
    }
  }

  router.add("GET", v1 + "/{entity}",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               RP_ASSIGN(record::ListParams lp, list_params(req));
               RP_ASSIGN(std::string out, s.records.list(p, *e, lp));
               return json_response(200, std::move(out));
             }));

  router.add("POST", v1 + "/{entity}",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               const std::string* key = req.header("idempotency-key");
               // ?dedupe=block refuses a likely duplicate (409 duplicate); warn is the default.
               bool bad = false;
               std::string dedupe = query_param(req, "dedupe", &bad);
               if (bad || (!dedupe.empty() && dedupe != "warn" && dedupe != "block"))
                 return make_error(Errc::kBadRequest, "dedupe must be warn or block", "dedupe");
               const auto mode =
                   dedupe == "block" ? record::DedupeMode::kBlock : record::DedupeMode::kWarn;
               const std::string_view idempotency_key = key ? std::string_view(*key) : "";
               if (req.answer_later && !s.records.store().has_replicas()) {
                 // Answered by the thread that ran the create's group COMMIT (or at once):
                 // no worker waits for it. (With read replicas the answer carries the
                 // commit's position, which the synchronous path below sets.)
                 s.records.create_async(std::move(p), *e, req.body, idempotency_key, mode,
                                        [answer = std::move(req.answer_later), e,
                                         request = &req](Result<record::RecordResult> r) {
                                          // `request` lives until `answer` has been called (the
                                          // server holds it).
                                          answer(r.ok() ? created_response(*e, std::move(r).value())
                                                        : logged_problem(*request, r.error()));
                                        });
                 return http::Response::answered_later();
               }
               RP_ASSIGN(record::RecordResult r,
                         s.records.create(p, *e, req.body, idempotency_key, mode));
               return created_response(*e, std::move(r));
             }));

  // Exports of any list: same list query, scope and field permissions as the list. The body is
  // streamed (http::Response::stream): the first page is read here, so errors in fields, filter
  // or sort are answered as problem+json; later pages are read as the body goes out, and a
  // client that disconnects stops the export. A failure after the first byte resets the
  // connection without the last chunk (never a complete-looking file).
  for (const auto& [suffix, type] :
       {std::pair<std::string, std::string>{"csv", "text/csv; charset=utf-8"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"vcf", "text/vcard; charset=utf-8"}}) {
    router.add("GET", v1 + "/{entity}/export." + suffix,
               guarded(services,
                       [suffix, type](Services& s, http::Request& req) -> Result<http::Response> {
                         RP_ASSIGN(access::Principal p, authenticate_request(s, req));
                         RP_ASSIGN(auto e, entity_of(s, req));
                         RP_ASSIGN(record::ListParams lp, list_params(req));
                         RP_ASSIGN(record::RecordService::ExportBody body,
                                   suffix == "csv"    ? s.records.export_csv(p, *e, lp)
                                   : suffix == "xlsx" ? s.records.export_xlsx(p, *e, lp)
                                                      : s.records.export_vcard(p, *e, lp));
                         http::Response r = download(type, e->plural + "." + suffix, {});
                         // `e` is captured: the body reads the entity while it runs.
                         r.stream = [e, body = std::move(body)](
                                        const http::Response::BodyWriter& w) { return body(w); };
                         return r;
                       }));
  }

  // Counts grouped by fields for charts (record/aggregate.cc).
  router.add("GET", v1 + "/{entity}/aggregate",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               const auto& q = req.query_params();
               if (!q)
                 return make_error(Errc::kBadRequest,
                                   "query string has malformed percent-encoding");
               record::RecordService::AggregateParams ap;
               for (const auto& [k, v] : *q) {
                 if (k == "group_by")
                   ap.group_by = v;
                 else if (k == "bucket")
                   ap.bucket = v;
                 else if (k == "filter")
                   ap.filter = v;
                 else if (k == "q")
                   ap.q = v;
                 else
                   return make_error(Errc::kBadRequest, "unknown query parameter " + k, k);
               }
               RP_ASSIGN(std::string out, s.records.aggregate(p, *e, ap));
               return json_response(200, std::move(out));
             }));

  // Import of a CSV or vCard body (record/import.h): dry run or commit, upsert, mapping.
  router.add("POST", v1 + "/{entity}/import",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               const auto& q = req.query_params();
               if (!q.ok()) return q.error();
               record::ImportRequest ir;
               ir.body = req.body;
               ir.body_file = req.body_file.get();  // an upload's body, spooled by the server
               const std::string* ct = req.header("content-type");
               std::string content_type = ct ? *ct : "";
               std::string lower = content_type;
               std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
               if (lower.rfind("text/vcard", 0) == 0 || lower.rfind("text/x-vcard", 0) == 0 ||
                   lower.rfind("text/directory", 0) == 0)
                 ir.format = record::ImportFormat::kVcard;
               RP_ASSIGN(ir.charset, csv::charset_of_content_type(content_type));
               for (const auto& [k, v] : *q) {
                 if (k == "mode") {
                   if (v != "dry_run" && v != "commit")
                     return make_error(Errc::kBadRequest, "mode must be dry_run or commit", "mode");
                   ir.dry_run = v == "dry_run";
                 } else if (k == "upsert") {
                   ir.upsert = v;
                 } else if (k == "mapping") {
                   ir.mapping_json = v;
                 } else if (k == "template") {
                   ir.template_name = v;
                 } else if (k == "encoding") {
                   RP_ASSIGN(ir.charset, csv::parse_charset(v));
                 } else if (k == "file_name") {
                   ir.file_name = v;
                 } else {
                   return make_error(Errc::kBadRequest, "unknown query parameter " + k, k);
                 }
               }
               record::Importer importer(s.records);
               RP_ASSIGN(std::string out, importer.run(p, *e, ir));
               return json_response(200, std::move(out));
             }));

  router.add("GET", v1 + "/imports/{id}/report.csv",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(std::int64_t id, parse_id(req.param("id")));
               record::Importer importer(s.records);
               RP_ASSIGN(std::string csv, importer.report_csv(p, id));
               return download("text/csv; charset=utf-8",
                               "import-" + std::to_string(id) + "-report.csv", std::move(csv));
             }));

  router.add("GET", v1 + "/{entity}/{id}",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               RP_ASSIGN(std::int64_t id, parse_id(req.param("id")));
               auto got = s.records.get(p, *e, id, query_param(req, "fields"));
               if (!got.ok() && got.error().code == Errc::kNotFound) {
                 // A merged record's id resolves to the survivor: 308 to it.
                 RP_ASSIGN(auto survivor, record::Deduper(s.records).merged_into(p, *e, id));
                 if (survivor) {
                   std::string to = std::to_string(*survivor);
                   http::Response moved = json_response(308, "{\"merged_into\":\"" + to + "\"}");
                   moved.set_header("Location", "/api/v1/" + e->plural + "/" + to +
                                                    (req.query.empty() ? "" : "?" + req.query));
                   return moved;
                 }
               }
               RP_ASSIGN(record::RecordResult r, std::move(got));
               const std::string* inm = req.header("if-none-match");
               if (inm && *inm == "\"" + std::to_string(r.version) + "\"") {
                 http::Response nm;
                 nm.status = 304;
                 nm.set_header("ETag", *inm);
                 return nm;
               }
               return record_response(std::move(r));
             }));
  // Tried on the I/O thread that read the request (Lane::kIoThread), without the hand-off to a
  // worker and back (two thread wake-ups and ~5,600 instructions): a record by id is one or two
  // pages. It goes to a worker when it would wait — every reader connection in use, or a page the
  // kernel does not hold (SQLite: a read with RWF_NOWAIT; at 1M records a record by id is a
  // random page of a file that may be larger than memory, and a disk read on an I/O thread would
  // stall all of its connections), and on PostgreSQL always.
  router.set_lane("GET", v1 + "/{entity}/{id}", http::Lane::kIoThread);

  router.add("PATCH", v1 + "/{entity}/{id}",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               RP_ASSIGN(std::int64_t id, parse_id(req.param("id")));
               std::optional<std::int64_t> if_match;
               if (const std::string* im = req.header("if-match"); im && *im != "*") {
                 std::string_view v = *im;
                 if (v.substr(0, 2) == "W/") v.remove_prefix(2);
                 if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
                   v = v.substr(1, v.size() - 2);
                 std::int64_t n = 0;
                 auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                 if (ec != std::errc() || ptr != v.data() + v.size())
                   return make_error(Errc::kBadRequest, "If-Match must be an ETag from this server",
                                     "If-Match");
                 if_match = n;
               }
               if (req.answer_later && !s.records.store().has_replicas()) {
                 // As a create: answered after its group COMMIT (or at once when refused), no
                 // worker waiting for it; with read replicas the synchronous path below.
                 s.records.update_async(std::move(p), *e, id, req.body, if_match,
                                        [answer = std::move(req.answer_later), e,
                                         request = &req](Result<record::RecordResult> r) {
                                          answer(r.ok() ? record_response(std::move(r).value())
                                                        : logged_problem(*request, r.error()));
                                        });
                 return http::Response::answered_later();
               }
               RP_ASSIGN(record::RecordResult r, s.records.update(p, *e, id, req.body, if_match));
               return record_response(std::move(r));
             }));

  router.add("DELETE", v1 + "/{entity}/{id}",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               RP_ASSIGN(std::int64_t id, parse_id(req.param("id")));
               RP_TRY(s.records.remove(p, *e, id));
               http::Response r;
               r.status = 204;
               return r;
             }));

  router.add("POST", v1 + "/{entity}/{id}/restore",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               RP_ASSIGN(std::int64_t id, parse_id(req.param("id")));
               RP_ASSIGN(record::RecordResult r, s.records.restore(p, *e, id));
               return record_response(std::move(r));
             }));

  router.add("GET", v1 + "/{entity}/{id}/history",
             guarded(services, [](Services& s, http::Request& req) -> Result<http::Response> {
               RP_ASSIGN(access::Principal p, authenticate_request(s, req));
               RP_ASSIGN(auto e, entity_of(s, req));
               RP_ASSIGN(std::int64_t id, parse_id(req.param("id")));
               RP_ASSIGN(std::string out, s.records.history(p, *e, id));
               return json_response(200, std::move(out));
             }));

  router.set_fallback([](http::Request& req, bool method_not_allowed) {
    if (method_not_allowed) {
      // No Errc maps to 405, so the problem body is written here (status must match the reply).
      json::Buffer buf;
      json::Writer w(buf);
      w.StartObject();
      w.Key("type");
      w.String("https://rapport.dev/problems/method_not_allowed");
      w.Key("title");
      w.String("Method Not Allowed");
      w.Key("status");
      w.Int(405);
      w.Key("code");
      w.String("method_not_allowed");
      w.Key("detail");
      w.String(req.method + " is not allowed on " + req.path);
      w.EndObject();
      http::Response r = json_response(405, std::string(buf.GetString(), buf.GetSize()));
      r.content_type = "application/problem+json";
      return r;
    }
    return problem(make_error(Errc::kNotFound, "no route " + req.path));
  });
}

http::WsAcceptor make_ws_acceptor(Services services) {
  return [services](const http::Request& req) mutable -> std::optional<http::WsSubscription> {
    auto p = authenticate(services, req, /*allow_query_token=*/true);
    if (!p.ok()) return std::nullopt;
    auto principal = std::make_shared<const access::Principal>(std::move(p).value());
    http::WsSubscription sub;
    schema::Registry* registry = &services.registry;
    sub.filter = [principal, registry](const std::string& envelope) -> std::optional<std::string> {
      size_t a = envelope.find('\t'), b = envelope.find('\t', a + 1),
             c = envelope.find('\t', b + 1);
      if (a == std::string::npos || b == std::string::npos || c == std::string::npos)
        return std::nullopt;
      if (a == 0) return envelope.substr(c + 1);  // ws_broadcast_envelope: for everyone
      std::string entity = envelope.substr(0, a);
      std::int64_t owner = std::stoll(envelope.substr(a + 1, b - a - 1));
      std::int64_t team = std::stoll(envelope.substr(b + 1, c - b - 1));
      access::Scope scope = access::scope_for(*principal, entity, access::Op::kRead);
      if (!access::in_scope(*principal, scope, owner, team)) return std::nullopt;
      // Field names the subscriber may not read are left out of "changed", as everywhere else.
      auto e = registry->get(entity);
      if (!e || std::none_of(e->fields.begin(), e->fields.end(), [&](const schema::Field& f) {
            return access::field_access(*principal, *e, f) == access::FieldAccess::kHidden;
          }))
        return envelope.substr(c + 1);
      auto doc = json::parse(std::string_view(envelope).substr(c + 1));
      if (!doc.ok()) return std::nullopt;
      if (auto it = doc->FindMember("changed"); it != doc->MemberEnd() && it->value.IsArray()) {
        json::Value kept(rapidjson::kArrayType);
        for (auto& name : it->value.GetArray()) {
          const schema::Field* f = name.IsString() ? e->field(name.GetString()) : nullptr;
          if (!f || access::field_access(*principal, *e, *f) != access::FieldAccess::kHidden)
            kept.PushBack(name, doc->GetAllocator());
        }
        it->value = kept;
      }
      return json::stringify(*doc);
    };
    return sub;
  };
}

}  // namespace rapport::api
