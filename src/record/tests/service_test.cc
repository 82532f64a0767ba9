// The record pipeline on a real SQLite store: audit diffs, versions, soft delete, hooks, events,
// idempotency and the one-transaction rule for failed requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "access/auth.h"
#include "record/service.h"
#include "record/tests/record_fixtures.h"
#include "storage/sqlite/sqlite_store.h"

namespace rapport::record {
namespace {

// Waits (up to 10 s) until an asynchronous answer's callback has run (`calls` above 0).
void wait_for_answer(const std::atomic<int>& calls) {
  for (int i = 0; i < 10'000 && calls == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

namespace fs = std::filesystem;

using fixtures::FixedClock;

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
    // Concurrent creates (the grouped-create tests) publish from several threads at once.
    bus.subscribe([this](const Event& e) {
      std::lock_guard lock(events_mu);
      events.push_back(e);
    });
    admin = fixtures::admin_principal();
    account = registry.get("account");
  }
  // An entity without hooks (so its creates take the grouped write): "lead" with a required
  // title, its table created.
  auto add_lead() {
    registry.add(schema::parse_entity(R"({"name":"lead","title_field":"title","fields":[
        {"name":"title","type":"text","required":true}]})",
                                      "t")
                     .value());
    EXPECT_TRUE(service->sync_schema().ok());
    return registry.get("lead");
  }
  void TearDown() override {
    service.reset();
    store.reset();
    fs::remove_all(dir);
  }
  // The id of a record the administrator creates (0, and a test failure, when refused).
  std::int64_t id_of(const schema::Entity& e, const std::string& body) {
    auto r = service->create(admin, e, body);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->id : 0;
  }
  // An account's body with its name, owner and team.
  static std::string body(const std::string& name, std::int64_t owner, std::int64_t team) {
    return R"({"name":")" + name + R"(","owner_id":")" + std::to_string(owner) +
           R"(","team_id":")" + std::to_string(team) + R"("})";
  }
  // The service without the page answer cache: for tests that count the record text cache's
  // hits and misses, which a page served whole from that cache would not touch.
  void without_page_cache() {
    RecordOptions options;
    options.page_cache_bytes = 0;
    service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids, options);
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
  std::mutex events_mu;  // guards events while test threads publish
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

