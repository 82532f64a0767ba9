// Passwords, sessions, API tokens and principals, stored through the Store interface.
#include "access/auth.h"

#include <sodium.h>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace rapport::access {

using storage::SqlValue;

std::vector<storage::Migration> migrations() {
  return {
      {1,
       "access tables",
       {"CREATE TABLE auth_credential (user_id INTEGER PRIMARY KEY, password_hash TEXT NOT NULL, "
        "updated_at INTEGER NOT NULL)",
        "CREATE TABLE auth_session (token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, "
        "csrf_token TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
        "CREATE INDEX auth_session_user ON auth_session (user_id)",
        "CREATE TABLE api_token (token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, "
        "name TEXT, created_at INTEGER NOT NULL)"}},
      // Versions 2-4 are the record layer's.
      {5,
       "login failures",
       {"CREATE TABLE auth_failure (key TEXT NOT NULL, at INTEGER NOT NULL)",
        "CREATE INDEX auth_failure_key ON auth_failure (key, at)"}}};
}

namespace {
bool sodium_ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}
std::string to_hex(const unsigned char* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}
std::int64_t as_int(const SqlValue& v) {
  return std::holds_alternative<std::int64_t>(v) ? std::get<std::int64_t>(v) : 0;
}
std::string as_text(const SqlValue& v) {
  return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : std::string();
}

std::atomic<std::uint64_t> g_auth_services{0};

// The credential this thread last answered from an AuthService's cache, with that cache entry's
// generation and time limit. Most requests carry the same credential as the one before on the
// same thread (an integration's token, a browser's session cookie), and
// AuthService::last_of_thread() answers them without hashing the token (BLAKE2b, ~1,000
// instructions) or the cache's lock and lookup.
struct LastCredential {
  std::uint64_t service = 0;  // AuthService::instance_; 0: none yet
  char kind = 0;              // CacheKey::kind
  std::string token;
  std::uint64_t generation = 0;
  Millis valid_until = 0;
  Principal principal;
};
thread_local LastCredential t_last_credential;

// Whether a and b (of equal length) are equal, in a time that depends on their length only:
// eight bytes at a time (sodium_memcmp compares byte by byte, ~8 instructions a byte).
bool same_bytes(const char* a, const char* b, std::size_t n) {
  std::uint64_t diff = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    diff |= x ^ y;
  }
  for (; i < n; ++i) diff |= static_cast<std::uint64_t>(static_cast<unsigned char>(a[i] ^ b[i]));
  // Keeps the compiler from ending the loop at the first difference it could otherwise see.
  asm volatile("" : "+r"(diff));
  return diff == 0;
}
}  // namespace

AuthService::AuthService(storage::Store& store, const Clock& clock)
    : store_(store), clock_(clock), instance_(g_auth_services.fetch_add(1) + 1) {}

