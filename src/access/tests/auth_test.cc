// Authentication's cached principals: a thread answers the credential it resolved last without
// hashing it again, and that answer ends exactly when the cache's would (R-SEC-1: a revoked or
// expired credential is refused at once).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "access/auth.h"
#include "storage/store.h"

namespace rapport::access {
namespace {

namespace fs = std::filesystem;

class StepClock final : public Clock {
 public:
  Millis now_ms() const override { return now; }
  Millis now = 1'800'000'000'000;
};

class AuthCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("rapport_auth_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    store = storage::open_store((dir / "t.db").string()).value();
    prepare(*store);
    auth = std::make_unique<AuthService>(*store, clock);
  }
  // The access tables, and the columns of "user" and "role" that loading a principal reads (the
  // admin module's entities in a server) with users ann (11) and bob (12).
  static void prepare(storage::Store& store) {
    auto migrations = access::migrations();
    ASSERT_TRUE(store.migrate(migrations).ok());
    auto tx = store.write().value();
    for (const char* sql :
         {"CREATE TABLE \"role\" (id INTEGER PRIMARY KEY, version INTEGER, name TEXT, is_admin "
          "INTEGER, permissions TEXT, deleted_at INTEGER)",
          "CREATE TABLE \"user\" (id INTEGER PRIMARY KEY, username TEXT, display_name TEXT, "
          "team_id INTEGER, role_id INTEGER, active INTEGER, deleted_at INTEGER)",
          "INSERT INTO \"role\" VALUES (1, 1, 'Sales', 0, '{\"entities\":{}}', NULL)",
          "INSERT INTO \"user\" VALUES (11, 'ann', 'Ann', 7, 1, 1, NULL)",
          "INSERT INTO \"user\" VALUES (12, 'bob', 'Bob', 7, 1, 1, NULL)"}) {
      ASSERT_TRUE(tx->exec(sql).ok()) << sql;
    }
    ASSERT_TRUE(tx->commit().ok());
  }
  void TearDown() override {
    auth.reset();
    store.reset();
    fs::remove_all(dir);
  }
  // Deletes a token's row as another process would (`rapport token revoke` on SQLite while a
  // server runs): nothing tells this service.
  void delete_behind_its_back(const std::string& token) {
    auto tx = store->write().value();
    std::vector<storage::SqlValue> p{token_hash(token)};
    ASSERT_TRUE(tx->exec("DELETE FROM api_token WHERE token_hash = ?", p).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  std::int64_t user_of(std::string_view token) {
    auto p = auth->from_bearer(token);
    return p.ok() ? p->user_id : -1;
  }

  fs::path dir;
  StepClock clock;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<AuthService> auth;
};

TEST_F(AuthCacheTest, ARevokedTokenIsRefusedAtOnceOnTheThreadThatAnsweredItLast) {
  const std::string token = auth->create_token("ann", "sync").value();
  // The first answer reads the database, the second the cache, the others this thread's last.
  for (int i = 0; i < 4; ++i) ASSERT_EQ(user_of(token), 11) << i;
  ASSERT_EQ(auth->revoke_tokens(11, "sync").value(), 1);
  auto refused = auth->from_bearer(token);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kUnauthenticated);
  EXPECT_EQ(refused.error().message, "unknown API token");
}

TEST_F(AuthCacheTest, ATokenDeletedByAnotherProcessIsRefusedOnceTheCachesAgeLimitPassed) {
  const std::string token = auth->create_token("ann", "sync").value();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(user_of(token), 11) << i;
  delete_behind_its_back(token);
  // Within the age limit the cached principal is still answered (the documented backstop) …
  clock.now += kAuthCacheMaxAgeMs - 1;
  EXPECT_EQ(user_of(token), 11);
  // … and not once it passed, also not by this thread's last credential.
  clock.now += 1;
  auto refused = auth->from_bearer(token);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kUnauthenticated);
}

TEST_F(AuthCacheTest, AnotherTokenOfTheSameLengthIsNeverAnsweredAsTheLastOne) {
  const std::string ann = auth->create_token("ann", "a").value();
  const std::string bob = auth->create_token("bob", "b").value();
  ASSERT_EQ(ann.size(), bob.size());
  // The same token with its last character changed: unknown.
  std::string forged = ann;
  forged.back() = forged.back() == '0' ? '1' : '0';
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(user_of(ann), 11);
    EXPECT_EQ(user_of(ann), 11);
    EXPECT_EQ(user_of(bob), 12);
    auto f = auth->from_bearer(forged);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.error().code, Errc::kUnauthenticated);
    EXPECT_EQ(user_of(bob), 12);
  }
  // A session is not a token: the same text as a session cookie is unknown.
  auto as_session = auth->from_session(ann);
  ASSERT_FALSE(as_session.ok());
  EXPECT_EQ(as_session.error().code, Errc::kUnauthenticated);
}

TEST_F(AuthCacheTest, AChangedUserIsSeenAtOnceOnEveryThread) {
  const std::string token = auth->create_token("ann", "sync").value();
  std::thread other([&] {
    for (int i = 0; i < 3; ++i) EXPECT_EQ(user_of(token), 11);
  });
  other.join();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(user_of(token), 11);
  {
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("UPDATE \"user\" SET active = 0 WHERE id = 11").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auth->changed();  // what the user record's after_commit hook calls
  for (int round = 0; round < 2; ++round) {
    auto here = auth->from_bearer(token);
    ASSERT_FALSE(here.ok());
    EXPECT_EQ(here.error().message, "user is disabled or deleted");
    std::thread again([&] {
      auto there = auth->from_bearer(token);
      ASSERT_FALSE(there.ok());
      EXPECT_EQ(there.error().message, "user is disabled or deleted");
    });
    again.join();
  }
}

TEST_F(AuthCacheTest, AnotherServiceOnTheSameThreadDoesNotAnswerFromThisOnesLastCredential) {
  const std::string token = auth->create_token("ann", "sync").value();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(user_of(token), 11);
  // A second service (another server in the same process, as tests run) over a database that
  // has no such token.
  fs::path other_dir = dir / "other";
  fs::create_directories(other_dir);
  auto other_store = storage::open_store((other_dir / "o.db").string()).value();
  prepare(*other_store);
  AuthService other(*other_store, clock);
  auto p = other.from_bearer(token);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::kUnauthenticated);
  EXPECT_EQ(p.error().message, "unknown API token");
  EXPECT_EQ(user_of(token), 11);
}

}  // namespace
}  // namespace rapport::access