// An entity without hooks takes the grouped write (Store::write_grouped) with an
// Idempotency-Key too: the replay check and the key's claim run in the grouped item.
TEST_F(ServiceTest, IdempotentCreateWithoutHooksIsAGroupedWriteAndReplaysTheFirstAnswer) {
  const auto lead = add_lead();
  auto* sqlite = dynamic_cast<storage::sqlite::SqliteStore*>(store.get());
  ASSERT_NE(sqlite, nullptr);
  auto leads = [&]() {
    auto doc = json::parse(service->list(admin, *lead, {}).value());
    return static_cast<int>((*json::member(*doc, "items")).Size());
  };
  const auto before = sqlite->group_commit_stats().combined;
  auto a = service->create(admin, *lead, R"({"title":"A"})", "key-1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = service->create(admin, *lead, R"({"title":"A"})", "key-1");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->id, a->id);
  EXPECT_EQ(b->body, a->body);
  EXPECT_EQ(sqlite->group_commit_stats().combined - before, 2);
  EXPECT_EQ(leads(), 1);
  const auto published = events.size();
  // another body with the same key: refused, nothing written
  auto c = service->create(admin, *lead, R"({"title":"Other"})", "key-1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kConflict);
  EXPECT_EQ(c.error().field, "Idempotency-Key");
  EXPECT_EQ(leads(), 1);
  EXPECT_EQ(events.size(), published);  // a replay or a conflict announces nothing
  // a new key: a new record; invalid values with a key: the error naming the field
  auto d = service->create(admin, *lead, R"({"title":"A"})", "key-2");
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->id, a->id);
  auto invalid = service->create(admin, *lead, R"({"title":5})", "key-3");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, Errc::kValidation);
  EXPECT_EQ(invalid.error().field, "title");
  // concurrent requests with one key: one record, every answer names it
  constexpr int kThreads = 8;
  std::vector<std::int64_t> ids(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      auto r = service->create(admin, *lead, R"({"title":"Concurrent"})", "key-concurrent");
      if (r.ok()) ids[i] = r->id;
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(ids[i], ids[0]) << i;
  EXPECT_NE(ids[0], 0);
  EXPECT_EQ(leads(), 3);
}

// create_async: queued behind a writer that holds the connection, the create of an entity
// without hooks returns without its answer; the holder's COMMIT answers it (201, the record,
// its event), once. A create that fails before its write (a bad value) is answered at once,
// with the error naming the field, and writes nothing.
TEST_F(ServiceTest, AsyncCreateIsAnsweredByTheCommitOfItsGroupAndFailuresAtOnce) {
  const auto lead = add_lead();
  auto held = store->write();
  ASSERT_TRUE(held.ok());
  std::atomic<int> calls{0};
  std::optional<Result<RecordResult>> answer;
  service->create_async(admin, *lead, R"({"title":"Later"})", "", DedupeMode::kWarn,
                        [&](Result<RecordResult> r) {
                          answer.emplace(std::move(r));
                          ++calls;  // after the answer: the test thread reads it once it sees 1
                        });
  EXPECT_EQ(calls, 0);  // waiting for the writer's batch, no thread of its own
  const auto published = events.size();
  ASSERT_TRUE((*held)->commit().ok());
  // The store's completion thread answers it after the batch's COMMIT (not the committer).
  wait_for_answer(calls);
  ASSERT_EQ(calls, 1);
  ASSERT_TRUE(answer->ok()) << answer->error().message;
  EXPECT_EQ((*answer)->status, 201);
  EXPECT_NE((*answer)->body.find("Later"), std::string::npos);
  EXPECT_EQ(events.size(), published + 1);
  auto read = service->get(admin, *lead, (*answer)->id);
  ASSERT_TRUE(read.ok());

  std::optional<Result<RecordResult>> bad;
  service->create_async(admin, *lead, R"({"title":5})", "", DedupeMode::kWarn,
                        [&](Result<RecordResult> r) { bad.emplace(std::move(r)); });
  ASSERT_TRUE(bad.has_value());  // answered before create_async returned
  ASSERT_FALSE(bad->ok());
  EXPECT_EQ(bad->error().code, Errc::kValidation);
  EXPECT_EQ(bad->error().field, "title");
  auto doc = json::parse(service->list(admin, *lead, {}).value());
  EXPECT_EQ((*json::member(*doc, "items")).Size(), 1u);
}

// update_async: queued behind a writer that holds the connection, an update of an entity
// without hooks returns without its answer; the holder's COMMIT answers it (200, version 2, its
// event), once. Its refusals answer as update's do: a stale If-Match 409, an unknown id 404, a
// bad or missing required value 422 naming the field; none of them writes.
TEST_F(ServiceTest, AsyncUpdateIsAnsweredByTheCommitOfItsGroupAndRefusesAsUpdateDoes) {
  const auto lead = add_lead();
  const std::int64_t id = id_of(*lead, R"({"title":"First"})");
  ASSERT_NE(id, 0);
  // The answer of one update_async, waited for (by the completion thread, or at once).
  const auto answer_of = [&](std::int64_t which, const std::string& body,
                             std::optional<std::int64_t> if_match) {
    std::mutex mu;
    std::optional<Result<RecordResult>> got;
    service->update_async(admin, *lead, which, body, if_match, [&](Result<RecordResult> r) {
      std::lock_guard lock(mu);
      got.emplace(std::move(r));
    });
    for (int i = 0; i < 10'000; ++i) {
      {
        std::lock_guard lock(mu);
        if (got) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::lock_guard lock(mu);
    return got;
  };
  auto held = store->write();
  ASSERT_TRUE(held.ok());
  std::atomic<int> calls{0};
  std::optional<Result<RecordResult>> answer;
  service->update_async(admin, *lead, id, R"({"title":"Second"})", 1, [&](Result<RecordResult> r) {
    answer.emplace(std::move(r));
    ++calls;  // after the answer: the test thread reads it once it sees 1
  });
  EXPECT_EQ(calls, 0);  // waiting for the writer's batch, no thread of its own
  const auto published = events.size();
  ASSERT_TRUE((*held)->commit().ok());
  wait_for_answer(calls);
  ASSERT_EQ(calls, 1);
  ASSERT_TRUE(answer->ok()) << answer->error().message;
  EXPECT_EQ((*answer)->status, 200);
  EXPECT_EQ((*answer)->version, 2);
  EXPECT_NE((*answer)->body.find("Second"), std::string::npos);
  EXPECT_EQ(events.size(), published + 1);

  auto stale = answer_of(id, R"({"title":"Third"})", 1);
  ASSERT_TRUE(stale.has_value());
  ASSERT_FALSE(stale->ok());
  EXPECT_EQ(stale->error().code, Errc::kConflict);
  auto unknown = answer_of(id + 1'000'000, R"({"title":"Third"})", std::nullopt);
  ASSERT_TRUE(unknown.has_value());
  ASSERT_FALSE(unknown->ok());
  EXPECT_EQ(unknown->error().code, Errc::kNotFound);
  auto bad = answer_of(id, R"({"title":5})", std::nullopt);
  ASSERT_TRUE(bad.has_value());
  ASSERT_FALSE(bad->ok());
  EXPECT_EQ(bad->error().code, Errc::kValidation);
  EXPECT_EQ(bad->error().field, "title");
  auto missing = answer_of(id, R"({"title":null})", std::nullopt);
  ASSERT_TRUE(missing.has_value());
  ASSERT_FALSE(missing->ok());
  EXPECT_EQ(missing->error().code, Errc::kValidation);
  EXPECT_EQ(missing->error().field, "title");
  auto read = service->get(admin, *lead, id);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->version, 2);
  EXPECT_NE(read->body.find("Second"), std::string::npos);
  EXPECT_EQ(events.size(), published + 1);
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

// A caller that already holds the filter parsed (the customer 360's account-id equality, one
// document for its three lists) passes it: the list is built from that document and the text is
// not parsed again, so the page is the one the text gives (R-360 answers are unchanged).
// A caller listing by one record's id (the customer 360: an account's contacts) passes the
// equality compiled by compile_equality — its SQL kept per role and entity, the id bound —
// and the list uses it instead of compiling the filter per request; the page is the one the
// filter's text gives.
TEST_F(ServiceTest, ListUsesACompiledEqualityKeptPerRoleWithTheIdBound) {
  auto user = registry.get("user");
  auto team = registry.get("team");
  const std::int64_t u1 = id_of(*user, R"({"username":"u1"})"),
                     u2 = id_of(*user, R"({"username":"u2"})"),
                     t1 = id_of(*team, R"({"name":"T1"})");
  for (auto [name, owner] : {std::pair{"A", u1}, {"B", u2}, {"C", u1}})
    id_of(*account, body(name, owner, t1));
  auto filter_of = [](std::int64_t owner) {
    return equals_filter("owner_id", std::to_string(owner));
  };
  ListParams by_text;
  by_text.filter = filter_of(u1);
  by_text.cached = false;
  const std::string want = service->list(admin, *account, by_text).value();
  EXPECT_EQ(json::parse(want).value()["items"].Size(), 2u);

  const std::size_t compiled_before = service->filters_compiled();
  auto cond = service->compile_equality(admin, *account, "owner_id", u1);
  ASSERT_TRUE(cond.ok()) << cond.error().message;
  std::vector<storage::SqlValue> params;
  auto doc = json::parse(by_text.filter).value();
  EXPECT_EQ(cond->sql, compile_filter(doc, *account, admin, store->dialect(), params).value());
  EXPECT_EQ(cond->params, params);
  ListParams compiled = by_text;
  compiled.parsed_filter = &doc;
  compiled.compiled_filter = &*cond;
  EXPECT_EQ(service->list(admin, *account, compiled).value(), want);
  // Another id: the kept SQL, not compiled again, with that id bound.
  auto other = service->compile_equality(admin, *account, "owner_id", u2);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->sql, cond->sql);
  EXPECT_EQ(other->params, std::vector<storage::SqlValue>{storage::SqlValue(u2)});
  EXPECT_EQ(service->filters_compiled(), compiled_before + 1);
  // The list takes the compiled condition (here, on purpose, not the text's: u2's one record).
  compiled.compiled_filter = &*other;
  EXPECT_EQ(json::parse(service->list(admin, *account, compiled).value()).value()["items"].Size(),
            1u);
  // Only a reference field.
  auto bad = service->compile_equality(admin, *account, "name", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kInternal);
}

TEST_F(ServiceTest, ListUsesTheCallersParsedFilterInsteadOfParsingItsTextAgain) {
  for (const char* name : {"Acme", "Other", "Acme"})
    ASSERT_TRUE(service->create(admin, *account, std::string("{\"name\":\"") + name + "\"}").ok());
  ListParams by_text;
  by_text.filter = R"({"field":"name","op":"=","value":"Acme"})";
  const std::string want = service->list(admin, *account, by_text).value();
  EXPECT_EQ(json::parse(want).value()["items"].Size(), 2u);
  auto doc = json::parse(by_text.filter).value();
  ListParams parsed = by_text;
  parsed.parsed_filter = &doc;
  parsed.cached = false;  // not the page answer cache's copy of the first answer
  EXPECT_EQ(service->list(admin, *account, parsed).value(), want);
  // The text is not parsed when the document is given (not valid JSON here)…
  parsed.filter = "{not json";
  EXPECT_EQ(service->list(admin, *account, parsed).value(), want);
  // …and without one it is, with the same error as before.
  parsed.parsed_filter = nullptr;
  auto bad = service->list(admin, *account, parsed);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kBadFilter);
  EXPECT_EQ(bad.error().field, "filter");
  EXPECT_TRUE(bad.error().message.starts_with("filter is not valid JSON: ")) << bad.error().message;
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

// A new table has the deletion mark and merge target right after the system columns (a read by
// id's head statement and a list's live-row check then read a row's header only that far); a
// table made by an earlier version, with them last, keeps its order and works the same: create,
// read, list, update, delete, restore.
TEST_F(ServiceTest, DeletionMarkFollowsTheSystemColumnsInANewTableAndAnOldOrderStillWorks) {
  auto columns = [&](const std::string& table) {
    auto tx = store->read().value();
    const storage::SqlValue name[] = {table};
    auto rows = tx->query("SELECT name FROM pragma_table_info(?) ORDER BY cid", name).value();
    std::vector<std::string> out;
    for (const auto& r : rows.rows) out.push_back(std::get<std::string>(r[0]));
    return out;
  };
  const auto fresh = columns("account");
  const std::vector<std::string> head(fresh.begin(), fresh.begin() + 10);
  EXPECT_EQ(head, (std::vector<std::string>{"id", "version", "created_at", "updated_at",
                                            "created_by", "updated_by", "owner_id", "team_id",
                                            "deleted_at", "merged_into"}));
  EXPECT_EQ(fresh.back(), "limit__cur");

  // The order of earlier versions: every field's columns, then the marks.
  {
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("DROP TABLE account").ok());
    std::string ddl = "CREATE TABLE account (";
    for (const auto& c : fresh)
      if (c != "deleted_at" && c != "merged_into")
        ddl += quote(c) + (c == "id" ? " INTEGER PRIMARY KEY, " : ", ");
    ddl += "deleted_at TEXT, merged_into INTEGER)";
    ASSERT_TRUE(tx->exec(ddl).ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids);
  ASSERT_TRUE(service->sync_schema().ok());
  EXPECT_EQ(columns("account").back(), "merged_into") << "an existing table keeps its order";
  const std::int64_t id = id_of(*account, R"({"name":"Old Order Ltd","code":"OO-1"})");
  ASSERT_NE(id, 0);
  auto got = service->get(admin, *account, id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->body, fixtures::reference_text(*store, *account, admin, id, ""));
  EXPECT_NE(got->body.find(R"("name":"Old Order Ltd")"), std::string::npos);
  EXPECT_EQ(count_accounts(), 1);
  ASSERT_TRUE(service->update(admin, *account, id, R"({"kind":"individual"})", got->version).ok());
  ASSERT_TRUE(service->remove(admin, *account, id).ok());
  auto gone = service->get(admin, *account, id);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::kNotFound);
  EXPECT_EQ(count_accounts(), 0);
  ASSERT_TRUE(service->restore(admin, *account, id).ok());
  auto back = service->get(admin, *account, id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_NE(back->body.find(R"("kind":"individual")"), std::string::npos);
  EXPECT_EQ(count_accounts(), 1);
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

// A caller with account read scope `read` as user `user` of team `team`.
access::Principal reader(access::Scope read, std::int64_t user, std::int64_t team) {
  auto role = std::make_shared<access::Role>();
  role->entities["account"].read = read;
  access::Principal p;
  p.role = role;
  p.user_id = user;
  p.team_id = team;
  p.username = "reader" + std::to_string(user);
  return p;
}

// User 77, who reads every account but not the account field `hidden`.
access::Principal masked_reader(const std::string& hidden) {
  auto role = std::make_shared<access::Role>();
  role->entities["account"].read = access::Scope::kAll;
  role->fields["account." + hidden] = access::FieldAccess::kHidden;
  access::Principal p;
  p.role = role;
  p.user_id = 77;
  return p;
}

// The ids of a search's items, in order.
std::vector<std::int64_t> found_ids(const Result<std::string>& answer) {
  EXPECT_TRUE(answer.ok()) << (answer.ok() ? "" : answer.error().message);
  std::vector<std::int64_t> ids;
  if (!answer.ok()) return ids;
  auto doc = json::parse(*answer);
  for (const auto& item : (*json::member(*doc, "items")).GetArray())
    ids.push_back(std::stoll((*json::member(item, "id")).GetString()));
  return ids;
}

TEST_F(ServiceTest, GroupedCreateRefusedByAUniqueValueFailsAloneAndTheOthersAreWrittenOnce) {
  // Grouped creates share one savepoint per run: the third create's row breaks the unique code
  // of the first, before it changed anything, so it fails alone, naming the field, and the run
  // goes on without running the first two again. Each other create is written once: one row,
  // one audit entry, one search entry.
  registry.add(schema::parse_entity(R"({"name":"lead","title_field":"title","fields":[
      {"name":"title","type":"text","required":true,"searchable":true},
      {"name":"code","type":"text","unique":true}]})",
                                    "t")
                   .value());
  ASSERT_TRUE(service->sync_schema().ok());
  const auto lead = registry.get("lead");
  auto* sqlite = dynamic_cast<storage::sqlite::SqliteStore*>(store.get());
  ASSERT_NE(sqlite, nullptr);
  const auto before = sqlite->group_commit_stats();
  constexpr int kCreates = 4;
  std::vector<std::optional<Result<RecordResult>>> results(kCreates);
  std::vector<std::thread> threads;
  {
    auto held = store->write();  // holds the writer: the creates queue behind it, in order
    ASSERT_TRUE(held.ok());
    for (int i = 0; i < kCreates; ++i) {
      threads.emplace_back([&, i] {
        const std::string code = i == 2 ? "C0" : "C" + std::to_string(i);
        results[i] = service->create(
            admin, *lead,
            R"({"title":"runagain)" + std::to_string(i) + R"(","code":")" + code + R"("})");
      });
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (sqlite->grouped_writes_queued() < i + 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ASSERT_EQ(sqlite->grouped_writes_queued(), i + 1);
    }
    ASSERT_TRUE((*held)->commit().ok());
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(results[2]->ok());
  EXPECT_EQ(results[2]->error().code, Errc::kDuplicate);
  EXPECT_EQ(results[2]->error().field, "code");
  const auto after = sqlite->group_commit_stats();
  EXPECT_EQ(after.rerun - before.rerun, 0);
  EXPECT_EQ(after.committed - before.committed, 4);  // the held write and three creates
  for (int i : {0, 1, 3}) {
    ASSERT_TRUE(results[i]->ok()) << i << ": " << results[i]->error().message;
    const std::int64_t id = (*results[i])->id;
    EXPECT_EQ(found_ids(service->search(admin, "runagain" + std::to_string(i), "lead", 10)),
              std::vector<std::int64_t>{id});
    auto h = json::parse(service->history(admin, *lead, id).value());
    EXPECT_EQ((*json::member(*h, "items")).Size(), 1u) << i;
  }
  EXPECT_TRUE(found_ids(service->search(admin, "runagain2", "lead", 10)).empty());
  auto list = json::parse(service->list(admin, *lead, {}).value());
  EXPECT_EQ((*json::member(*list, "items")).Size(), 3u);
}

TEST_F(ServiceTest, SearchInAScopeOfFewRecordsFindsThemPastManyHiddenMatchesBestFirst) {
  auto user = registry.get("user");
  auto team = registry.get("team");
  const std::int64_t u1 = id_of(*user, R"({"username":"u1"})"),
                     u2 = id_of(*user, R"({"username":"u2"})"),
                     u3 = id_of(*user, R"({"username":"u3"})"),
                     u4 = id_of(*user, R"({"username":"u4"})"),
                     t1 = id_of(*team, R"({"name":"T1"})"), t2 = id_of(*team, R"({"name":"T2"})");
  auto acc = [&](const std::string& name, std::int64_t owner, std::int64_t t) {
    return id_of(*account, R"({"name":")" + name + R"(","owner_id":")" + std::to_string(owner) +
                               R"(","team_id":")" + std::to_string(t) + R"("})");
  };
  const std::int64_t longer = acc("Vexolith Mine", u1, t2);
  const std::int64_t exact = acc("Vex Mine", u1, t2);
  const std::int64_t mate = acc("Vex Teammate", u2, t1);
  const std::int64_t gone = acc("Vex Deleted Mine", u1, t1);
  ASSERT_TRUE(service->remove(admin, *account, gone).ok());
  // More hidden matches than a search reads of the index (2,048 entries), all newer.
  std::vector<std::string> bodies;
  for (int i = 0; i < 2100; ++i)
    bodies.push_back(R"({"name":"Vex Hidden )" + std::to_string(i) + R"(","owner_id":")" +
                     std::to_string(u3) + R"(","team_id":")" + std::to_string(t2) + R"("})");
  ASSERT_TRUE(service->create_batch(admin, *account, bodies).ok());

  // Own: only u1's live records, the exact word first, then the longer one.
  const auto own = reader(access::Scope::kOwn, u1, t1);
  EXPECT_EQ(found_ids(service->search(own, "vex", "account", 10)),
            (std::vector<std::int64_t>{exact, longer}));
  EXPECT_EQ(found_ids(service->search(own, "v", "account", 1)), (std::vector<std::int64_t>{exact}));
  EXPECT_EQ(found_ids(service->search(own, "vex teammate", "account", 10)),
            std::vector<std::int64_t>{});
  // Team: u1's and team T1's (u2's), newest first within the exact word; several words.
  const auto team_scope = reader(access::Scope::kTeam, u1, t1);
  EXPECT_EQ(found_ids(service->search(team_scope, "vex", "account", 10)),
            (std::vector<std::int64_t>{mate, exact, longer}));
  EXPECT_EQ(found_ids(service->search(team_scope, "v m", "account", 10)),
            (std::vector<std::int64_t>{exact, longer}));
  EXPECT_EQ(found_ids(service->search(team_scope, "vex t", "account", 10)),
            (std::vector<std::int64_t>{mate}));
  // Someone who owns nothing and whose team owns nothing finds nothing, not even by its name.
  EXPECT_EQ(found_ids(service->search(reader(access::Scope::kTeam, u4, 0), "vex", "account", 10)),
            std::vector<std::int64_t>{});
  EXPECT_EQ(found_ids(service->search(reader(access::Scope::kOwn, u4, t1), "hidden", "", 10)),
            std::vector<std::int64_t>{});
  // All: the index, newest first: hidden ones.
  auto all = found_ids(service->search(reader(access::Scope::kAll, u4, 0), "vex", "account", 10));
  ASSERT_EQ(all.size(), 10u);
  for (auto id : all) EXPECT_TRUE(id != exact && id != longer && id != mate && id != gone);
}