Result<std::string> hash_password(std::string_view password) {
  if (!sodium_ready()) return make_error(Errc::kInternal, "libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  // Interactive limits: ~50 ms and 64 MiB on the reference machine.
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    return make_error(Errc::kInternal, "out of memory while hashing a password");
  return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) {
  if (!sodium_ready()) return false;
  std::string h(hash);
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

std::string random_token(int bytes) {
  sodium_ready();
  std::vector<unsigned char> buf(bytes);
  randombytes_buf(buf.data(), buf.size());
  return to_hex(buf.data(), buf.size());
}

TokenDigest token_digest(std::string_view token) {
  sodium_ready();
  TokenDigest out;
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return out;
}

std::string token_hash(const TokenDigest& digest) { return to_hex(digest.data(), digest.size()); }

std::string token_hash(std::string_view token) { return token_hash(token_digest(token)); }

Result<bool> AuthService::throttled(storage::Tx& tx, const std::string& key, Millis now) {
  SqlValue p[] = {key, now - kLoginFailureWindowMs};
  RP_ASSIGN(auto rows, tx.query("SELECT COUNT(*) FROM auth_failure WHERE key = ? AND at > ?", p));
  return !rows.rows.empty() && as_int(rows.rows[0][0]) >= kMaxLoginFailures;
}

Status AuthService::record_failures(const std::vector<std::string>& keys, Millis now) {
  RP_ASSIGN(auto tx, store_.write());
  for (const auto& key : keys) {
    SqlValue p[] = {key, now};
    RP_TRY(tx->exec("INSERT INTO auth_failure (key, at) VALUES (?, ?)", p));
  }
  SqlValue old[] = {now - kLoginFailureWindowMs};
  RP_TRY(tx->exec("DELETE FROM auth_failure WHERE at <= ?", old));
  return tx->commit();
}

Result<Session> AuthService::login(std::string_view username, std::string_view password,
                                   std::string_view remote_addr) {
  Millis now = clock_.now_ms();
  std::string user_key = "u:" + std::string(username);
  std::string addr_key = "a:" + std::string(remote_addr);
  std::int64_t user_id = 0;
  std::string hash;
  {
    RP_ASSIGN(auto tx, store_.read());
    RP_ASSIGN(bool user_throttled, throttled(*tx, user_key, now));
    RP_ASSIGN(bool addr_throttled, throttled(*tx, addr_key, now));
    if (user_throttled || addr_throttled)
      return make_error(Errc::kRateLimited, "too many failed logins; try again in 15 minutes");
    SqlValue p[] = {std::string(username)};
    RP_ASSIGN(auto rows,
              tx->query("SELECT u.id, c.password_hash FROM \"user\" u JOIN auth_credential c ON "
                        "c.user_id = u.id WHERE u.username = ? AND u.deleted_at IS NULL AND "
                        "(u.active IS NULL OR u.active = 1)",
                        p));
    if (!rows.rows.empty()) {
      user_id = as_int(rows.rows[0][0]);
      hash = as_text(rows.rows[0][1]);
    }
  }
  // Verify against a dummy hash when the user is unknown so timing does not reveal names.
  static const std::string kDummy = hash_password("not-a-real-password").value();
  bool ok = verify_password(hash.empty() ? kDummy : hash, password) && user_id != 0;
  if (!ok) {
    RP_TRY(record_failures({user_key, addr_key}, now));
    return make_error(Errc::kInvalidCredentials, "invalid user name or password");
  }
  Session s;
  s.token = random_token();
  s.csrf_token = random_token(16);
  RP_ASSIGN(auto tx, store_.write());
  SqlValue p[] = {token_hash(s.token), user_id, s.csrf_token, now, now + kSessionLifetimeMs};
  RP_TRY(
      tx->exec("INSERT INTO auth_session (token_hash, user_id, csrf_token, created_at, expires_at) "
               "VALUES (?, ?, ?, ?, ?)",
               p));
  SqlValue cleanup[] = {now};
  RP_TRY(tx->exec("DELETE FROM auth_session WHERE expires_at < ?", cleanup));
  SqlValue forgiven[] = {user_key};
  RP_TRY(tx->exec("DELETE FROM auth_failure WHERE key = ?", forgiven));
  RP_ASSIGN(s.principal, load_principal(*tx, user_id));
  RP_TRY(tx->commit());
  s.principal.channel = "ui";
  s.principal.csrf_token = s.csrf_token;
  return s;
}

Status AuthService::logout(std::string_view session_token) {
  RP_ASSIGN(auto tx, store_.write());
  SqlValue p[] = {token_hash(session_token)};
  RP_TRY(tx->exec("DELETE FROM auth_session WHERE token_hash = ?", p));
  RP_TRY(tx->commit());
  changed();
  return {};
}

std::optional<Principal> AuthService::cached(const CacheKey& key, std::string_view token,
                                             Millis now) {
  if (cache_max_age_ms_ <= 0) return std::nullopt;
  std::shared_lock lock(cache_mu_);
  auto it = cache_.find(key);
  if (it == cache_.end() || it->second.generation != generation_.load() ||
      it->second.valid_until <= now)
    return std::nullopt;
  LastCredential& last = t_last_credential;
  last.service = instance_;
  last.kind = key.kind;
  last.token.assign(token);
  last.generation = it->second.generation;
  last.valid_until = it->second.valid_until;
  last.principal = it->second.principal;
  return it->second.principal;
}

std::optional<Principal> AuthService::last_of_thread(char kind, std::string_view token,
                                                     Millis now) const {
  const LastCredential& last = t_last_credential;
  // The cache entry's checks (generation: no change to credentials, users or roles since; time
  // limit: session expiry or the cache's age limit), then the token itself — in constant time,
  // so that how long a refusal takes tells nothing about another caller's credential.
  if (last.service != instance_ || last.kind != kind || token.empty() ||
      last.token.size() != token.size() || cache_max_age_ms_ <= 0 ||
      last.generation != generation_.load() || last.valid_until <= now)
    return std::nullopt;
  if (!same_bytes(last.token.data(), token.data(), token.size())) return std::nullopt;
  return last.principal;
}

void AuthService::remember(const CacheKey& key, const Principal& p, Millis valid_until,
                           std::uint64_t generation) {
  if (cache_max_age_ms_ <= 0) return;
  std::unique_lock lock(cache_mu_);
  // Checked under the lock that forget_cached() takes after bumping the generation: an entry
  // read before a change is either refused here or cleared there.
  if (generation != generation_.load()) return;
  if (cache_.size() >= kAuthCacheMaxEntries) cache_.clear();
  cache_.insert_or_assign(key, Cached{p, valid_until, generation});
}

void AuthService::forget_cached() {
  generation_.fetch_add(1);
  {
    std::unique_lock lock(cache_mu_);
    cache_.clear();
  }
  std::lock_guard lock(mu_);
  roles_.clear();
}

void AuthService::changed() {
  forget_cached();
  if (auto st = store_.notify(kAuthChannel, "changed"); !st.ok())
    spdlog::warn("other servers not told that credentials changed: {}", st.error().message);
}

Status AuthService::listen_for_changes() {
  return store_.listen(kAuthChannel, [this](const std::string&) { forget_cached(); });
}

// The principal's columns and joins, after a credential table aliased `c` (a session or an API
// token): one statement finds the credential and loads its user and role. The user is
// left-joined so that a credential of a disabled or deleted user is told from an unknown one.
namespace {
constexpr std::string_view kPrincipalSelect =
    "u.id, u.username, u.display_name, u.team_id, r.id, r.version, r.name, r.is_admin, "
    "r.permissions";
constexpr std::string_view kPrincipalJoins =
    " LEFT JOIN \"user\" u ON u.id = c.user_id AND u.deleted_at IS NULL AND "
    "(u.active IS NULL OR u.active = 1) LEFT JOIN \"role\" r ON r.id = u.role_id AND "
    "r.deleted_at IS NULL";
}  // namespace

Result<Principal> AuthService::from_session(std::string_view session_token) {
  Millis now = clock_.now_ms();
  if (auto last = last_of_thread('s', session_token, now)) return std::move(*last);
  const CacheKey key{'s', token_digest(session_token)};
  if (auto hit = cached(key, session_token, now)) return std::move(*hit);
  std::uint64_t generation = generation_.load();
  RP_ASSIGN(auto tx, store_.read());
  SqlValue p[] = {token_hash(key.digest), now};
  static const std::string sql = "SELECT c.csrf_token, c.expires_at, " +
                                 std::string(kPrincipalSelect) + " FROM auth_session c" +
                                 std::string(kPrincipalJoins) +
                                 " WHERE c.token_hash = ? AND c.expires_at > ?";
  RP_ASSIGN(auto rows, tx->query(sql, p));
  if (rows.rows.empty()) return make_error(Errc::kUnauthenticated, "session expired or unknown");
  RP_ASSIGN(Principal pr, principal_from_row(rows.rows[0], 2));
  pr.channel = "ui";
  pr.csrf_token = as_text(rows.rows[0][0]);
  remember(key, pr, std::min(as_int(rows.rows[0][1]), now + cache_max_age_ms_), generation);
  return pr;
}

Result<Principal> AuthService::from_bearer(std::string_view api_token) {
  Millis now = clock_.now_ms();
  if (auto last = last_of_thread('b', api_token, now)) return std::move(*last);
  const CacheKey key{'b', token_digest(api_token)};
  if (auto hit = cached(key, api_token, now)) return std::move(*hit);
  std::uint64_t generation = generation_.load();
  RP_ASSIGN(auto tx, store_.read());
  SqlValue p[] = {token_hash(key.digest)};
  static const std::string sql = "SELECT " + std::string(kPrincipalSelect) + " FROM api_token c" +
                                 std::string(kPrincipalJoins) + " WHERE c.token_hash = ?";
  RP_ASSIGN(auto rows, tx->query(sql, p));
  if (rows.rows.empty()) return make_error(Errc::kUnauthenticated, "unknown API token");
  RP_ASSIGN(Principal pr, principal_from_row(rows.rows[0], 0));
  pr.channel = "api";
  remember(key, pr, now + cache_max_age_ms_, generation);
  return pr;
}

Result<std::int64_t> AuthService::user_id(std::string_view username) {
  RP_ASSIGN(auto tx, store_.read());
  SqlValue p[] = {std::string(username)};
  RP_ASSIGN(auto rows,
            tx->query("SELECT id FROM \"user\" WHERE username = ? AND deleted_at IS NULL", p));
  if (rows.rows.empty()) return make_error(Errc::kNotFound, "no user " + std::string(username));
  return as_int(rows.rows[0][0]);
}

Result<std::int64_t> AuthService::revoke_tokens(std::int64_t user_id, std::string_view name) {
  RP_ASSIGN(auto tx, store_.write());
  SqlValue u[] = {user_id};
  RP_ASSIGN(auto rows, tx->query("SELECT id FROM \"user\" WHERE id = ?", u));
  if (rows.rows.empty())
    return make_error(Errc::kNotFound, "no user with id " + std::to_string(user_id), "user_id");
  std::int64_t n = 0;
  if (name.empty()) {
    SqlValue p[] = {user_id};
    RP_ASSIGN(n, tx->exec("DELETE FROM api_token WHERE user_id = ?", p));
  } else {
    SqlValue p[] = {user_id, std::string(name)};
    RP_ASSIGN(n, tx->exec("DELETE FROM api_token WHERE user_id = ? AND name = ?", p));
  }
  RP_TRY(tx->commit());
  changed();
  return n;
}

Result<std::string> AuthService::create_token(std::string_view username, std::string_view name) {
  RP_ASSIGN(auto tx, store_.write());
  SqlValue p[] = {std::string(username)};
  RP_ASSIGN(auto rows,
            tx->query("SELECT id FROM \"user\" WHERE username = ? AND deleted_at IS NULL", p));
  if (rows.rows.empty()) return make_error(Errc::kNotFound, "no user " + std::string(username));
  std::string token = "rpt_" + random_token();
  SqlValue ins[] = {token_hash(token), rows.rows[0][0], std::string(name), clock_.now_ms()};
  RP_TRY(tx->exec(
      "INSERT INTO api_token (token_hash, user_id, name, created_at) VALUES (?, ?, ?, ?)", ins));
  RP_TRY(tx->commit());
  return token;
}

Status AuthService::set_password(storage::Tx& tx, std::int64_t user_id, std::string_view password,
                                 std::string_view keep_session_csrf) {
  if (static_cast<int>(password.size()) < kMinPasswordLength)
    return make_error(
        Errc::kValidation,
        "password must be at least " + std::to_string(kMinPasswordLength) + " characters",
        "password");
  if (password.size() > 1024)
    return make_error(Errc::kValidation, "password is too long", "password");
  RP_ASSIGN(std::string hash, hash_password(password));
  SqlValue p[] = {user_id, hash, clock_.now_ms()};
  RP_TRY(tx.exec("DELETE FROM auth_credential WHERE user_id = ?", std::span(p, 1)));
  RP_TRY(tx.exec(
      "INSERT INTO auth_credential (user_id, password_hash, updated_at) VALUES (?, ?, ?)", p));
  SqlValue sessions[] = {user_id, std::string(keep_session_csrf)};
  RP_TRY(tx.exec("DELETE FROM auth_session WHERE user_id = ? AND csrf_token <> ?", sessions));
  return {};
}

std::shared_ptr<const Role> AuthService::role_from_row(std::int64_t id, std::int64_t version,
                                                       const std::string& name, bool is_admin,
                                                       const std::string& permissions) {
  std::lock_guard lock(mu_);
  auto it = roles_.find(id);
  if (it != roles_.end() && it->second.first == version) return it->second.second;
  Role role;
  if (!permissions.empty()) {
    auto doc = json::parse(permissions);
    if (doc.ok()) {
      auto parsed = parse_role_permissions(*doc);
      if (parsed.ok()) role = std::move(parsed).value();
    }
  }
  role.id = id;
  role.name = name;
  role.is_admin = is_admin;
  auto sp = std::make_shared<const Role>(std::move(role));
  roles_[id] = {version, sp};
  return sp;
}

Result<Principal> AuthService::load_principal(storage::Tx& tx, std::int64_t user_id) {
  SqlValue p[] = {user_id};
  RP_ASSIGN(
      auto rows,
      tx.query("SELECT u.id, u.username, u.display_name, u.team_id, r.id, r.version, r.name, "
               "r.is_admin, r.permissions FROM \"user\" u LEFT JOIN \"role\" r ON r.id = "
               "u.role_id AND r.deleted_at IS NULL WHERE u.id = ? AND u.deleted_at IS NULL AND "
               "(u.active IS NULL OR u.active = 1)",
               p));
  if (rows.rows.empty()) return make_error(Errc::kUnauthenticated, "user is disabled or deleted");
  return principal_from_row(rows.rows[0], 0);
}

Result<Principal> AuthService::principal_from_row(const std::vector<SqlValue>& row,
                                                  std::size_t at) {
  const SqlValue* r = row.data() + at;
  if (row.size() < at + 9 || storage::is_null(r[0])) {
    return make_error(Errc::kUnauthenticated, "user is disabled or deleted");
  }
  Principal pr;
  pr.user_id = as_int(r[0]);
  pr.username = as_text(r[1]);
  pr.display_name = as_text(r[2]);
  pr.team_id = as_int(r[3]);
  if (!storage::is_null(r[4]))
    pr.role =
        role_from_row(as_int(r[4]), as_int(r[5]), as_text(r[6]), as_int(r[7]) != 0, as_text(r[8]));
  else
    pr.role = std::make_shared<const Role>();  // no role: no rights
  return pr;
}

}  // namespace rapport::access
