// The scheduled duplicate scan's progress (GET /duplicates/scan "running"): recorded when a run
// starts and after every batch, shown while fresh, taken for dead when stale, and removed when
// the run is recorded as the last run.
#include <gtest/gtest.h>

#include <filesystem>

#include "record/duplicates.h"
#include "record/service.h"
#include "record/tests/dedupe_fixtures.h"
#include "record/tests/record_fixtures.h"
#include "storage/sqlite/sqlite_store.h"

namespace rapport::record {
namespace {

namespace fs = std::filesystem;

// A clock the test moves.
class StepClock final : public Clock {
 public:
  Millis now_ms() const override { return now; }
  Millis now = 1'790'000'000'000;
};

class ScanProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("rapport_scan_progress_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    store = storage::open_store((dir / "t.db").string()).value();
    auto migrations = RecordService::migrations();
    ASSERT_TRUE(store->migrate(migrations).ok());
    fixtures::add_users_and_teams(registry);
    for (const char* def : {R"({"name":"duplicate_candidate","title_field":"reason","fields":[
                                  {"name":"entity","type":"text"},
                                  {"name":"record_a","type":"text"},
                                  {"name":"record_b","type":"text"},
                                  {"name":"title_a","type":"text"},
                                  {"name":"title_b","type":"text"},
                                  {"name":"score","type":"decimal"},
                                  {"name":"reason","type":"text"},
                                  {"name":"status","type":"text"},
                                  {"name":"pair_key","type":"text","unique":true}]})"})
      registry.add(schema::parse_entity(def, "t").value());
    registry.add(dedupe::fixtures::account_entity());
    hooks.set_dedupe("account", dedupe::fixtures::organisation());
    service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids);
    ASSERT_TRUE(service->sync_schema().ok());
    admin = fixtures::admin_principal();
  }
  void TearDown() override {
    service.reset();
    store.reset();
    fs::remove_all(dir);
  }
  json::Document status() {
    auto s = Deduper(*service).scan_status(admin);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return json::parse(*s).value();
  }

  fs::path dir;
  std::unique_ptr<storage::Store> store;
  schema::Registry registry;
  HookRegistry hooks;
  EventBus bus;
  StepClock clock;
  IdGenerator ids{clock};
  std::unique_ptr<RecordService> service;
  access::Principal admin;
};

TEST_F(ScanProgressTest, ARunUnderWayIsShownWhileFreshAndGoneOnceRecorded) {
  Deduper d(*service);
  auto before = status();
  EXPECT_TRUE((*json::member(before, "last_run")).IsNull());
  EXPECT_TRUE((*json::member(before, "running")).IsNull());

  Deduper::ScanRun run;
  run.started = clock.now;
  run.scanned = 1000;
  run.pairs = 7;
  run.added = 3;
  run.since = clock.now - 3'600'000;
  clock.now += 5'000;
  ASSERT_TRUE(d.record_scan_progress(run).ok());
  auto s = status();
  const json::Value& r = *json::member(s, "running");
  ASSERT_TRUE(r.IsObject());
  EXPECT_EQ(json::member(r, "scanned")->GetInt64(), 1000);
  EXPECT_EQ(json::member(r, "pairs")->GetInt64(), 7);
  EXPECT_EQ(json::member(r, "added")->GetInt64(), 3);
  EXPECT_EQ(std::string(json::member(r, "started_at")->GetString()), format_iso8601(run.started));
  EXPECT_EQ(std::string(json::member(r, "updated_at")->GetString()), format_iso8601(clock.now));
  EXPECT_EQ(std::string(json::member(r, "changed_since")->GetString()), format_iso8601(*run.since));
  // The progress record is not the last run.
  EXPECT_TRUE((*json::member(s, "last_run")).IsNull());

  // A progress record nobody refreshed for longer than kScanProgressStaleMs: the server stopped.
  clock.now += kScanProgressStaleMs + 1;
  EXPECT_TRUE((*json::member(status(), "running")).IsNull());

  // A scheduled run records itself as the last run and leaves no progress behind.
  ASSERT_TRUE(d.record_scan_progress(run).ok());
  ASSERT_TRUE(service->create(admin, *registry.get("account"), R"({"name":"Acme"})").ok());
  auto done = d.scheduled_scan(admin);
  ASSERT_TRUE(done.ok()) << done.error().message;
  ASSERT_TRUE(done->has_value());
  auto after = status();
  EXPECT_TRUE((*json::member(after, "running")).IsNull());
  const json::Value& last = *json::member(after, "last_run");
  ASSERT_TRUE(last.IsObject());
  EXPECT_EQ(json::member(last, "scanned")->GetInt64(), 1);
}

TEST_F(ScanProgressTest, OnlyAdministratorsSeeTheScan) {
  access::Principal sales;
  sales.role = std::make_shared<access::Role>();
  sales.username = "sales";
  auto s = Deduper(*service).scan_status(sales);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kForbidden);
}

}  // namespace
}  // namespace rapport::record