// The plan of the list statement a caller's page runs (list_statement with the read
// transaction, so that it may count the caller's scope first), one line per step.
std::string scoped_list_plan(storage::Store& store, RecordService& service,
                             const access::Principal& p, const schema::Entity& e,
                             const ListParams& lp) {
  auto tx = store.read().value();
  auto st = service.list_statement(p, e, lp, tx.get());
  EXPECT_TRUE(st.ok());
  if (!st.ok()) return {};
  auto rows = tx->query("EXPLAIN QUERY PLAN " + st->sql, st->params).value();
  std::string plan;
  for (const auto& r : rows.rows) plan += std::get<std::string>(r.back()) + "\n";
  return plan;
}

// Every page of a list, in order: the ids of its items.
std::vector<std::int64_t> listed_ids(RecordService& service, const access::Principal& p,
                                     const schema::Entity& e, ListParams lp) {
  std::vector<std::int64_t> ids;
  for (int page = 0; page < 100; ++page) {
    auto answer = service.list(p, e, lp);
    EXPECT_TRUE(answer.ok()) << (answer.ok() ? "" : answer.error().message);
    if (!answer.ok()) break;
    auto doc = json::parse(*answer);
    for (const auto& item : (*json::member(*doc, "items")).GetArray())
      ids.push_back(std::stoll((*json::member(item, "id")).GetString()));
    const json::Value* next = json::member(*doc, "next_cursor");
    if (next->IsNull()) break;
    lp.cursor = next->GetString();
  }
  return ids;
}

TEST_F(ServiceTest, ListOfAFewRecordScopeIsReadFromTheScopeAndALargeScopeFromTheFiltersIndex) {
  auto user = registry.get("user");
  auto team = registry.get("team");
  const std::int64_t u1 = id_of(*user, R"({"username":"u1"})"),
                     u2 = id_of(*user, R"({"username":"u2"})"),
                     u3 = id_of(*user, R"({"username":"u3"})"),
                     t1 = id_of(*team, R"({"name":"T1"})"), t2 = id_of(*team, R"({"name":"T2"})");
  // Newest first: each create a millisecond after the one before.
  std::vector<std::int64_t> mine, mates;  // u1's Acme records; u2's Acme records in u1's team
  auto add = [&](const std::string& name, std::int64_t owner, std::int64_t t) {
    clock.now += 1;
    return id_of(*account, body(name, owner, t));
  };
  for (int i = 0; i < 4; ++i) {
    mine.push_back(add("Acme", u1, t2));
    add("Other", u1, t2);
    mates.push_back(add("Acme", u2, t1));
    add("Acme", u3, t2);  // neither u1's nor in u1's team
  }
  const std::int64_t gone = add("Acme", u1, t1);
  ASSERT_TRUE(service->remove(admin, *account, gone).ok());

  ListParams lp;
  lp.filter = R"({"field":"name","op":"=","value":"Acme"})";
  lp.limit = 3;
  const auto own = reader(access::Scope::kOwn, u1, t1);
  const auto in_team = reader(access::Scope::kTeam, u1, t1);
  // A small scope drives: its ids through the owner (and team) index, then the rows by id,
  // filtered and sorted — not the name index, whose "Acme" rows are mostly someone else's.
  for (const auto* p : {&own, &in_team}) {
    std::string plan = scoped_list_plan(*store, *service, *p, *account, lp);
    EXPECT_NE(plan.find("ix_account__owner_id__created_at"), std::string::npos) << plan;
    EXPECT_NE(plan.find("INTEGER PRIMARY KEY (rowid=?)"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("ix_account__name__created_at"), std::string::npos) << plan;
  }
  EXPECT_NE(scoped_list_plan(*store, *service, in_team, *account, lp)
                .find("ix_account__team_id__created_at"),
            std::string::npos);
  // The same records, pages and order as the plain statement gives.
  std::vector<std::int64_t> want(mine.rbegin(), mine.rend());
  EXPECT_EQ(listed_ids(*service, own, *account, lp), want);
  std::vector<std::int64_t> both;
  for (int i = 3; i >= 0; --i)
    both.insert(both.end(), {mates[static_cast<size_t>(i)], mine[static_cast<size_t>(i)]});
  EXPECT_EQ(listed_ids(*service, in_team, *account, lp), both);
  ListParams oldest = lp;
  oldest.sort = "created_at";
  EXPECT_EQ(listed_ids(*service, own, *account, oldest), mine);
  // An equality the filter requires that has fewer rows than the scope lets its index drive
  // (four "Other" records against the thirteen of u1's team scope, the deleted one counted).
  ListParams other = lp;
  other.filter =
      R"({"and":[{"field":"name","op":"=","value":"Other"},{"field":"kind","op":"=","value":"company"}]})";
  std::string narrow = scoped_list_plan(*store, *service, in_team, *account, other);
  EXPECT_NE(narrow.find("USING INDEX ix_account__name__created_at (name=?)"), std::string::npos)
      << narrow;
  EXPECT_EQ(listed_ids(*service, in_team, *account, other).size(), 4u);
  // An administrator's list is planned as before.
  EXPECT_NE(scoped_list_plan(*store, *service, admin, *account, lp)
                .find("USING INDEX ix_account__name__created_at (name=?)"),
            std::string::npos);

  // A scope of kScopeFirstMax records or more does not drive: the filter's index does, and a
  // team scope is not collected through the owner and team indexes and sorted whole.
  std::vector<std::string> many;
  for (int i = 0; i < kScopeFirstMax; ++i)
    many.push_back(body("Bulk " + std::to_string(i), u2, t1));
  clock.now += 1;
  ASSERT_TRUE(service->create_batch(admin, *account, many).ok());
  std::string plan = scoped_list_plan(*store, *service, in_team, *account, lp);
  EXPECT_NE(plan.find("USING INDEX ix_account__name__created_at (name=?)"), std::string::npos)
      << plan;
  EXPECT_EQ(plan.find("MULTI-INDEX OR"), std::string::npos) << plan;
  ListParams unfiltered;
  plan = scoped_list_plan(*store, *service, in_team, *account, unfiltered);
  EXPECT_NE(plan.find("ix_account__created_at"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("MULTI-INDEX OR"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
  EXPECT_EQ(listed_ids(*service, in_team, *account, lp), both);
  // Every record of the scope once: u1's 8 and the team's 4 + kScopeFirstMax.
  unfiltered.limit = 500;
  auto every = listed_ids(*service, in_team, *account, unfiltered);
  EXPECT_EQ(std::set<std::int64_t>(every.begin(), every.end()).size(),
            static_cast<size_t>(kScopeFirstMax) + 12u);
  EXPECT_EQ(every.size(), static_cast<size_t>(kScopeFirstMax) + 12u);
}

TEST_F(ServiceTest, ACommonFilteredValueLetsTheSortsIndexDriveAndARareOneKeepsItsOwn) {
  registry.add(schema::parse_entity(R"({"name":"item","title_field":"name","fields":[
        {"name":"name","type":"text","required":true,"indexed":true},
        {"name":"tier","type":"enum","options":["A","B"],"indexed":true},
        {"name":"kind","type":"enum","options":["x","y"],"indexed":true}]})",
                                    "t")
                   .value());
  ASSERT_TRUE(service->sync_schema().ok());
  auto item = registry.get("item");
  // kEqualityFirstMax records of tier A (names in reverse of their creation), three of tier B.
  std::vector<std::string> bodies;
  for (int i = 0; i < kEqualityFirstMax; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "n%05d", kEqualityFirstMax - i);
    bodies.push_back(std::string(R"({"name":")") + name + R"(","tier":"A","kind":")" +
                     (i % 2 ? "x" : "y") + R"("})");
  }
  for (const char* n : {"b3", "b1", "b2"})
    bodies.push_back(std::string(R"({"name":")") + n + R"(","tier":"B","kind":"x"})");
  ASSERT_TRUE(service->create_batch(admin, *item, bodies).ok());

  ListParams common;
  common.filter = R"({"field":"tier","op":"=","value":"A"})";
  common.sort = "name";
  common.limit = 50;
  // The name index drives: the page is the first 50 names, not every A record sorted.
  std::string plan = scoped_list_plan(*store, *service, admin, *item, common);
  EXPECT_NE(plan.find("USING INDEX ix_item__name__created_at"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("ix_item__tier__created_at"), std::string::npos) << plan;
  auto page = json::parse(service->list(admin, *item, common).value());
  const auto& items = (*json::member(*page, "items")).GetArray();
  ASSERT_EQ(items.Size(), 50u);
  EXPECT_EQ(std::string((*json::member(items[0], "name")).GetString()), "n00001");
  EXPECT_EQ(std::string((*json::member(items[49], "name")).GetString()), "n00050");
  // Every page in order, each A record once.
  common.limit = 500;
  EXPECT_EQ(listed_ids(*service, admin, *item, common).size(),
            static_cast<size_t>(kEqualityFirstMax));
  // Of two equalities, the one under the bound (kind x: half of the A records) drives, the
  // common one is written unindexed.
  ListParams both = common;
  both.filter =
      R"({"and":[{"field":"tier","op":"=","value":"A"},{"field":"kind","op":"=","value":"x"}]})";
  plan = scoped_list_plan(*store, *service, admin, *item, both);
  EXPECT_NE(plan.find("USING INDEX ix_item__kind__created_at (kind=?)"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("ix_item__tier__created_at"), std::string::npos) << plan;
  EXPECT_EQ(listed_ids(*service, admin, *item, both).size(),
            static_cast<size_t>(kEqualityFirstMax / 2));
  ListParams rare = common;
  rare.filter = R"({"field":"tier","op":"=","value":"B"})";
  plan = scoped_list_plan(*store, *service, admin, *item, rare);
  EXPECT_NE(plan.find("USING INDEX ix_item__tier__created_at (tier=?)"), std::string::npos) << plan;
  auto rare_page = json::parse(service->list(admin, *item, rare).value());
  std::vector<std::string> names;
  for (const auto& it : (*json::member(*rare_page, "items")).GetArray())
    names.emplace_back((*json::member(it, "name")).GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"b1", "b2", "b3"}));
  // The default order (newest first) is the equality index's own: it drives however common.
  ListParams newest = common;
  newest.sort.clear();
  plan = scoped_list_plan(*store, *service, admin, *item, newest);
  EXPECT_NE(plan.find("USING INDEX ix_item__tier__created_at (tier=?)"), std::string::npos) << plan;

  // The decision travels in the cursor: the next pages take it instead of counting again.
  common.limit = 50;
  auto first = json::parse(service->list(admin, *item, common).value());
  std::string next = (*json::member(*first, "next_cursor")).GetString();
  std::optional<std::vector<std::string>> carried;
  ASSERT_TRUE(decode_cursor(next, 3, &carried).ok());  // name, created_at, id
  ASSERT_TRUE(carried);
  EXPECT_EQ(*carried, std::vector<std::string>{"tier"});
  EXPECT_FALSE(decode_cursor(next, 3).ok()) << "a cursor with a decision needs a reader of it";
  // …and only the decision: a rare value with a cursor that says "unindexed" is written so.
  const std::vector<storage::SqlValue> at = {std::string("b1"), format_iso8601(clock.now),
                                             std::int64_t{1}};
  const std::vector<std::string> tier_common{"tier"}, none;
  rare.cursor = encode_cursor(at, &tier_common);
  plan = scoped_list_plan(*store, *service, admin, *item, rare);
  EXPECT_EQ(plan.find("ix_item__tier__created_at"), std::string::npos) << plan;
  rare.cursor = encode_cursor(at, &none);
  plan = scoped_list_plan(*store, *service, admin, *item, rare);
  EXPECT_NE(plan.find("USING INDEX ix_item__tier__created_at (tier=?)"), std::string::npos) << plan;
  // The rare value's own pages carry its decision (none unindexed), and page on in order.
  rare.cursor.clear();
  rare.limit = 1;
  auto rare_first = json::parse(service->list(admin, *item, rare).value());
  ASSERT_TRUE(
      decode_cursor((*json::member(*rare_first, "next_cursor")).GetString(), 3, &carried).ok());
  ASSERT_TRUE(carried);
  EXPECT_TRUE(carried->empty());
  EXPECT_EQ(listed_ids(*service, admin, *item, rare).size(), 3u);
  // A decision naming a field that is not one of the filter's equalities: another list's cursor.
  const std::vector<std::string> other{"name"};
  rare.cursor = encode_cursor(at, &other);
  auto refused = service->list(admin, *item, rare);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kBadRequest);
  EXPECT_EQ(refused.error().message, "cursor is not valid for this list");
  EXPECT_EQ(refused.error().field, "cursor");
}

