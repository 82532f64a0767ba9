// Authentication: argon2id passwords, session cookies with CSRF tokens, hashed API tokens, login
// throttling, and loading a Principal (user + role) from the store. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "access/access.h"
#include "base/clock.h"
#include "base/error.h"
#include "storage/store.h"

namespace rapport::access {

constexpr int kMinPasswordLength = 8;
constexpr Millis kSessionLifetimeMs = 12LL * 3600 * 1000;
constexpr int kMaxLoginFailures = 5;                        // per user name or address …
constexpr Millis kLoginFailureWindowMs = 15LL * 60 * 1000;  // … within this window → 429
// Authentication cache: a credential's principal is remembered at most this long (a backstop
// for changes made by another process that cannot tell this one: `rapport user passwd` or
// `rapport token revoke` on SQLite while a server runs), and for at most this many credentials.
constexpr Millis kAuthCacheMaxAgeMs = 5'000;
constexpr std::size_t kAuthCacheMaxEntries = 10'000;
// The store channel on which a server tells the others that credentials, users or roles changed
// (PostgreSQL NOTIFY; the payload is unused): each forgets every cached principal.
constexpr const char* kAuthChannel = "rapport_auth";

// The tables this module owns.
std::vector<storage::Migration> migrations();

// argon2id (libsodium) in its self-describing string form.
Result<std::string> hash_password(std::string_view password);
bool verify_password(std::string_view hash, std::string_view password);
// Random token (URL-safe hex) and its storage hash.
std::string random_token(int bytes = 32);
std::string token_hash(std::string_view token);
// The storage hash's 32 bytes before they are written as hex (token_hash is their hex).
using TokenDigest = std::array<unsigned char, 32>;
TokenDigest token_digest(std::string_view token);
std::string token_hash(const TokenDigest& digest);

struct Session {
  std::string token;  // cookie value
  std::string csrf_token;
  Principal principal;
};

class AuthService {
 public:
  AuthService(storage::Store& store, const Clock& clock);

  // Verifies credentials (throttled per user name and per address) and opens a session.
  // Failed attempts are rows of auth_failure, so all servers on one database count together
  // (and a restart forgets none); a successful login clears its user name's.
  Result<Session> login(std::string_view username, std::string_view password,
                        std::string_view remote_addr);
  Status logout(std::string_view session_token);
  // The principal of a session cookie or an API token. Answered from a cache of recent
  // credentials (kAuthCacheMaxAgeMs) that every change to credentials, users or roles empties:
  // see changed().
  Result<Principal> from_session(std::string_view session_token);
  Result<Principal> from_bearer(std::string_view api_token);
  // Issues an API token for `username`; only its hash is stored.
  Result<std::string> create_token(std::string_view username, std::string_view name);
  // Deletes the API tokens of user `user_id` (only those called `name` when it is not empty);
  // returns how many (kNotFound when there is no such user). Cached principals are forgotten
  // (changed()).
  Result<std::int64_t> revoke_tokens(std::int64_t user_id, std::string_view name);
  // The id of the user called `username` (not deleted), or kNotFound.
  Result<std::int64_t> user_id(std::string_view username);
  // Sets a user's password inside the caller's transaction (validates length) and ends the
  // user's sessions but the one whose CSRF token is `keep_session_csrf` (the caller's own, when
  // a user changes their own password). The caller calls changed() after committing.
  Status set_password(storage::Tx& tx, std::int64_t user_id, std::string_view password,
                      std::string_view keep_session_csrf = {});
  Result<Principal> load_principal(storage::Tx& tx, std::int64_t user_id);
  // After a committed change to credentials, users or roles: forgets every cached principal and
  // role here and tells the other servers on the same database (kAuthChannel), whose
  // forget_cached() runs when it arrives.
  void changed();
  // Forgets every cached principal and role of this process.
  void forget_cached();
  // Starts listening on kAuthChannel (once, when serving).
  Status listen_for_changes();
  // How long a cached principal may be answered (default kAuthCacheMaxAgeMs; 0: no cache).
  // Set before serving.
  void set_cache_max_age(Millis ms) { cache_max_age_ms_ = ms; }

 private:
  // Failures of `key` within the window reach kMaxLoginFailures.
  static Result<bool> throttled(storage::Tx& tx, const std::string& key, Millis now);
  // Stores a failure for each key (own transaction) and drops those older than the window.
  Status record_failures(const std::vector<std::string>& keys, Millis now);
  // The principal from the 9 columns of its SELECT starting at row[at] (kUnauthenticated "user
  // is disabled or deleted" when the user column is NULL: no such active user).
  Result<Principal> principal_from_row(const std::vector<storage::SqlValue>& row, std::size_t at);
  std::shared_ptr<const Role> role_from_row(std::int64_t id, std::int64_t version,
                                            const std::string& name, bool is_admin,
                                            const std::string& permissions);

  // A principal found by the hash of its credential: its kind ('s' session, 'b' bearer token)
  // and the token's digest — bytes, not hex, and no allocation: looked up on every request.
  struct CacheKey {
    char kind;
    TokenDigest digest;
    bool operator==(const CacheKey&) const = default;
  };
  struct CacheKeyHash {
    std::size_t operator()(const CacheKey& k) const {  // the digest is already uniform
      std::size_t h;
      std::memcpy(&h, k.digest.data(), sizeof h);
      return h ^ static_cast<std::size_t>(k.kind);
    }
  };
  struct Cached {
    Principal principal;
    Millis valid_until;        // session expiry or cache age limit, whichever is first
    std::uint64_t generation;  // generation_ when its query started
  };
  // A cache hit also becomes this thread's last credential (below); `token` is its text.
  std::optional<Principal> cached(const CacheKey& key, std::string_view token, Millis now);
  // The principal of the credential this thread resolved last, when `token` is that credential
  // (compared in constant time), of this service, and still valid: its cache entry's generation
  // is current and its time limit not reached — the cache entry's own checks, so it answers
  // exactly what cached() would, without hashing the token (BLAKE2b) or taking the cache's lock.
  std::optional<Principal> last_of_thread(char kind, std::string_view token, Millis now) const;
  void remember(const CacheKey& key, const Principal& p, Millis valid_until,
                std::uint64_t generation);

  storage::Store& store_;
  const Clock& clock_;
  // Tells this service's entries in the threads' last credentials from another's (tests make
  // several services, one after another at the same address).
  const std::uint64_t instance_;
  std::mutex mu_;  // guards roles_
  std::map<std::int64_t, std::pair<std::int64_t, std::shared_ptr<const Role>>> roles_;
  // Bumped by every forget_cached(): an entry of an older generation is never answered, so a
  // query that raced with a change cannot put back what the change ended.
  std::atomic<std::uint64_t> generation_{1};
  Millis cache_max_age_ms_ = kAuthCacheMaxAgeMs;
  std::shared_mutex cache_mu_;  // guards cache_
  std::unordered_map<CacheKey, Cached, CacheKeyHash> cache_;
};

}  // namespace rapport::access
