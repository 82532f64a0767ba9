// The record layer on a real PostgreSQL (see pg_test_db.h): what depends on PostgreSQL's
// planner and dialect rather than on the portable SQL — the derived list indexes read in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "access/auth.h"
#include "record/service.h"
#include "record/tests/pg_test_db.h"
#include "record/tests/record_fixtures.h"
#include "storage/postgres/pg_store.h"

namespace rapport::record {
namespace {

using fixtures::FixedClock;

class PgRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string label = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    label = label.substr(0, 30);
    std::transform(label.begin(), label.end(), label.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    db = std::make_unique<testing::PgTestSchema>(label);
    ASSERT_TRUE(db->ok());
    auto opened = storage::open_store(db->url());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store = std::move(opened).value();
    auto migrations = RecordService::migrations();
    ASSERT_TRUE(store->migrate(migrations).ok());
    fixtures::add_users_and_teams(registry);
    registry.add(schema::parse_entity(R"({"name":"account","title_field":"name","fields":[
        {"name":"name","type":"text","required":true,"searchable":true,"indexed":true},
        {"name":"city","type":"text","indexed":true},
        {"name":"code","type":"text","unique":true}]})",
                                      "t")
                     .value());
    service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids);
    ASSERT_TRUE(service->sync_schema().ok());
    admin = fixtures::admin_principal();
    account = registry.get("account");
  }
  void TearDown() override {
    service.reset();
    store.reset();
    db.reset();
  }

  // The plan of the list statement (EXPLAIN, costs off) with sorting disabled: a Sort node
  // then appears only when no index can give the order.
  std::string list_plan(const ListParams& lp) {
    auto st = service->list_statement(admin, *account, lp);
    EXPECT_TRUE(st.ok());
    if (!st.ok()) return {};
    auto tx = store->read().value();
    EXPECT_TRUE(tx->exec("SET LOCAL enable_sort = off").ok());
    auto rows = tx->query("EXPLAIN (COSTS OFF) " + st->sql, st->params);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    if (!rows.ok()) return {};
    std::string plan;
    for (const auto& r : rows->rows) plan += std::get<std::string>(r[0]) + "\n";
    return plan;
  }

  std::vector<std::string> indexes_of(const std::string& table) {
    auto tx = store->read().value();
    const storage::SqlValue params[] = {table};
    auto rows = tx->query(
                      "SELECT indexname::text || ' ' || indexdef FROM pg_indexes WHERE "
                      "schemaname = current_schema() AND tablename = ? ORDER BY indexname",
                      params)
                    .value();
    std::vector<std::string> out;
    for (const auto& r : rows.rows) out.push_back(std::get<std::string>(r[0]));
    return out;
  }

  std::unique_ptr<testing::PgTestSchema> db;
  std::unique_ptr<storage::Store> store;
  schema::Registry registry;
  HookRegistry hooks;
  EventBus bus;
  FixedClock clock;
  IdGenerator ids{clock};
  std::unique_ptr<RecordService> service;
  access::Principal admin;
  std::shared_ptr<const schema::Entity> account;
};

TEST_F(PgRecordTest, FilteredNewestFirstListReadsAnIndexInOrderWithoutSorting) {
  ListParams lp;
  lp.filter = R"({"field":"name","op":"=","value":"Acme"})";
  for (std::string sort : {"", "-created_at", "created_at"}) {
    lp.sort = sort;
    std::string plan = list_plan(lp);
    EXPECT_NE(plan.find("Index Scan"), std::string::npos) << sort << ": " << plan;
    EXPECT_NE(plan.find("using ix_account__name__created_at__id on account"), std::string::npos)
        << sort << ": " << plan;
    EXPECT_EQ(plan.find("Sort"), std::string::npos) << sort << ": " << plan;
  }
  // …and the next page (a cursor) too.
  lp.sort.clear();
  lp.limit = 1;
  for (const char* name : {"Acme", "Acme", "Other"})
    ASSERT_TRUE(service->create(admin, *account, std::string(R"({"name":")") + name + "\"}").ok());
  auto first = json::parse(service->list(admin, *account, lp).value());
  lp.cursor = json::member(*first, "next_cursor")->GetString();
  std::string plan = list_plan(lp);
  EXPECT_NE(plan.find("using ix_account__name__created_at__id on account"), std::string::npos)
      << plan;
  EXPECT_EQ(plan.find("Sort"), std::string::npos) << plan;
  // Unfiltered, newest first (and oldest first) walks the created_at index.
  lp = {};
  for (std::string sort : {"", "created_at"}) {
    lp.sort = sort;
    plan = list_plan(lp);
    EXPECT_NE(plan.find("using ix_account__created_at__id on account"), std::string::npos)
        << sort << ": " << plan;
    EXPECT_EQ(plan.find("Sort"), std::string::npos) << sort << ": " << plan;
  }
}