// The 360's sections (R-CUS-1…3): an account's contacts by name, its timeline newest first. A
// declared index whose first column is the filter's equality and whose second is the sort's field
// ends with created_at (and the rowid), so the whole list order is that index read in order: no
// temporary B-tree for the matching rows, and no count of the equality's rows (its index serves
// both, however common the value).
TEST_F(ServiceTest, AnEqualityLeadingADeclaredIndexWithTheSortReadsThatIndexInOrderUncounted) {
  registry.add(schema::parse_entity(R"({"name":"item","title_field":"name","fields":[
        {"name":"name","type":"text","required":true,"indexed":true},
        {"name":"tier","type":"enum","options":["A","B"],"indexed":true}],
        "indexes":[["tier","name"]]})",
                                    "t")
                   .value());
  {
    // What an earlier version created: the declared columns alone.
    ASSERT_TRUE(service->sync_schema().ok());
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("DROP INDEX \"ix_item__tier__name__created_at\"").ok());
    ASSERT_TRUE(
        tx->exec("CREATE INDEX \"ix_item__tier__name\" ON \"item\" (\"tier\", \"name\")").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  ASSERT_TRUE(service->sync_schema().ok());
  {
    auto tx = store->read().value();
    auto rows = tx->query(
                      "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                      "'item' AND name LIKE 'ix_item__tier%' ORDER BY name",
                      {})
                    .value();
    std::vector<std::string> names;
    for (const auto& r : rows.rows) names.push_back(std::get<std::string>(r[0]));
    EXPECT_EQ(names, (std::vector<std::string>{"ix_item__tier__created_at",
                                               "ix_item__tier__name__created_at"}));
  }
  auto item = registry.get("item");
  // kEqualityFirstMax records of tier A, names in reverse of their creation: a common value.
  std::vector<std::string> bodies;
  for (int i = 0; i < kEqualityFirstMax; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "n%05d", kEqualityFirstMax - i);
    bodies.push_back(std::string(R"({"name":")") + name + R"(","tier":"A"})");
  }
  bodies.push_back(R"({"name":"b1","tier":"B"})");
  ASSERT_TRUE(service->create_batch(admin, *item, bodies).ok());

  ListParams lp;
  lp.filter = R"({"field":"tier","op":"=","value":"A"})";
  for (std::string sort : {"name", "-name"}) {
    lp.sort = sort;
    std::string plan = scoped_list_plan(*store, *service, admin, *item, lp);
    EXPECT_NE(plan.find("USING INDEX ix_item__tier__name__created_at (tier=?)"), std::string::npos)
        << sort << ": " << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << sort << ": " << plan;
  }
  lp.sort = "name";
  lp.limit = 50;
  auto page = json::parse(service->list(admin, *item, lp).value());
  const auto& items = (*json::member(*page, "items")).GetArray();
  ASSERT_EQ(items.Size(), 50u);
  EXPECT_EQ(std::string((*json::member(items[0], "name")).GetString()), "n00001");
  EXPECT_EQ(std::string((*json::member(items[49], "name")).GetString()), "n00050");
  // Nothing was decided unindexed (nothing counted), and every page follows in order.
  std::optional<std::vector<std::string>> carried;
  ASSERT_TRUE(decode_cursor((*json::member(*page, "next_cursor")).GetString(), 3, &carried).ok());
  ASSERT_TRUE(carried);
  EXPECT_TRUE(carried->empty());
  lp.limit = 500;
  EXPECT_EQ(listed_ids(*service, admin, *item, lp).size(), static_cast<size_t>(kEqualityFirstMax));
}

// The "item" entity of the sort tests: a low-cardinality indexed field (tier), no hooks.
std::shared_ptr<const schema::Entity> add_items(schema::Registry& registry,
                                                RecordService& service) {
  registry.add(schema::parse_entity(R"({"name":"item","title_field":"name","fields":[
        {"name":"name","type":"text","required":true,"indexed":true},
        {"name":"tier","type":"enum","options":["A","B"],"indexed":true}]})",
                                    "t")
                   .value());
  EXPECT_TRUE(service.sync_schema().ok());
  return registry.get("item");
}

access::Principal system_principal() {
  access::Principal p = fixtures::admin_principal();
  p.channel = "system";
  return p;
}

// Issue #5 (list sorted): sorting by a field of few values reads that field's index
// (tier, created_at) in order, ties by created_at then id in the sort's direction, instead of
// sorting a whole group of equal values by id for each page; cursor pages cross the groups
// (NULLs first ascending, last descending) and every record comes once, in order.
TEST_F(ServiceTest, SortByAFieldOfFewValuesReadsItsIndexInOrderAndPagesAcrossTheGroups) {
  auto item = add_items(registry, *service);
  // 40 records: tiers A, B and none, created in an order unlike their ids, some at one time.
  std::vector<std::string> bodies;
  std::vector<RowTimes> times;
  for (int i = 0; i < 40; ++i) {
    const char* tier = i % 5 == 0 ? "null" : i % 3 ? "\"A\"" : "\"B\"";
    bodies.push_back("{\"name\":\"n" + std::to_string(i) + "\",\"tier\":" + tier + "}");
    const Millis created = 1700000000000 + (i * 7919 % 40) / 2 * 1000;  // pairs share a time
    times.push_back({created, created + 5});
  }
  auto ids = service->create_batch(system_principal(), *item, bodies, times);
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  struct Row {
    int tier;  // 0: none, 1: A, 2: B
    Millis created;
    std::int64_t id;
  };
  std::vector<Row> rows;
  for (int i = 0; i < 40; ++i)
    rows.push_back({i % 5 == 0 ? 0 : i % 3 ? 1 : 2, times[i].created_at, (*ids)[i]});
  for (bool desc : {false, true}) {
    std::vector<Row> want = rows;
    std::sort(want.begin(), want.end(), [desc](const Row& a, const Row& b) {
      auto ka = std::tie(a.tier, a.created, a.id), kb = std::tie(b.tier, b.created, b.id);
      return desc ? kb < ka : ka < kb;
    });
    std::vector<std::int64_t> want_ids;
    for (const auto& r : want) want_ids.push_back(r.id);
    ListParams lp;
    lp.sort = desc ? "-tier" : "tier";
    for (int limit : {3, 7, 40}) {
      lp.limit = limit;
      EXPECT_EQ(listed_ids(*service, admin, *item, lp), want_ids) << lp.sort << " by " << limit;
    }
    // The first page: the index in order, nothing sorted.
    lp.limit = 3;
    std::string plan = list_plan(*store, *service, admin, *item, lp);
    EXPECT_NE(plan.find("USING INDEX ix_item__tier__created_at"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << lp.sort << ": " << plan;
    // A cursor page inside a group of values: the index sought to the cursor (ascending, one
    // row-value range; descending, that range and then the NULLs, two pages of at most limit + 1
    // rows merged).
    for (int page = 0; page < 3; ++page) {  // past the 8 records without a tier (ascending)
      auto doc = json::parse(service->list(admin, *item, lp).value());
      lp.cursor = (*json::member(*doc, "next_cursor")).GetString();
    }
    plan = list_plan(*store, *service, admin, *item, lp);
    EXPECT_NE(plan.find(desc ? "((tier,created_at)<(?,?))" : "((tier,created_at)>(?,?))"),
              std::string::npos)
        << lp.sort << ": " << plan;
    if (desc) EXPECT_NE(plan.find("(tier=?)"), std::string::npos) << plan;  // IS NULL
    EXPECT_EQ(plan.find("SCAN item"), std::string::npos) << lp.sort << ": " << plan;
  }
  // An explicit tie-break by id is kept (and sorted).
  auto keys = parse_sort("tier,-id", *item, admin).value();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].field->name, "id");
  EXPECT_TRUE(keys[1].desc);
}

