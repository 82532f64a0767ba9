// The record pipeline on a real SQLite store: audit diffs, versions, soft delete, hooks, events,
// idempotency and the one-transaction rule for failed requests.
#include <gtest/gtest.h>

#include <filesystem>

#include "access/auth.h"
#include "record/service.h"
#include "record/tests/record_fixtures.h"

namespace rapport::record {
namespace {

namespace fs = std::filesystem;

class FixedClock : public Clock {
 public:
  Millis now_ms() const override { return now; }
  Millis now = 1795000000000;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("rapport_service_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    store = storage::open_store((dir / "t.db").string()).value();
    auto migrations = RecordService::migrations();
    ASSERT_TRUE(store->migrate(migrations).ok());
    fixtures::add_users_and_teams(registry);
    registry.add(schema::parse_entity(R"({"name":"account","title_field":"name","fields":[
        {"name":"name","type":"text","required":true,"searchable":true,"indexed":true},
        {"name":"code","type":"text","unique":true},
        {"name":"kind","type":"enum","options":["company","individual"],"default":"company"},
        {"name":"limit","type":"money"}]})",
                                      "t")
                     .value());
    hooks.add("account",
              Hooks{nullptr,
                    [this](HookContext& ctx) -> Status {
                      const json::Value* n = json::member(ctx.values, "name");
                      if (n && n->IsString() && std::string(n->GetString()) == "forbidden")
                        return make_error(Errc::kRuleViolation, "name refused by a hook", "name");
                      return {};
                    },
                    nullptr, nullptr});
    service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids);
    ASSERT_TRUE(service->sync_schema().ok());
    bus.subscribe([this](const Event& e) { events.push_back(e); });
    admin = fixtures::admin_principal();
    account = registry.get("account");
  }
  void TearDown() override {
    service.reset();
    store.reset();
    fs::remove_all(dir);
  }
  int count_accounts() {
    auto list = service->list(admin, *account, {});
    auto doc = json::parse(list.value());
    return static_cast<int>((*json::member(*doc, "items")).Size());
  }

  fs::path dir;
  std::unique_ptr<storage::Store> store;
  schema::Registry registry;
  HookRegistry hooks;
  EventBus bus;
  FixedClock clock;
  IdGenerator ids{clock};
  std::unique_ptr<RecordService> service;
  access::Principal admin;
  std::shared_ptr<const schema::Entity> account;
  std::vector<Event> events;
};

TEST_F(ServiceTest, CreateAppliesDefaultsAndAuditsEveryField) {
  auto r = service->create(admin, *account, R"({"name":"北京测试有限公司"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 201);
  auto doc = json::parse(r->body);
  EXPECT_STREQ((*json::member(*doc, "kind")).GetString(), "company");
  auto h = json::parse(service->history(admin, *account, r->id).value());
  const auto& items = (*json::member(*h, "items"));
  ASSERT_EQ(items.Size(), 1u);
  EXPECT_STREQ((*json::member(items[0], "action")).GetString(), "create");
  EXPECT_STREQ((*json::member(items[0], "channel")).GetString(), "api");
  EXPECT_EQ((*json::member(items[0], "changes")).Size(), 2u);  // name and kind
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "created");
}

TEST_F(ServiceTest, UpdateRecordsOnlyChangedFieldsFromTo) {
  auto r =
      service->create(admin, *account, R"({"name":"A","limit":{"amount":100,"currency":"CNY"}})")
          .value();
  auto u = service->update(admin, *account, r.id,
                           R"({"name":"B","limit":{"amount":100,"currency":"CNY"}})", 1);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->version, 2);
  auto h = json::parse(service->history(admin, *account, r.id).value());
  const auto& latest = (*json::member(*h, "items"))[0];
  const auto& changes = (*json::member(latest, "changes"));
  ASSERT_EQ(changes.Size(), 1u);
  EXPECT_EQ(json::stringify(changes[0]), R"({"field":"name","from":"A","to":"B"})");
  // unchanged body: no new version, no audit entry
  auto same = service->update(admin, *account, r.id, R"({"name":"B"})");
  EXPECT_EQ(same->version, 2);
  EXPECT_EQ((*json::member(*json::parse(service->history(admin, *account, r.id).value()), "items"))
                .Size(),
            2u);
}