// The "did you mean" fallback of search: a pg_trgm GIN index on the title, which serves the
// similarity condition of Dialect::fuzzy_titles. (Whether the planner reads it depends on the
// table's size: on a small table a scan is cheaper; docs/SCALING.md has the plan at 100k.)
TEST_F(PgRecordTest, FuzzyTitlesHaveATrigramIndexOnTheTitle) {
  auto ix = indexes_of("account");
  auto trgm = std::find_if(ix.begin(), ix.end(), [](const std::string& s) {
    return s.rfind("ix_account__name__trgm ", 0) == 0;
  });
  ASSERT_NE(trgm, ix.end());
  EXPECT_NE(trgm->find("USING gin (name gin_trgm_ops)"), std::string::npos) << *trgm;
  // The subquery's columns: the similar records and how similar they are.
  ASSERT_TRUE(service->create(admin, *account, R"({"name":"Zenith Textiles"})").ok());
  ASSERT_TRUE(service->create(admin, *account, R"({"name":"Harbour Logistics"})").ok());
  std::vector<storage::SqlValue> params;
  auto similar = store->dialect().fuzzy_titles("account", "name", "zenitth textils", params);
  ASSERT_TRUE(similar.has_value());
  auto tx = store->read().value();
  auto rows = tx->query(
      "SELECT a.name, f.fuzzy_score FROM " + *similar + " f JOIN account a ON a.id = f.fuzzy_id",
      params);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->rows.size(), 1u);
  EXPECT_EQ(std::get<std::string>(rows->rows[0][0]), "Zenith Textiles");
  const double score = std::get<double>(rows->rows[0][1]);
  EXPECT_GT(score, 0.3);
  EXPECT_LE(score, 1.0);
}

// Through the service: nothing matches "Zenitth Textils" in the term index, so the answer is the
// similar title, marked fuzzy; a matching query is not fuzzy.
TEST_F(PgRecordTest, EmptySearchFallsBackToSimilarTitles) {
  auto made = service->create(admin, *account, R"({"name":"Zenith Textiles"})");
  ASSERT_TRUE(made.ok()) << made.error().message;
  const std::string id = std::to_string(made->id);
  auto fuzzy = json::parse(service->search(admin, "Zenitth Textils", "", 20).value());
  ASSERT_TRUE(fuzzy.ok());
  EXPECT_TRUE(json::member(*fuzzy, "fuzzy")->GetBool());
  const auto& items = json::member(*fuzzy, "items")->GetArray();
  ASSERT_EQ(items.Size(), 1u);
  EXPECT_EQ(std::string(json::member(items[0], "id")->GetString()), id);
  auto exact = json::parse(service->search(admin, "Zenith", "", 20).value());
  ASSERT_TRUE(exact.ok());
  EXPECT_FALSE(json::member(*exact, "fuzzy")->GetBool());
  EXPECT_EQ(json::member(*exact, "items")->GetArray().Size(), 1u);
}