// The data generator's realistic histories (bench/gen): create_batch takes each row's
// created_at and updated_at from the system principal; its audit entry and event carry
// created_at.
TEST_F(ServiceTest, BulkLoadedRowsCarryTheirOwnCreatedAndUpdatedTimes) {
  auto item = add_items(registry, *service);
  const RowTimes times[] = {{1700000000123, 1700000999000}, {1600000000000, 1600000000000}};
  auto ids = service->create_batch(system_principal(), *item,
                                   {R"({"name":"a","tier":"A"})", R"({"name":"b"})"}, times);
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  auto a = json::parse(service->get(admin, *item, (*ids)[0]).value().body);
  EXPECT_STREQ((*json::member(*a, "created_at")).GetString(), "2023-11-14T22:13:20.123Z");
  EXPECT_STREQ((*json::member(*a, "updated_at")).GetString(), "2023-11-14T22:29:59.000Z");
  auto b = json::parse(service->get(admin, *item, (*ids)[1]).value().body);
  EXPECT_STREQ((*json::member(*b, "created_at")).GetString(), "2020-09-13T12:26:40.000Z");
  EXPECT_STREQ((*json::member(*b, "updated_at")).GetString(), "2020-09-13T12:26:40.000Z");
  auto h = json::parse(service->history(admin, *item, (*ids)[0]).value());
  EXPECT_STREQ((*json::member((*json::member(*h, "items"))[0], "at")).GetString(),
               "2023-11-14T22:13:20.123Z");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].at, "2020-09-13T12:26:40.000Z");
  // Without times: the clock's now, as before.
  auto c = service->create_batch(system_principal(), *item, {R"({"name":"c"})"});
  ASSERT_TRUE(c.ok());
  auto cd = json::parse(service->get(admin, *item, (*c)[0]).value().body);
  EXPECT_EQ(std::string((*json::member(*cd, "created_at")).GetString()), format_iso8601(clock.now));
}

TEST_F(ServiceTest, FailingRowTimesOfAnotherPrincipalOrNotOnePerRowChangeNothing) {
  auto item = add_items(registry, *service);
  const RowTimes one[] = {{1700000000000, 1700000000000}};
  const RowTimes two[] = {{1700000000000, 1700000000000}, {1700000000000, 1699999999999}};
  // An administrator over the API may not set created_at.
  auto r = service->create_batch(admin, *item, {R"({"name":"a"})"}, one);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kForbidden);
  EXPECT_EQ(r.error().field, "created_at");
  r = service->create_batch(system_principal(), *item, {R"({"name":"a"})", R"({"name":"b"})"}, one);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_EQ(r.error().message, "1 row times for 2 rows");
  r = service->create_batch(system_principal(), *item, {R"({"name":"a"})", R"({"name":"b"})"}, two);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_EQ(r.error().message, "row 2: updated_at before created_at");
  EXPECT_EQ(r.error().field, "updated_at");
  // An entity with hooks writes its rows one by one with the clock's time.
  r = service->create_batch(system_principal(), *account, {R"({"name":"a"})"}, one);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_EQ(r.error().field, "created_at");
  EXPECT_EQ(listed_ids(*service, admin, *item, {}).size(), 0u);
  EXPECT_EQ(count_accounts(), 0);
}

TEST_F(ServiceTest, SearchInATeamOfManyRecordsFindsItsMatchesPastMoreHiddenOnesThanAWindow) {
  auto user = registry.get("user");
  auto team = registry.get("team");
  const std::int64_t u1 = id_of(*user, R"({"username":"u1"})"),
                     u2 = id_of(*user, R"({"username":"u2"})"),
                     t1 = id_of(*team, R"({"name":"T1"})"), t2 = id_of(*team, R"({"name":"T2"})");
  // Team T1 sees more records than are searched through their term lists alone (1,024)...
  std::vector<std::string> bodies;
  for (int i = 0; i < 1100; ++i) bodies.push_back(body("Other " + std::to_string(i), u1, t1));
  ASSERT_TRUE(service->create_batch(admin, *account, bodies).ok());
  const std::int64_t first = id_of(*account, body("Zyx Mine One", u1, t1));
  const std::int64_t second = id_of(*account, body("Zyx Mine Two", u1, t1));
  // ...and more newer matches of another team than a search window reads (8,192 entries).
  bodies.clear();
  for (int i = 0; i < 8300; ++i) bodies.push_back(body("Zyx Hidden " + std::to_string(i), u2, t2));
  ASSERT_TRUE(service->create_batch(admin, *account, bodies).ok());

  const auto team_scope = reader(access::Scope::kTeam, u1, t1);
  EXPECT_EQ(found_ids(service->search(team_scope, "zyx", "account", 10)),
            (std::vector<std::int64_t>{second, first}));
  EXPECT_EQ(found_ids(service->search(team_scope, "z", "account", 1)),
            (std::vector<std::int64_t>{second}));
  EXPECT_EQ(found_ids(service->search(team_scope, "zyx m", "account", 10)),
            (std::vector<std::int64_t>{second, first}));
  EXPECT_EQ(found_ids(service->search(team_scope, "zyx hidden", "account", 10)),
            std::vector<std::int64_t>{});
  // Whoever sees everything gets the newest matches.
  auto all = found_ids(service->search(reader(access::Scope::kAll, u1, 0), "zyx", "account", 10));
  ASSERT_EQ(all.size(), 10u);
  for (auto id : all) EXPECT_TRUE(id != first && id != second);
}

// Two words, each with more newer entries than a search window (8,192): the records with both
// lie past the first window of either, and are found all the same (their entries are read in
// turn until one word has no more), in the order of the word that was read to its end.
// (Fails with only the first window of each word read: nothing found.)
TEST_F(ServiceTest, SearchForTwoCommonWordsFindsTheirRecordsPastAWindowOfEach) {
  const std::int64_t older = id_of(*account, R"({"name":"Qalpha Qbeta Older"})");
  const std::int64_t newer = id_of(*account, R"({"name":"Qalpha Qbetamax Newer"})");
  std::vector<std::string> bodies;
  for (int i = 0; i < 8300; ++i) {
    bodies.push_back(R"({"name":"Qalpha Xa)" + std::to_string(i) + R"("})");
    bodies.push_back(R"({"name":"Qbeta Yb)" + std::to_string(i) + R"("})");
  }
  ASSERT_TRUE(service->create_batch(admin, *account, bodies).ok());
  using Ids = std::vector<std::int64_t>;
  // "qalpha" drives first (the longer word) and is read to its end first: its order, both
  // records under the word "qalpha", newest first. The other word order and prefixes find the
  // same records.
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbeta", "account", 10)), (Ids{newer, older}));
  EXPECT_EQ(found_ids(service->search(admin, "qbeta qalpha", "", 10)), (Ids{newer, older}));
  EXPECT_EQ(found_ids(service->search(admin, "qalp qbet", "account", 10)), (Ids{newer, older}));
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbeta", "account", 1)), (Ids{newer}));
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbetam", "account", 10)), (Ids{newer}));
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbeta newer", "account", 10)), (Ids{newer}));
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbeta nothing", "account", 10)), Ids{});
  // A deleted record is not found.
  ASSERT_TRUE(service->remove(admin, *account, older).ok());
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbeta", "account", 10)), (Ids{newer}));
  ASSERT_TRUE(service->remove(admin, *account, newer).ok());
  EXPECT_EQ(found_ids(service->search(admin, "qalpha qbeta", "account", 10)), Ids{});
}

// Search as you type at scale (issue #4: p99 <= 20 ms): the answer of a caller who may read every
// record is kept until the next committed write and served again as it was; any create, update,
// delete or restore retires it, so a search after a write sees the write. A caller of a narrow
// scope (own, team) is never served another's answer, and another role has its own answers.
// (The first search on a reader after a write is not kept: its snapshot shows a change the
// change stamp may not have counted yet; see storage::Tx::change_stamp.)
// Without the cache no answer is served from it: the hit counts stay 0.
TEST_F(ServiceTest, SearchAnswersAreKeptUntilAWriteAndOnlyForCallersWhoSeeEverything) {
  using Ids = std::vector<std::int64_t>;
  const auto hits = [&] { return service->search_cache_hits(); };
  const std::int64_t first = id_of(*account, R"({"name":"Kestrel One"})");
  const auto after_write = service->search(admin, "kes", "", 10);
  ASSERT_TRUE(after_write.ok());
  EXPECT_EQ(found_ids(after_write), (Ids{first}));
  EXPECT_EQ(service->search(admin, "kes", "", 10).value(), *after_write);  // kept now
  EXPECT_EQ(hits(), 0u);
  EXPECT_EQ(service->search(admin, "kes", "", 10).value(), *after_write);
  EXPECT_EQ(hits(), 1u) << "the same search again: the kept answer";
  // Another limit, entity filter or query is another answer.
  EXPECT_EQ(found_ids(service->search(admin, "kes", "account", 10)), (Ids{first}));
  EXPECT_EQ(found_ids(service->search(admin, "kes", "", 1)), (Ids{first}));
  EXPECT_EQ(found_ids(service->search(admin, "k", "", 10)), (Ids{first}));
  EXPECT_EQ(hits(), 1u);
  // A create retires it: the answers after it have the new record, also the kept one.
  const std::int64_t second = id_of(*account, R"({"name":"Kestrel Two"})");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(found_ids(service->search(admin, "kes", "", 10)), (Ids{second, first}));
  EXPECT_GE(hits(), 2u);
  // An update, a delete and a restore too.
  auto renamed = service->update(admin, *account, first, R"({"name":"Osprey One"})");
  ASSERT_TRUE(renamed.ok()) << renamed.error().message;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(found_ids(service->search(admin, "kes", "", 10)), (Ids{second}));
    EXPECT_EQ(found_ids(service->search(admin, "osp", "", 10)), (Ids{first}));
  }
  ASSERT_TRUE(service->remove(admin, *account, second).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(found_ids(service->search(admin, "kes", "", 10)), Ids{});
  ASSERT_TRUE(service->restore(admin, *account, second).ok());
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(found_ids(service->search(admin, "kes", "", 10)), (Ids{second}));
  const std::size_t before = hits();
  EXPECT_GE(before, 5u);
  // Own scope: the answer depends on the user, so none is kept or served.
  auto user = registry.get("user");
  const std::int64_t u1 = id_of(*user, R"({"username":"ku1"})"),
                     u2 = id_of(*user, R"({"username":"ku2"})"),
                     t1 = id_of(*registry.get("team"), R"({"name":"KT"})");
  const std::int64_t mine = id_of(*account, body("Kestrel Mine", u1, t1));
  const auto own1 = reader(access::Scope::kOwn, u1, t1);
  auto own2 = reader(access::Scope::kOwn, u2, t1);
  own2.role = own1.role;  // the same role, another user
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(found_ids(service->search(own1, "kes", "account", 10)), (Ids{mine}));
    EXPECT_EQ(found_ids(service->search(own2, "kes", "account", 10)), Ids{});
  }
  EXPECT_EQ(hits(), before);
  // Another role that sees every account keeps its own answers.
  const auto all = reader(access::Scope::kAll, u1, t1);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(found_ids(service->search(all, "kes", "account", 10)), (Ids{mine, second}));
  EXPECT_GE(hits(), before + 1);
}