TEST_F(ServiceTest, FailingStaleVersionIsConflictAndChangesNothing) {
  auto r = service->create(admin, *account, R"({"name":"A"})").value();
  ASSERT_TRUE(service->update(admin, *account, r.id, R"({"name":"B"})", 1).ok());
  auto stale = service->update(admin, *account, r.id, R"({"name":"C"})", 1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Errc::kConflict);
  auto doc = json::parse(service->get(admin, *account, r.id).value().body);
  EXPECT_STREQ((*json::member(*doc, "name")).GetString(), "B");
}

TEST_F(ServiceTest, FailingHookRollsBackTheWholeRequest) {
  auto r = service->create(admin, *account, R"({"name":"forbidden"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kRuleViolation);
  EXPECT_EQ(count_accounts(), 0);
  EXPECT_TRUE(events.empty());
}

TEST_F(ServiceTest, FailingUniqueValueIsDuplicateNamingTheField) {
  ASSERT_TRUE(service->create(admin, *account, R"({"name":"A","code":"X1"})").ok());
  auto dup = service->create(admin, *account, R"({"name":"B","code":"X1"})");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kDuplicate);
  EXPECT_EQ(dup.error().field, "code");
  EXPECT_EQ(count_accounts(), 1);
}

TEST_F(ServiceTest, SoftDeleteRestoreAndUniqueReuse) {
  auto r = service->create(admin, *account, R"({"name":"A","code":"X1"})").value();
  ASSERT_TRUE(service->remove(admin, *account, r.id).ok());
  EXPECT_EQ(service->get(admin, *account, r.id).error().code, Errc::kNotFound);
  EXPECT_EQ(service->remove(admin, *account, r.id).error().code, Errc::kNotFound);
  ListParams bin;
  bin.deleted = true;
  EXPECT_NE(service->list(admin, *account, bin).value().find("\"deleted_at\""), std::string::npos);
  auto again = service->create(admin, *account, R"({"name":"B","code":"X1"})");
  ASSERT_TRUE(again.ok());  // the deleted record's code can be reused
  auto restore = service->restore(admin, *account, r.id);
  ASSERT_FALSE(restore.ok());  // but then the old one cannot come back with the same code
  EXPECT_EQ(restore.error().code, Errc::kDuplicate);
  ASSERT_TRUE(service->update(admin, *account, again->id, R"({"code":"X2"})").ok());
  ASSERT_TRUE(service->restore(admin, *account, r.id).ok());
}