// Search on PostgreSQL: the first statement of every searched entity (its first window, or
// its keys' counts) goes in one pipeline, so a one-word search of two entities waits for one
// round trip (it waited for one per entity), a two-word one for two; and its statements run
// generic plans, planned once per connection (pg_prepared_statements of the store's only
// connection), not a custom plan per execution — except the "did you mean" fallback's.
TEST_F(PgRecordTest, SearchSendsEveryEntitysFirstStatementTogetherAndPlansThemOnce) {
  schema::Registry reg;
  fixtures::add_users_and_teams(reg);
  reg.add(schema::parse_entity(R"({"name":"account","title_field":"name","fields":[
      {"name":"name","type":"text","required":true,"searchable":true}]})",
                               "t")
              .value());
  reg.add(schema::parse_entity(R"({"name":"contact","title_field":"full_name","fields":[
      {"name":"full_name","type":"text","required":true,"searchable":true}]})",
                               "t")
              .value());
  storage::StoreOptions options;
  options.pool_size = 1;
  auto opened = storage::open_store(db->url(), options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto* pg = dynamic_cast<storage::postgres::PgStore*>(opened->get());
  ASSERT_NE(pg, nullptr);
  RecordService svc(*pg, reg, hooks, bus, clock, ids);
  ASSERT_TRUE(svc.sync_schema().ok());
  const auto acc = reg.get("account");
  const auto con = reg.get("contact");
  for (const char* name : {"Acme North", "Acme South", "Beta Works"})
    ASSERT_TRUE(svc.create(admin, *acc, std::string(R"({"name":")") + name + "\"}").ok());
  ASSERT_TRUE(svc.create(admin, *con, R"({"full_name":"Acme Person"})").ok());

  const auto titles = [&](std::string_view q) {
    auto body = svc.search(admin, q, "", 10);
    EXPECT_TRUE(body.ok()) << body.error().message;
    std::vector<std::string> out;
    if (!body.ok()) return out;
    auto doc = json::parse(*body);
    for (const auto& item : json::member(*doc, "items")->GetArray())
      out.push_back(std::string(json::member(item, "entity")->GetString()) + ":" +
                    json::member(item, "title")->GetString());
    std::sort(out.begin(), out.end());
    return out;
  };
  auto before = pg->round_trips();
  EXPECT_EQ(titles("acme"), (std::vector<std::string>{"account:Acme North", "account:Acme South",
                                                      "contact:Acme Person"}));
  EXPECT_EQ(pg->round_trips() - before, 1u);
  before = pg->round_trips();
  EXPECT_EQ(titles("acme nor"), (std::vector<std::string>{"account:Acme North"}));
  EXPECT_EQ(pg->round_trips() - before, 2u) << "the keys' counts together, then one window";
  // The "did you mean" fallback's similarity statements are planned per execution, as before.
  auto similar = json::parse(svc.search(admin, "Acmee Nortth", "", 10).value());
  ASSERT_TRUE(similar.ok());
  EXPECT_TRUE(json::member(*similar, "fuzzy")->GetBool());

  auto tx = pg->read().value();
  const storage::SqlValue like[] = {std::string("%fts_match%")};
  auto plans = tx->query(
      "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE ?",
      like);
  ASSERT_TRUE(plans.ok()) << plans.error().message;
  ASSERT_FALSE(plans->rows.empty());
  for (const auto& r : plans->rows) {
    EXPECT_GE(std::get<std::int64_t>(r[0]), 1);
    EXPECT_EQ(std::get<std::int64_t>(r[1]), 0);
  }
  const storage::SqlValue fuzzy_like[] = {std::string("%fuzzy_score%")};
  auto fuzzy_plans = tx->query(
      "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE ?",
      fuzzy_like);
  ASSERT_TRUE(fuzzy_plans.ok()) << fuzzy_plans.error().message;
  ASSERT_FALSE(fuzzy_plans->rows.empty());
  for (const auto& r : fuzzy_plans->rows) {
    EXPECT_EQ(std::get<std::int64_t>(r[0]), 0);
    EXPECT_GE(std::get<std::int64_t>(r[1]), 1);
  }
}