// `serve --search-cache-mib 0`: no answer is kept, each search is worked out again (and gives
// the same answer as a service with the cache); the benchmark measures search this way too.
TEST_F(ServiceTest, SearchAnswerCacheOfZeroBytesKeepsNothing) {
  RecordOptions no_cache;
  no_cache.search_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, no_cache);
  const std::int64_t first = id_of(*account, R"({"name":"Kestrel One"})");
  for (int i = 0; i < 3; ++i) {
    auto mine = uncached.search(admin, "kes", "", 10);
    ASSERT_TRUE(mine.ok()) << mine.error().message;
    EXPECT_EQ(found_ids(mine), (std::vector<std::int64_t>{first}));
    EXPECT_EQ(mine.value(), service->search(admin, "kes", "", 10).value());
  }
  EXPECT_EQ(uncached.search_cache_hits(), 0u);
  EXPECT_GE(service->search_cache_hits(), 2u) << "the default service keeps them";
}

// Chinese names typed past two characters ("广州方科": the bigrams 广州, 州方, 方科) are exact
// keys: when each is common, a key with fewer than 4,096 entries drives alone and is read whole,
// so the records with every key are found however many newer entries the first two keys have
// (issue #4: the slowest searches at 1M accounts read 8,192 entries of the commonest key). Here
// the first two keys each have more entries than the two windows a pair of keys reads on
// (16,384), so without the rule nothing was found; the order is newest first, as any exact key
// gives it.
TEST_F(ServiceTest, SearchForCommonChineseBigramsDrivesByARareEnoughOneAndFindsOldMatches) {
  using Ids = std::vector<std::int64_t>;
  const std::int64_t one = id_of(*account, R"({"name":"甲乙丙丁 One"})");
  const std::int64_t two = id_of(*account, R"({"name":"甲乙丙丁 Two"})");
  std::vector<std::string> bodies;
  for (int i = 0; i < 16400; ++i) {
    bodies.push_back(R"({"name":"甲乙 A)" + std::to_string(i) + R"("})");
    bodies.push_back(R"({"name":"乙丙 B)" + std::to_string(i) + R"("})");
    if (i < 1100) bodies.push_back(R"({"name":"丙丁 C)" + std::to_string(i) + R"("})");
  }
  ASSERT_TRUE(service->create_batch(admin, *account, bodies).ok());
  EXPECT_EQ(found_ids(service->search(admin, "甲乙丙丁", "account", 10)), (Ids{two, one}));
  EXPECT_EQ(found_ids(service->search(admin, "甲乙丙丁", "", 1)), (Ids{two}));
  EXPECT_EQ(found_ids(service->search(admin, "乙丙丁", "account", 10)), (Ids{two, one}));
  // Two keys only, both past the cap: the pair of windows as before (a rarer key than 16,384
  // entries is read on; here neither is, so the search stops at its bound).
  EXPECT_EQ(found_ids(service->search(admin, "甲乙丙", "account", 10)), Ids{});
}

// Search as you type at 1M (issue #4, R-SEARCH): a Chinese query of 3+ characters whose bigrams
// all have over 1,024 entries ("郭志强") first reads a window of its last bigram's first 1,024
// entries; when that holds `limit` records with every bigram they are the answer (any exact key's
// first matches are the newest records with all of them) and the keys are not counted again up
// to 4,096 each. When it holds fewer (old matches behind many newer entries), the keys are
// counted again and the rarest read whole, so the answer is the same as before.
TEST_F(ServiceTest, SearchForCommonChineseBigramsTakesALastKeyWindowWithTheLimitsMatches) {
  using Ids = std::vector<std::int64_t>;
  const std::int64_t old_one = id_of(*account, R"({"name":"丙丁戊 Old"})");
  std::vector<std::string> bodies;
  for (int i = 0; i < 1100; ++i) {
    bodies.push_back(R"({"name":"甲乙丙 N)" + std::to_string(i) + R"("})");
    bodies.push_back(R"({"name":"丙丁 X)" + std::to_string(i) + R"("})");
    bodies.push_back(R"({"name":"丁戊 Y)" + std::to_string(i) + R"("})");
  }
  auto created = service->create_batch(admin, *account, bodies);
  ASSERT_TRUE(created.ok()) << created.error().message;
  // The newest three of the 1,100 records with 甲乙 and 乙丙 (every third created), newest first.
  std::vector<std::int64_t> newest;
  for (std::size_t i = 0; i < created->size(); i += 3) newest.push_back((*created)[i]);
  std::sort(newest.rbegin(), newest.rend());
  newest.resize(3);
  auto counts = service->search_count_statements();
  auto rows = service->search_window_rows();
  EXPECT_EQ(found_ids(service->search(admin, "甲乙丙", "account", 3)), newest);
  EXPECT_EQ(service->search_count_statements() - counts, 1u) << "no second count up to 4,096";
  EXPECT_EQ(service->search_window_rows() - rows, 3u);
  // The one record with 丙丁 and 丁戊 is older than the 1,024 newest entries of 丁戊: counted
  // again, and found.
  counts = service->search_count_statements();
  EXPECT_EQ(found_ids(service->search(admin, "丙丁戊", "account", 3)), (Ids{old_one}));
  EXPECT_EQ(service->search_count_statements() - counts, 2u);
}

// Search as you type at 1M (issue #4, R-SEARCH): the first window of an entity stops at `limit`
// matching rows, each a read of its record's row, not at twice the limit (16 here); a round
// short of `limit` items because an entry repeats a record (a prefix matching two of its words)
// is followed by the next window from where it stopped, so the answer is the same.
TEST_F(ServiceTest, SearchReadsTheLimitsRecordsFirstAndReadsOnPastARepeatedRecord) {
  using Ids = std::vector<std::int64_t>;
  std::vector<std::string> bodies;
  for (int i = 0; i < 30; ++i) bodies.push_back(R"({"name":"Qzrow N)" + std::to_string(i) + "\"}");
  ASSERT_TRUE(service->create_batch(admin, *account, bodies).ok());
  auto before = service->search_window_rows();
  EXPECT_EQ(found_ids(service->search(admin, "qzr", "account", 3)).size(), 3u);
  EXPECT_EQ(service->search_window_rows() - before, 3u) << "three records read, not sixteen";
  // qzda:a, qzdb:a, then qzdc:b: the first window's two rows hold one record.
  const std::int64_t a = id_of(*account, R"({"name":"Qzda Qzdb"})");
  const std::int64_t b = id_of(*account, R"({"name":"Qzdc"})");
  before = service->search_window_rows();
  EXPECT_EQ(found_ids(service->search(admin, "qzd", "account", 2)), (Ids{a, b}));
  EXPECT_EQ(service->search_window_rows() - before, 3u) << "a second window for the repeat";
  EXPECT_EQ(found_ids(service->search(admin, "qzd", "account", 10)), (Ids{a, b}));
}

TEST_F(ServiceTest, SearchDoesNotMatchOnAFieldTheCallerMayNotSee) {
  const auto id = service->create(admin, *account, R"({"name":"Qortex Hidden","code":"Q1"})")->id;
  const access::Principal masked = masked_reader("name");
  EXPECT_EQ(found_ids(service->search(masked, "qortex", "account", 10)),
            std::vector<std::int64_t>{});
  EXPECT_EQ(found_ids(service->search(masked, "q h", "", 10)), std::vector<std::int64_t>{});
  EXPECT_EQ(found_ids(service->search(admin, "qortex", "account", 10)),
            (std::vector<std::int64_t>{id}));
}

// The ids and texts of a list page's items.
std::vector<std::string> item_texts(const std::string& page) {
  auto doc = json::parse(page);
  std::vector<std::string> out;
  for (const auto& item : (*json::member(*doc, "items")).GetArray()) {
    json::Buffer buf;
    json::Writer w(buf);
    item.Accept(w);
    out.emplace_back(buf.GetString(), buf.GetSize());
  }
  return out;
}