TEST_F(ServiceTest, IdempotentCreateReturnsTheFirstRecord) {
  auto a = service->create(admin, *account, R"({"name":"A"})", "key-1").value();
  auto b = service->create(admin, *account, R"({"name":"A"})", "key-1").value();
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(count_accounts(), 1);
  auto c = service->create(admin, *account, R"({"name":"Other"})", "key-1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kConflict);
  EXPECT_EQ(c.error().field, "Idempotency-Key");
}

TEST_F(ServiceTest, KeysetPagingVisitsEveryRecordOnce) {
  for (int i = 0; i < 23; ++i)
    ASSERT_TRUE(
        service->create(admin, *account, "{\"name\":\"N" + std::to_string(i % 5) + "\"}").ok());
  ListParams lp;
  lp.sort = "name";
  lp.limit = 4;
  std::set<std::string> seen;
  std::string last_name;
  for (int page = 0; page < 10; ++page) {
    auto doc = json::parse(service->list(admin, *account, lp).value());
    for (const auto& item : (*json::member(*doc, "items")).GetArray()) {
      std::string name = (*json::member(item, "name")).GetString();
      EXPECT_LE(last_name, name);
      last_name = name;
      EXPECT_TRUE(seen.insert((*json::member(item, "id")).GetString()).second);
    }
    const json::Value* next = json::member(*doc, "next_cursor");
    if (next->IsNull()) break;
    lp.cursor = next->GetString();
  }
  EXPECT_EQ(seen.size(), 23u);
}

TEST_F(ServiceTest, ExportCsvStreamsEveryPageAndStopsWhenTheWriterRefuses) {
  for (int i = 0; i < 1203; ++i)
    ASSERT_TRUE(service->create(admin, *account, "{\"name\":\"E" + std::to_string(i) + "\"}").ok());
  ListParams lp;
  lp.fields = "name";
  auto body = service->export_csv(admin, *account, lp);
  ASSERT_TRUE(body.ok());
  std::string csv;
  int pieces = 0;
  ASSERT_TRUE((*body)([&](std::string_view piece) {
                ++pieces;
                csv += piece;
                return true;
              }).ok());
  std::size_t lines = 0;
  for (std::size_t at = csv.find("\r\n"); at != std::string::npos; at = csv.find("\r\n", at + 2))
    ++lines;
  for (int i = 0; i < 1203; ++i)
    EXPECT_NE(csv.find("\r\nE" + std::to_string(i) + "\r\n"), std::string::npos) << i;
  EXPECT_EQ(lines, 1204u) << "header + every record once";
  EXPECT_TRUE(csv.starts_with("\xEF\xBB\xBFname\r\n"));

  // A writer that refuses (the client went away) stops the export with an error.
  lp.fields.clear();
  auto again = service->export_csv(admin, *account, lp);
  ASSERT_TRUE(again.ok());
  int calls = 0;
  auto stopped = (*again)([&](std::string_view) { return ++calls < 2; });
  EXPECT_FALSE(stopped.ok());
  EXPECT_EQ(calls, 2) << "no write after the refusal";

  // Errors in the request come before the body exists.
  lp.sort = "nope";
  auto bad = service->export_csv(admin, *account, lp);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "sort");
}

TEST_F(ServiceTest, FailingXlsxExportOverTheSheetLimitIsTooLarge) {
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(service->create(admin, *account, "{\"name\":\"X" + std::to_string(i) + "\"}").ok());
  auto over = service->export_xlsx(admin, *account, {}, 3);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::kTooLarge);
  EXPECT_EQ(over.error().field, "filter");
  EXPECT_NE(over.error().message.find("more than 3 rows"), std::string::npos);
  auto fits = service->export_xlsx(admin, *account, {}, 4);
  ASSERT_TRUE(fits.ok());
  std::string file;
  ASSERT_TRUE((*fits)([&](std::string_view piece) {
                file += piece;
                return true;
              }).ok());
  EXPECT_TRUE(file.starts_with("PK"));
}

// The query plan of the list statement, one line per step (SQLite's EXPLAIN QUERY PLAN).
std::string list_plan(storage::Store& store, RecordService& service, const access::Principal& p,
                      const schema::Entity& e, const ListParams& lp) {
  auto st = service.list_statement(p, e, lp);
  EXPECT_TRUE(st.ok());
  if (!st.ok()) return {};
  auto tx = store.read().value();
  auto rows = tx->query("EXPLAIN QUERY PLAN " + st->sql, st->params).value();
  std::string plan;
  for (const auto& r : rows.rows) plan += std::get<std::string>(r.back()) + "\n";
  return plan;
}