TEST_F(PgRecordTest, ListIndexesEndWithIdNullsFirstAndReplaceThoseOfEarlierVersions) {
  {
    // As an earlier version left them: the one-column and the two-column index.
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("DROP INDEX ix_account__city__created_at__id").ok());
    ASSERT_TRUE(tx->exec("CREATE INDEX ix_account__city ON account (city)").ok());
    ASSERT_TRUE(
        tx->exec("CREATE INDEX ix_account__city__created_at ON account (city, created_at)").ok());
    ASSERT_TRUE(tx->exec("DROP INDEX ix_account__created_at__id").ok());
    ASSERT_TRUE(tx->exec("CREATE INDEX ix_account__created_at ON account (created_at)").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  ASSERT_TRUE(service->sync_schema().ok());
  std::vector<std::string> got;
  for (const auto& ix : indexes_of("account"))
    if (ix.starts_with("ix_account__")) got.push_back(ix.substr(0, ix.find(' ')));
  EXPECT_EQ(
      got, (std::vector<std::string>{
               "ix_account__city__created_at__id", "ix_account__code", "ix_account__created_at__id",
               "ix_account__name__created_at__id", "ix_account__name__trgm",
               "ix_account__owner_id__created_at__id", "ix_account__team_id__created_at__id",
               "ix_account__updated_at__created_at__id"}));
  for (const auto& ix : indexes_of("account")) {
    if (ix.starts_with("ix_account__city__created_at__id ")) {
      EXPECT_NE(ix.find("(city NULLS FIRST, created_at NULLS FIRST, id NULLS FIRST)"),
                std::string::npos)
          << ix;
    }
  }
  // The list still answers newest first, filtered.
  clock.now += 1000;
  ASSERT_TRUE(service->create(admin, *account, R"({"name":"Old","city":"Hefei"})").ok());
  clock.now += 1000;
  ASSERT_TRUE(service->create(admin, *account, R"({"name":"New","city":"Hefei"})").ok());
  ListParams lp;
  lp.filter = R"({"field":"city","op":"=","value":"Hefei"})";
  auto doc = json::parse(service->list(admin, *account, lp).value());
  const auto& items = (*json::member(*doc, "items")).GetArray();
  ASSERT_EQ(items.Size(), 2u);
  EXPECT_STREQ((*json::member(items[0], "name")).GetString(), "New");
  EXPECT_STREQ((*json::member(items[1], "name")).GetString(), "Old");
}

// Issue #5 (list sorted), on PostgreSQL: sorting by one field (city) reads its index
// (city, created_at, id) in order, first pages and cursor pages, forwards and backwards; the
// cursor of a descending order reads the rest of its value's run and then the NULLs (last).
TEST_F(PgRecordTest, SortByAFieldOfFewValuesReadsItsIndexInOrderAndPagesAcrossTheGroups) {
  std::vector<std::string> bodies;
  std::vector<RowTimes> times;
  for (int i = 0; i < 30; ++i) {
    const char* city = i % 5 == 0 ? "null" : i % 3 ? "\"Hefei\"" : "\"Xiamen\"";
    bodies.push_back("{\"name\":\"n" + std::to_string(i) + "\",\"city\":" + city + "}");
    const Millis created = 1700000000000 + (i * 7919 % 30) / 2 * 1000;  // pairs share a time
    times.push_back({created, created});
  }
  access::Principal system = admin;
  system.channel = "system";
  auto ids = service->create_batch(system, *account, bodies, times);
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  struct Row {
    int city;  // 0: none, 1: Hefei, 2: Xiamen
    Millis created;
    std::int64_t id;
  };
  std::vector<Row> rows;
  for (int i = 0; i < 30; ++i)
    rows.push_back({i % 5 == 0 ? 0 : i % 3 ? 1 : 2, times[i].created_at, (*ids)[i]});
  for (bool desc : {false, true}) {
    std::vector<Row> want = rows;
    std::sort(want.begin(), want.end(), [desc](const Row& a, const Row& b) {
      auto ka = std::tie(a.city, a.created, a.id), kb = std::tie(b.city, b.created, b.id);
      return desc ? kb < ka : ka < kb;
    });
    ListParams lp;
    lp.sort = desc ? "-city" : "city";
    lp.limit = 4;
    std::vector<std::int64_t> got;
    std::string cursor_plan;
    for (int page = 0; page < 20; ++page) {
      if (page == 2) cursor_plan = list_plan(lp);  // past the 6 records without a city
      auto doc = json::parse(service->list(admin, *account, lp).value());
      for (const auto& item : (*json::member(*doc, "items")).GetArray())
        got.push_back(std::stoll((*json::member(item, "id")).GetString()));
      const json::Value* next = json::member(*doc, "next_cursor");
      if (next->IsNull()) break;
      lp.cursor = next->GetString();
    }
    std::vector<std::int64_t> want_ids;
    for (const auto& r : want) want_ids.push_back(r.id);
    EXPECT_EQ(got, want_ids) << lp.sort;
    lp.cursor.clear();
    std::string plan = list_plan(lp);
    EXPECT_NE(plan.find(std::string(desc ? "Index Scan Backward" : "Index Scan") +
                        " using ix_account__city__created_at__id on account"),
              std::string::npos)
        << lp.sort << ": " << plan;
    EXPECT_EQ(plan.find("Sort"), std::string::npos) << lp.sort << ": " << plan;
    // The cursor page seeks the index: a row comparison in its Index Cond.
    EXPECT_NE(cursor_plan.find("Index Cond: (ROW(city, created_at, id) "), std::string::npos)
        << lp.sort << ": " << cursor_plan;
  }
}

}  // namespace
}  // namespace rapport::record