// List pages copy their records' text from the service's cache by id and version: a second
// page of the same records is all hits; a record changed since (update, delete, restore) is
// read again at once, never served at its old version; and every page is the text a service
// without the cache writes from the rows.
TEST_F(ServiceTest, ListPagesAreCopiedFromTheRecordTextCacheAndShowEveryChangeAtOnce) {
  without_page_cache();
  RecordOptions no_cache;
  no_cache.list_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, no_cache);
  EXPECT_FALSE(uncached.list_cache().enabled());
  const auto a =
      id_of(*account, R"({"name":"Alpha","code":"A1","limit":{"amount":5,"currency":"CNY"}})");
  const auto b = id_of(*account, R"({"name":"Beta","code":"B1"})");
  const auto c = id_of(*account, R"({"name":"Gamma \"quoted\" 上海","code":"C1"})");
  ASSERT_TRUE(a && b && c);
  ListParams lp;
  lp.sort = "name";
  const auto& cache = service->list_cache();
  auto same_as_uncached = [&](const ListParams& params) {
    auto mine = service->list(admin, *account, params);
    auto theirs = uncached.list(admin, *account, params);
    EXPECT_TRUE(mine.ok() && theirs.ok());
    EXPECT_EQ(mine.value(), theirs.value());
    return mine.value();
  };
  const std::string first = same_as_uncached(lp);
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.misses(), 3u);
  EXPECT_EQ(same_as_uncached(lp), first);
  EXPECT_EQ(cache.hits(), 3u);  // every record copied from the cache
  EXPECT_GT(cache.bytes(), 0u);

  ASSERT_TRUE(service->update(admin, *account, b, R"({"name":"Beta Two"})").ok());
  std::string page = same_as_uncached(lp);
  EXPECT_NE(page.find("Beta Two"), std::string::npos);
  EXPECT_EQ(page.find("\"Beta\""), std::string::npos);
  EXPECT_EQ(cache.hits(), 5u);  // Alpha and Gamma; Beta read again
  EXPECT_EQ(cache.misses(), 4u);

  ASSERT_TRUE(service->remove(admin, *account, c).ok());
  page = same_as_uncached(lp);
  EXPECT_EQ(page.find("Gamma"), std::string::npos);
  ListParams bin = lp;
  bin.deleted = true;
  page = same_as_uncached(bin);
  EXPECT_NE(page.find("Gamma"), std::string::npos);
  EXPECT_NE(page.find("\"deleted_at\""), std::string::npos);
  ASSERT_TRUE(service->restore(admin, *account, c).ok());
  page = same_as_uncached(lp);
  EXPECT_NE(page.find("Gamma"), std::string::npos);
  EXPECT_EQ(page.find("\"deleted_at\""), std::string::npos);

  // Pages by cursor, one record each, are the uncached ones too, and so is the cursor.
  ListParams one = lp;
  one.limit = 1;
  for (int i = 0; i < 3; ++i) {
    const std::string p1 = same_as_uncached(one);
    auto doc = json::parse(p1);
    const json::Value* next = json::member(*doc, "next_cursor");
    if (next->IsNull()) break;
    one.cursor = next->GetString();
  }
}

// A list page of a caller who may read every account (R-SAL-3: always current) is kept whole
// until the next committed write and served again byte for byte as the service without any
// cache writes it: for a filter, a sort, a cursor page, chosen fields and the recycle bin; after
// an update, a delete, a restore, a create and a custom field added, every page shows the change
// (never a stale one). Another role has its own pages (a field hidden from it is never in them),
// and a caller of own scope is never served a kept page. (The first list on a reader after a
// write may not be kept: see storage::Tx::change_stamp; so each list is asked three times and
// at least one of the later two is served from the cache.) A cache of zero bytes keeps nothing.
TEST_F(ServiceTest, ListPagesAreKeptWholeUntilAWriteAndOnlyForCallersWhoSeeEverything) {
  RecordOptions plain;
  plain.page_cache_bytes = 0;
  plain.list_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, plain);
  const auto hits = [&] { return service->page_cache_hits(); };
  const auto a =
      id_of(*account, R"({"name":"Alpha","code":"A1","limit":{"amount":5,"currency":"CNY"}})");
  const auto b = id_of(*account, R"({"name":"Beta","code":"B1"})");
  const auto c = id_of(*account, R"({"name":"Gamma \"quoted\" 上海","code":"C1"})");
  ASSERT_TRUE(a && b && c);
  // Three times each: the page is the uncached service's every time, kept or not.
  const auto same_as_uncached = [&](const access::Principal& p, const ListParams& lp) {
    std::string first;
    for (int i = 0; i < 3; ++i) {
      auto mine = service->list(p, *account, lp);
      auto theirs = uncached.list(p, *account, lp);
      EXPECT_TRUE(mine.ok() && theirs.ok());
      if (!mine.ok() || !theirs.ok()) return std::string();
      EXPECT_EQ(*mine, *theirs) << i;
      if (i == 0) first = *mine;
      EXPECT_EQ(*mine, first);
    }
    return first;
  };
  ListParams by_name;
  by_name.sort = "name";
  EXPECT_EQ(hits(), 0u);
  same_as_uncached(admin, by_name);
  EXPECT_GE(hits(), 1u) << "the same list again: the kept page";
  ListParams filtered;
  filtered.filter = R"({"field":"kind","op":"=","value":"company"})";
  filtered.sort = "-created_at";
  same_as_uncached(admin, filtered);
  ListParams one = by_name;
  one.limit = 1;
  const std::string p1 = same_as_uncached(admin, one);
  one.cursor = (*json::member(*json::parse(p1), "next_cursor")).GetString();
  EXPECT_NE(same_as_uncached(admin, one).find("Beta"), std::string::npos);
  ListParams some = by_name;
  some.fields = "name,limit";
  EXPECT_EQ(same_as_uncached(admin, some).find("\"code\""), std::string::npos);
  const std::size_t before_writes = hits();
  EXPECT_GE(before_writes, 5u);

  ASSERT_TRUE(service->update(admin, *account, b, R"({"name":"Beta Two"})").ok());
  std::string now = same_as_uncached(admin, by_name);
  EXPECT_NE(now.find("Beta Two"), std::string::npos);
  EXPECT_EQ(now.find("\"Beta\""), std::string::npos) << "never the page before the update";
  ASSERT_TRUE(service->remove(admin, *account, c).ok());
  EXPECT_EQ(same_as_uncached(admin, by_name).find("Gamma"), std::string::npos);
  ListParams bin = by_name;
  bin.deleted = true;
  EXPECT_NE(same_as_uncached(admin, bin).find("\"deleted_at\""), std::string::npos);
  ASSERT_TRUE(service->restore(admin, *account, c).ok());
  EXPECT_NE(same_as_uncached(admin, by_name).find("Gamma"), std::string::npos);
  EXPECT_EQ(same_as_uncached(admin, bin).find("Gamma"), std::string::npos);
  ASSERT_TRUE(id_of(*account, R"({"name":"Delta"})"));
  EXPECT_NE(same_as_uncached(admin, by_name).find("Delta"), std::string::npos);
  ASSERT_TRUE(
      service->add_custom_field(admin, "account", R"({"name":"wechat_id","type":"text"})").ok());
  account = registry.get("account");
  EXPECT_NE(same_as_uncached(admin, by_name).find("\"wechat_id\":null"), std::string::npos);
  const std::size_t after_writes = hits();
  EXPECT_GE(after_writes, before_writes + 7);

  // Another role: its own pages, without the field hidden from it.
  const access::Principal masked = masked_reader("code");
  for (int i = 0; i < 2; ++i) {
    const std::string theirs = same_as_uncached(masked, by_name);
    EXPECT_EQ(theirs.find("\"code\""), std::string::npos) << theirs;
    EXPECT_NE(theirs.find("Alpha"), std::string::npos);
  }
  EXPECT_GE(hits(), after_writes + 2);
  // Own scope: the page depends on the user, so none is kept or served.
  const std::size_t before_own = hits();
  const auto mine = reader(access::Scope::kOwn, fixtures::admin_principal().user_id, 0);
  same_as_uncached(mine, by_name);
  same_as_uncached(mine, by_name);
  EXPECT_EQ(hits(), before_own);
  EXPECT_EQ(uncached.page_cache_hits(), 0u);
}

// A field the caller may not see is never in a page, even when the record's text was cached
// with it (by an administrator's page): the cache keeps every field and a page copies only the
// shown ones.
TEST_F(ServiceTest, AHiddenFieldNeverLeaksFromTheRecordTextCache) {
  without_page_cache();
  RecordOptions no_cache;
  no_cache.list_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, no_cache);
  ASSERT_TRUE(id_of(*account, R"({"name":"Secretname One","code":"SECRETCODE1"})"));
  ASSERT_TRUE(id_of(*account, R"({"name":"Secretname Two","code":"SECRETCODE2"})"));
  ASSERT_NE(service->list(admin, *account, {}).value().find("SECRETCODE1"), std::string::npos);
  const auto hits = service->list_cache().hits();

  const access::Principal masked = masked_reader("code");
  const std::string page = service->list(masked, *account, {}).value();
  EXPECT_EQ(service->list_cache().hits(), hits + 2);  // from the administrator's cached text
  EXPECT_EQ(page, uncached.list(masked, *account, {}).value());
  EXPECT_EQ(page.find("SECRETCODE"), std::string::npos) << page;
  EXPECT_EQ(page.find("\"code\""), std::string::npos) << page;
  EXPECT_NE(page.find("Secretname One"), std::string::npos);
  for (const auto& item : item_texts(page)) EXPECT_EQ(item.find("code"), std::string::npos);

  // Only the fields asked for (and never a hidden one among them).
  ListParams only;
  only.fields = "name,code";
  const std::string some = service->list(masked, *account, only).value();
  EXPECT_EQ(some, uncached.list(masked, *account, only).value());
  EXPECT_EQ(some.find("SECRETCODE"), std::string::npos) << some;
  EXPECT_EQ(some.find("\"kind\""), std::string::npos) << some;
}

// A record cached before a custom field was added is not served without that field: the
// entry's field count no longer matches the entity's.
TEST_F(ServiceTest, ARecordCachedBeforeACustomFieldIsWrittenAgainWithIt) {
  without_page_cache();
  ASSERT_TRUE(id_of(*account, R"({"name":"Alpha"})"));
  ASSERT_EQ(service->list(admin, *account, {}).value().find("wechat_id"), std::string::npos);
  ASSERT_TRUE(
      service->add_custom_field(admin, "account", R"({"name":"wechat_id","type":"text"})").ok());
  account = registry.get("account");
  const auto misses = service->list_cache().misses();
  const std::string page = service->list(admin, *account, {}).value();
  EXPECT_NE(page.find("\"wechat_id\":null"), std::string::npos) << page;
  EXPECT_EQ(service->list_cache().misses(), misses + 1);
}

// Pages whose records are mostly not cached (each page new records here) are read whole in one
// statement, their records cached on the way; once pages find their records again, they are
// read by id and version first again. Every page is the text the service without the cache
// writes, in both modes.
TEST_F(ServiceTest, MostlyMissedPagesAreReadWholeAndFillTheCacheUntilTheyHitAgain) {
  without_page_cache();
  RecordOptions no_cache;
  no_cache.list_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, no_cache);
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(id_of(*account, R"({"name":"N)" + std::to_string(100 + i) + R"("})"));
  const auto& cache = service->list_cache();
  const auto slot = cache.slot("account");
  ListParams lp;
  lp.sort = "name";
  lp.limit = 5;
  std::vector<std::string> cursors{""};
  for (int page = 0; page < 8; ++page) {
    lp.cursor = cursors.back();
    const std::string text = service->list(admin, *account, lp).value();
    EXPECT_EQ(text, uncached.list(admin, *account, lp).value()) << page;
    auto doc = json::parse(text);
    const json::Value* next = json::member(*doc, "next_cursor");
    cursors.push_back(next->IsNull() ? "" : next->GetString());
  }
  EXPECT_TRUE(cache.mostly_missed(
      slot, RowJsonCache::Path::kList));  // eight pages of records never listed before
  const auto misses = cache.misses();
  // The pages again: their records were cached (also those of the pages read whole).
  for (int round = 0; round < 2; ++round)
    for (int page = 0; page < 8; ++page) {
      lp.cursor = cursors[static_cast<size_t>(page)];
      EXPECT_EQ(service->list(admin, *account, lp).value(),
                uncached.list(admin, *account, lp).value());
    }
  EXPECT_EQ(cache.misses(), misses);
  EXPECT_FALSE(cache.mostly_missed(slot, RowJsonCache::Path::kList));
}