TEST_F(ServiceTest, FilteredNewestFirstListReadsAnIndexInOrderWithoutSorting) {
  ListParams lp;
  lp.filter = R"({"field":"name","op":"=","value":"Acme"})";
  for (std::string sort : {"", "-created_at", "created_at"}) {
    lp.sort = sort;
    std::string plan = list_plan(*store, *service, admin, *account, lp);
    EXPECT_NE(plan.find("USING INDEX ix_account__name__created_at (name=?)"), std::string::npos)
        << sort << ": " << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << sort << ": " << plan;
  }
  // Unfiltered, newest first walks the created_at index.
  lp.filter.clear();
  lp.sort.clear();
  std::string plan = list_plan(*store, *service, admin, *account, lp);
  EXPECT_NE(plan.find("ix_account__created_at"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
}

TEST_F(ServiceTest, NextPageOfANewestFirstListSeeksTheIndexToItsCursor) {
  // Without a seek every later page (and so an export, which pages to the end) scans the index
  // from its first row: quadratic in the list's length.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(service->create(admin, *account, "{\"name\":\"Acme\"}").ok());
  ListParams lp;
  lp.limit = 1;
  auto first = json::parse(service->list(admin, *account, lp).value());
  lp.cursor = (*json::member(*first, "next_cursor")).GetString();
  for (std::string sort : {"", "-created_at"}) {
    lp.sort = sort;
    if (!sort.empty()) {
      ListParams head = lp;
      head.cursor.clear();
      auto page = json::parse(service->list(admin, *account, head).value());
      lp.cursor = (*json::member(*page, "next_cursor")).GetString();
    }
    std::string plan = list_plan(*store, *service, admin, *account, lp);
    std::string col = sort.empty() ? "created_at" : sort.substr(1);
    EXPECT_NE(plan.find("(" + col + "<?)"), std::string::npos) << sort << ": " << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << sort << ": " << plan;
  }
  // The pages still hold every record once.
  lp.sort.clear();
  lp.cursor.clear();
  std::set<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    auto doc = json::parse(service->list(admin, *account, lp).value());
    for (const auto& item : (*json::member(*doc, "items")).GetArray())
      EXPECT_TRUE(seen.insert((*json::member(item, "id")).GetString()).second);
    const json::Value* next = json::member(*doc, "next_cursor");
    if (next->IsNull()) break;
    lp.cursor = next->GetString();
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(ServiceTest, OneColumnIndexOfEarlierVersionsGivesWayToTheCompositeOne) {
  {
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("DROP INDEX \"ix_account__name__created_at\"").ok());
    ASSERT_TRUE(tx->exec("CREATE INDEX \"ix_account__name\" ON \"account\" (\"name\")").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  ASSERT_TRUE(service->sync_schema().ok());
  auto tx = store->read().value();
  auto rows = tx->query(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                    "'account' AND name LIKE 'ix_account__name%' ORDER BY name",
                    {})
                  .value();
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(std::get<std::string>(rows.rows[0][0]), "ix_account__name__created_at");
}

TEST_F(ServiceTest, DefaultOrderIsNewestCreatedFirst) {
  // The clock steps back between two creates: the later id was created earlier.
  clock.now = 1795000005000;
  auto a = service->create(admin, *account, R"({"name":"A"})").value();
  clock.now = 1795000001000;
  auto b = service->create(admin, *account, R"({"name":"B"})").value();
  ASSERT_GT(b.id, a.id);
  auto doc = json::parse(service->list(admin, *account, {}).value());
  const auto& items = (*json::member(*doc, "items")).GetArray();
  ASSERT_EQ(items.Size(), 2u);
  EXPECT_STREQ((*json::member(items[0], "name")).GetString(), "A");
  EXPECT_STREQ((*json::member(items[1], "name")).GetString(), "B");
}

TEST_F(ServiceTest, CustomFieldIsARealColumnAtOnce) {
  auto f = service->add_custom_field(
      admin, "account",
      R"({"name":"wechat_id","type":"text","indexed":true,"label":{"en":"WeChat","zh-CN":"微信号"}})");
  ASSERT_TRUE(f.ok()) << f.error().message;
  account = registry.get("account");
  auto r = service->create(admin, *account, R"({"name":"A","wechat_id":"wx_1"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ListParams lp;
  lp.filter = R"({"field":"wechat_id","op":"=","value":"wx_1"})";
  lp.sort = "wechat_id";
  EXPECT_NE(service->list(admin, *account, lp).value().find("wx_1"), std::string::npos);
  auto dup = service->add_custom_field(admin, "account", R"({"name":"wechat_id","type":"text"})");
  EXPECT_EQ(dup.error().code, Errc::kConflict);
  auto bad = service->add_custom_field(admin, "account", R"({"name":"x","type":"blob"})");
  EXPECT_EQ(bad.error().field, "type");
}

}  // namespace
}  // namespace rapport::record
