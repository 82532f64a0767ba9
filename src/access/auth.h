// Authentication: argon2id passwords, session cookies with CSRF tokens, hashed API tokens, login
// throttling, and loading a Principal (user + role) from the store. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
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

// The tables this module owns.
std::vector<storage::Migration> migrations();

// argon2id (libsodium) in its self-describing string form.
Result<std::string> hash_password(std::string_view password);
bool verify_password(std::string_view hash, std::string_view password);
// Random token (URL-safe hex) and its storage hash.
std::string random_token(int bytes = 32);
std::string token_hash(std::string_view token);

struct Session {
  std::string token;  // cookie value
  std::string csrf_token;
  Principal principal;
};

class AuthService {
 public:
  AuthService(storage::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Verifies credentials (throttled per user name and per address) and opens a session.
  // Failed attempts are rows of auth_failure, so all servers on one database count together
  // (and a restart forgets none); a successful login clears its user name's.
  Result<Session> login(std::string_view username, std::string_view password,
                        std::string_view remote_addr);
  Status logout(std::string_view session_token);
  Result<Principal> from_session(std::string_view session_token);
  Result<Principal> from_bearer(std::string_view api_token);
  // Issues an API token for `username`; only its hash is stored.
  Result<std::string> create_token(std::string_view username, std::string_view name);
  // Sets a user's password inside the caller's transaction (validates length).
  Status set_password(storage::Tx& tx, std::int64_t user_id, std::string_view password);
  Result<Principal> load_principal(storage::Tx& tx, std::int64_t user_id);
  // Forget cached role documents (after a role record changes).
  void invalidate_roles();

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

  storage::Store& store_;
  const Clock& clock_;
  std::mutex mu_;  // guards roles_
  std::map<std::int64_t, std::pair<std::int64_t, std::shared_ptr<const Role>>> roles_;
};

}  // namespace rapport::access