// An export reads its whole list once: it passes the record text cache by, leaving the records
// of users' pages in it.
TEST_F(ServiceTest, AnExportPassesTheRecordTextCacheBy) {
  without_page_cache();
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(id_of(*account, R"({"name":"X)" + std::to_string(i) + R"("})"));
  auto body = service->export_csv(admin, *account, {});
  ASSERT_TRUE(body.ok());
  std::string csv;
  ASSERT_TRUE((*body)([&](std::string_view piece) {
                csv += piece;
                return true;
              }).ok());
  EXPECT_NE(csv.find("X2"), std::string::npos);
  int n = 0;
  ASSERT_TRUE(service
                  ->export_each(admin, *account, {},
                                [&](const json::Value&) -> Status {
                                  ++n;
                                  return {};
                                })
                  .ok());
  EXPECT_EQ(n, 3);
  EXPECT_EQ(service->list_cache().misses(), 0u);
  EXPECT_EQ(service->list_cache().bytes(), 0u);
  service->list(admin, *account, {}).value();
  EXPECT_EQ(service->list_cache().misses(), 3u);  // a page goes through it
}

// GET by id (R-CUS-1 master record; R-SAL-3: always current, so never a stale version) reads the
// record's version, owner, team and deletion mark first and copies its text from the record text
// cache at that version; a record not cached at it is read whole and cached. The answer is byte for
// byte the rapidjson text of the stored row, cached or not, with or without the cache: after an
// update (never the stale version), with a field hidden from the caller (never in the text, though
// the cache holds it), with a custom field added after the record was cached, for fields asked for;
// a deleted record is not found and one of another owner is forbidden, cached or not.
TEST_F(ServiceTest, GetByIdCopiesTheCachedTextAtTheRecordsVersionAndNeverAStaleOrHiddenOne) {
  RecordOptions no_cache;
  no_cache.list_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, no_cache);
  const auto a = id_of(
      *account,
      R"({"name":"Alpha \"q\" 上海\n","code":"SECRET-A","limit":{"amount":-5,"currency":"CNY"}})");
  ASSERT_TRUE(a);
  const auto& cache = service->list_cache();
  const auto same = [&](const access::Principal& p, std::int64_t id, std::string_view only = {}) {
    auto mine = service->get(p, *account, id, only);
    auto theirs = uncached.get(p, *account, id, only);
    EXPECT_TRUE(mine.ok() && theirs.ok());
    if (!mine.ok() || !theirs.ok()) return std::string();
    EXPECT_EQ(mine->body, fixtures::reference_text(*store, *account, p, id, only));
    EXPECT_EQ(theirs->body, mine->body);
    EXPECT_EQ(mine->version, theirs->version);
    EXPECT_EQ(mine->id, id);
    return mine->body;
  };
  const std::string first = same(admin, a);
  EXPECT_EQ(cache.misses(), 1u);  // read whole and cached
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(same(admin, a), first);
  EXPECT_EQ(cache.hits(), 1u);  // copied from the cache
  EXPECT_EQ(service->get(admin, *account, a)->version, 1);

  // An update raises the version: the cached text of version 1 is never answered again.
  ASSERT_TRUE(service->update(admin, *account, a, R"({"name":"Alpha Two"})").ok());
  std::string now = same(admin, a);
  EXPECT_NE(now.find("Alpha Two"), std::string::npos) << now;
  EXPECT_EQ(now.find("上海"), std::string::npos) << now;
  EXPECT_EQ(service->get(admin, *account, a)->version, 2);
  EXPECT_EQ(cache.misses(), 2u);  // version 2 read whole
  same(admin, a);
  EXPECT_EQ(cache.hits(), 4u);  // 2 before the update, then the version check and this one

  // A field hidden from the caller is not in the text copied from the administrator's entry,
  // not even when asked for.
  const access::Principal masked = masked_reader("code");
  const auto hits = cache.hits();
  for (std::string_view only : {"", "name,code", "code"}) {
    const std::string text = same(masked, a, only);
    EXPECT_EQ(text.find("SECRET-A"), std::string::npos) << text;
    EXPECT_EQ(text.find("\"code\""), std::string::npos) << text;
  }
  EXPECT_EQ(cache.hits(), hits + 3);
  EXPECT_EQ(same(admin, a, "name"),
            R"({"id":")" + std::to_string(a) + R"(","version":2,"name":"Alpha Two"})");

  // A custom field added after the record was cached is in its text at once.
  ASSERT_TRUE(
      service->add_custom_field(admin, "account", R"({"name":"wechat_id","type":"text"})").ok());
  account = registry.get("account");
  now = same(admin, a);
  EXPECT_NE(now.find("\"wechat_id\":null"), std::string::npos) << now;
  ASSERT_TRUE(service->update(admin, *account, a, R"({"wechat_id":"wx-1"})").ok());
  EXPECT_NE(same(admin, a).find("\"wechat_id\":\"wx-1\""), std::string::npos);

  // Out of scope: forbidden, though the record's text is cached.
  auto own = std::make_shared<access::Role>();
  own->entities["account"].read = access::Scope::kOwn;
  access::Principal stranger;
  stranger.role = own;
  stranger.user_id = 4242;
  for (RecordService* s : {service.get(), &uncached}) {
    auto r = s->get(stranger, *account, a);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kForbidden);
  }

  // Deleted: not found (its cached text is not answered); restored: found again.
  ASSERT_TRUE(service->remove(admin, *account, a).ok());
  for (RecordService* s : {service.get(), &uncached}) {
    auto r = s->get(admin, *account, a);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kNotFound);
    EXPECT_EQ(r.error().message, "no account with id " + std::to_string(a));
  }
  ASSERT_TRUE(service->restore(admin, *account, a).ok());
  now = same(admin, a);
  EXPECT_EQ(now.find("deleted_at"), std::string::npos) << now;
  auto missing = service->get(admin, *account, a + 1000);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

// Reads of records never read before (more than half missed) are read whole in one statement,
// each looked up and cached on the way, until reads find their records cached again; every
// answer is the stored row's text in both modes.
TEST_F(ServiceTest, MostlyMissedGetsAreReadWholeAndFillTheCacheUntilTheyHitAgain) {
  std::vector<std::int64_t> made;
  for (int i = 0; i < 12; ++i)
    made.push_back(id_of(*account, R"({"name":"G)" + std::to_string(i) + R"("})"));
  const auto& cache = service->list_cache();
  const auto slot = cache.slot("account");
  for (auto id : made)
    EXPECT_EQ(service->get(admin, *account, id)->body,
              fixtures::reference_text(*store, *account, admin, id, {}));
  EXPECT_TRUE(cache.mostly_missed(slot, RowJsonCache::Path::kRead));
  const auto misses = cache.misses();
  for (int round = 0; round < 2; ++round)
    for (auto id : made)
      EXPECT_EQ(service->get(admin, *account, id)->body,
                fixtures::reference_text(*store, *account, admin, id, {}));
  EXPECT_EQ(cache.misses(), misses);  // all cached on the way
  EXPECT_FALSE(cache.mostly_missed(slot, RowJsonCache::Path::kRead));
}

// Issue #5 (the list page at 1M after reads by id): a run of reads by id of records read once,
// mostly missed, neither sends list pages to their whole-row read nor pushes their records out
// of the record text cache. The list page after 1,500 such reads (several times what the cache
// holds) still reads its ids and versions first and copies every record from the cache, byte
// for byte the uncached page; the reads by id find their own latest records cached too.
TEST_F(ServiceTest, ListPagesKeepCopyingTheirCachedRecordsAfterARunOfMissedReadsById) {
  RecordOptions small;
  small.page_cache_bytes = 0;
  small.list_cache_bytes = std::size_t{256} << 10;
  service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids, small);
  RecordOptions no_cache;
  no_cache.list_cache_bytes = 0;
  no_cache.page_cache_bytes = 0;
  RecordService uncached(*store, registry, hooks, bus, clock, ids, no_cache);
  std::vector<std::string> bodies;
  for (int i = 0; i < 10; ++i)
    bodies.push_back(R"({"name":"A)" + std::to_string(100 + i) + R"("})");
  for (int i = 0; i < 1500; ++i)
    bodies.push_back(R"({"name":"B)" + std::to_string(10000 + i) + R"(","code":"C)" +
                     std::to_string(i) + R"("})");
  auto made = service->create_batch(admin, *account, bodies);
  ASSERT_TRUE(made.ok()) << made.error().message;
  const auto& cache = service->list_cache();
  const auto slot = cache.slot("account");
  ListParams lp;
  lp.sort = "name";
  lp.limit = 10;  // the ten A… accounts
  const auto page = [&] {
    const std::string text = service->list(admin, *account, lp).value();
    EXPECT_EQ(text, uncached.list(admin, *account, lp).value());
    return text;
  };
  const std::string first = page();
  EXPECT_EQ(page(), first);
  EXPECT_EQ(cache.narrow_pages(), 2u);
  const auto listed_bytes = cache.list_bytes();
  EXPECT_GT(listed_bytes, 0u);

  for (size_t i = 10; i < made->size(); ++i) {
    auto r = service->get(admin, *account, (*made)[i]);
    ASSERT_TRUE(r.ok());
  }
  EXPECT_TRUE(cache.mostly_missed(slot, RowJsonCache::Path::kRead));
  EXPECT_FALSE(cache.mostly_missed(slot, RowJsonCache::Path::kList));
  EXPECT_GT(cache.bytes(), small.list_cache_bytes / 2);  // the reads' records fill the rest

  const auto hits = cache.hits(), misses = cache.misses();
  EXPECT_EQ(page(), first);
  EXPECT_EQ(cache.hits(), hits + 10);  // every record of the page copied from the cache
  EXPECT_EQ(cache.misses(), misses);
  EXPECT_EQ(cache.narrow_pages(), 3u);
  EXPECT_EQ(cache.whole_pages(), 0u);
  EXPECT_EQ(cache.list_bytes(), listed_bytes);
  // The last record read by id is still cached for the next read of it.
  const auto before = cache.hits();
  EXPECT_EQ(service->get(admin, *account, made->back())->body,
            uncached.get(admin, *account, made->back())->body);
  EXPECT_EQ(cache.hits(), before + 1);
}

}  // namespace
}  // namespace rapport::record
