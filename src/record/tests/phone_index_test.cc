// The generic phone index: every phone_list field of every entity (declared or custom) is
// indexed as E.164 in the write transaction and found by lookup_phone in any written form.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "record/phone_index.h"
#include "record/service.h"
#include "record/table.h"
#include "record/tests/record_fixtures.h"
#include "storage/sqlite/sqlite_store.h"

namespace rapport::record {
namespace {

namespace fs = std::filesystem;

class PhoneIndexTest : public ::testing::Test {
 protected:
  // Leads deduplicated as organisations (name, tax id): their match index rows are written.
  void dedupe_leads_as_organisations() {
    dedupe::Profile profile;
    profile.kind = dedupe::Profile::Kind::kOrganisation;
    profile.name_field = "name";
    profile.tax_id_field = "tax_id";
    hooks.set_dedupe("lead", profile);
  }
  void open(RecordOptions options = {}) {
    dir = fs::temp_directory_path() /
          ("rapport_phone_index_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    store = storage::open_store((dir / "t.db").string()).value();
    auto migrations = RecordService::migrations();
    auto migrated = store->migrate(migrations);
    ASSERT_TRUE(migrated.ok()) << migrated.error().message;
    fixtures::add_users_and_teams(registry);
    // A lead is not an account or contact: any entity with phone lists is covered.
    for (const char* def : {
             R"({"name":"lead","title_field":"name","fields":[
                                  {"name":"name","type":"text","searchable":true},
                                  {"name":"phones","type":"phone_list","searchable":true},
                                  {"name":"fax","type":"phone_list","searchable":true},
                                  {"name":"emails","type":"email_list"},
                                  {"name":"tax_id","type":"text"}]})",
             // Refers to a lead: carries its distribution key when leads shard.
             R"({"name":"note","title_field":"title","fields":[
                                  {"name":"title","type":"text"},
                                  {"name":"lead_id","type":"reference","reference":"lead"},
                                  {"name":"phones","type":"phone_list"}],
                 "count_indexes":[["lead_id","title"]]})"})
      registry.add(schema::parse_entity(def, "t").value());
    service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids, options);
    auto synced = service->sync_schema();
    ASSERT_TRUE(synced.ok()) << synced.error().message;
    admin = fixtures::admin_principal();
    lead = registry.get("lead");
  }
  void TearDown() override {
    service.reset();
    store.reset();
    fs::remove_all(dir);
  }
  std::vector<std::int64_t> found(std::string_view number) {
    auto r = service->lookup_phone(admin, number);
    EXPECT_TRUE(r.ok()) << number << ": " << r.error().message;
    std::vector<std::int64_t> ids;
    if (r.ok())
      for (const auto& m : r->matches) ids.push_back(m.id);
    return ids;
  }
  std::int64_t index_rows() {
    auto tx = store->read().value();
    return as_int(tx->query("SELECT COUNT(*) FROM phone_index").value().rows[0][0]);
  }

  fs::path dir;
  std::unique_ptr<storage::Store> store;
  schema::Registry registry;
  HookRegistry hooks;
  EventBus bus;
  SystemClock clock;
  IdGenerator ids{clock};
  std::unique_ptr<RecordService> service;
  access::Principal admin;
  std::shared_ptr<const schema::Entity> lead;
};

TEST_F(PhoneIndexTest, EveryPhoneListFieldIsIndexedOncePerNumber) {
  open();
  auto r = service->create(admin, *lead,
                           R"({"name":"张三","phones":["010-6253 1234","13812345678"],
                               "fax":[{"value":"+86 10 62531234","label":"fax"}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(index_rows(), 2);  // the switchboard twice in two fields: one row
  EXPECT_EQ(found("+86 10 62531234"), std::vector<std::int64_t>{r->id});
  EXPECT_EQ(found("138 1234 5678"), std::vector<std::int64_t>{r->id});
  auto hit = service->lookup_phone(admin, "13812345678").value();
  EXPECT_EQ(hit.e164, "+8613812345678");
  ASSERT_EQ(hit.matches.size(), 1u);
  EXPECT_EQ(hit.matches[0].title, "张三");
  EXPECT_EQ(hit.matches[0].entity->name, "lead");
}

TEST_F(PhoneIndexTest, EntriesThatDoNotNormaliseAreKeptButNotIndexed) {
  open();
  auto r = service->create(admin, *lead, R"({"name":"x","phones":["8001","13812345678"]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(index_rows(), 1);
  EXPECT_NE(r->body.find("8001"), std::string::npos);
}

TEST_F(PhoneIndexTest, CustomPhoneListFieldIsIndexedToo) {
  open();
  auto f =
      service->add_custom_field(admin, "lead", R"({"name":"wechat_phone","type":"phone_list"})");
  ASSERT_TRUE(f.ok()) << f.error().message;
  lead = registry.get("lead");
  auto r = service->create(admin, *lead, R"({"name":"y","wechat_phone":["139 0000 1111"]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(found("13900001111"), std::vector<std::int64_t>{r->id});
}

TEST_F(PhoneIndexTest, UpdateDeleteRestoreKeepTheIndexInStep) {
  open();
  auto r = service->create(admin, *lead, R"({"name":"z","phones":["13812345678"]})").value();
  ASSERT_TRUE(service->update(admin, *lead, r.id, R"({"phones":["13900001111"]})").ok());
  EXPECT_TRUE(found("13812345678").empty());
  EXPECT_EQ(found("13900001111"), std::vector<std::int64_t>{r.id});
  ASSERT_TRUE(service->remove(admin, *lead, r.id).ok());
  EXPECT_EQ(index_rows(), 0);
  ASSERT_TRUE(service->restore(admin, *lead, r.id).ok());
  EXPECT_EQ(found("13900001111"), std::vector<std::int64_t>{r.id});
}

TEST_F(PhoneIndexTest, RegionSettingReadsNumbersWithoutCountryCode) {
  open(RecordOptions{"DE"});
  auto r = service->create(admin, *lead, R"({"name":"Berlin","phones":["030 1234567"]})").value();
  EXPECT_EQ(found("+49 30 1234567"), std::vector<std::int64_t>{r.id});
  EXPECT_EQ(service->lookup_phone(admin, "030 1234567").value().e164, "+49301234567");
}

TEST_F(PhoneIndexTest, FailingLookupOfANonNumberIsBadRequestOnNumber) {
  open();
  for (const char* bad : {"", "  ", "abc", "12"}) {
    auto r = service->lookup_phone(admin, bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kBadRequest) << bad;
    EXPECT_EQ(r.error().field, "number") << bad;
  }
}

TEST_F(PhoneIndexTest, FailingLookupSkipsRecordsOutOfScope) {
  open();
  auto r = service->create(admin, *lead, R"({"name":"mine","phones":["13812345678"]})");
  ASSERT_TRUE(r.ok());
  auto doc = json::parse(R"({"entities":{"lead":{"read":"own"}}})").value();
  auto role = access::parse_role_permissions(doc);
  ASSERT_TRUE(role.ok()) << role.error().message;
  access::Principal other;
  other.role = std::make_shared<access::Role>(std::move(role).value());
  other.user_id = 42;  // owns nothing
  auto hit = service->lookup_phone(other, "13812345678");
  ASSERT_TRUE(hit.ok());
  EXPECT_TRUE(hit->matches.empty());
}

// The screen pop asks only for the fields it shows; the record JSON of a match carries those
// (and id, version), hidden ones still left out.
TEST_F(PhoneIndexTest, LookupWithFieldsCarriesOnlyThoseFieldsOfEachMatch) {
  open();
  auto r = service->create(admin, *lead,
                           R"({"name":"张三","tax_id":"91110000","phones":["13812345678"]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto all = service->lookup_phone(admin, "13812345678").value();
  ASSERT_EQ(all.matches.size(), 1u);
  auto full = json::parse(all.matches[0].record).value();
  EXPECT_TRUE(json::member(full, "tax_id"));
  EXPECT_TRUE(json::member(full, "phones"));
  auto some = service->lookup_phone(admin, "13812345678", "name,no_such_field").value();
  ASSERT_EQ(some.matches.size(), 1u);
  EXPECT_EQ(some.matches[0].title, "张三");
  auto only = json::parse(some.matches[0].record).value();
  ASSERT_TRUE(json::member(only, "name"));
  EXPECT_STREQ(json::member(only, "name")->GetString(), "张三");
  EXPECT_TRUE(json::member(only, "id"));
  EXPECT_TRUE(json::member(only, "version"));
  EXPECT_FALSE(json::member(only, "tax_id"));
  EXPECT_FALSE(json::member(only, "phones"));
}

// A match's record text and title (R-CTI-1, the screen pop) are the stored row's, as rapidjson
// writes it, whether read whole or copied from the record text cache: current after an update,
// the title empty and the field left out when the title field is hidden from the caller.
TEST_F(PhoneIndexTest, LookupMatchesAreTheStoredRowsTextCachedOrNotAndCurrentAfterAnUpdate) {
  open();
  auto r = service->create(admin, *lead,
                           R"({"name":"李四 \"x\"","tax_id":"T-SECRET","phones":["13812345678"]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (int round = 0; round < 2; ++round) {  // read whole and cached, then from the cache
    auto hit = service->lookup_phone(admin, "13812345678", "name,tax_id").value();
    ASSERT_EQ(hit.matches.size(), 1u);
    EXPECT_EQ(hit.matches[0].record,
              fixtures::reference_text(*store, *lead, admin, r->id, "name,tax_id"));
    EXPECT_EQ(hit.matches[0].title, "李四 \"x\"");
  }
  EXPECT_GE(service->list_cache().hits(), 1u);
  ASSERT_TRUE(service->update(admin, *lead, r->id, R"({"name":"王五"})").ok());
  auto hit = service->lookup_phone(admin, "13812345678").value();
  ASSERT_EQ(hit.matches.size(), 1u);
  EXPECT_EQ(hit.matches[0].title, "王五");
  EXPECT_EQ(hit.matches[0].record, fixtures::reference_text(*store, *lead, admin, r->id, ""));

  auto role = std::make_shared<access::Role>();
  role->entities["lead"].read = access::Scope::kAll;
  role->fields["lead.name"] = access::FieldAccess::kHidden;
  role->fields["lead.tax_id"] = access::FieldAccess::kHidden;
  access::Principal masked;
  masked.role = role;
  masked.user_id = 9;
  auto seen = service->lookup_phone(masked, "13812345678").value();
  ASSERT_EQ(seen.matches.size(), 1u);
  EXPECT_EQ(seen.matches[0].title, "");
  EXPECT_EQ(seen.matches[0].record, fixtures::reference_text(*store, *lead, masked, r->id, ""));
  EXPECT_EQ(seen.matches[0].record.find("王五"), std::string::npos);
  EXPECT_EQ(seen.matches[0].record.find("T-SECRET"), std::string::npos);
}

// lookup_phone_values (the screen pop, R-CTI-1): each match carries the text of each asked
// field, in the order asked, exactly as the record text lookup_phone gives carries it — read
// whole, then from the record text cache, and without that cache —; nullopt for a field the
// entity lacks or the caller may not see, and no record text.
TEST_F(PhoneIndexTest, LookupValuesAreTheRecordTextsMembersInTheOrderAskedHiddenOnesLeftOut) {
  for (const std::size_t cache : {std::size_t{32} << 20, std::size_t{0}}) {
    RecordOptions options;
    options.list_cache_bytes = cache;
    open(options);
    auto r = service->create(
        admin, *lead,
        R"({"name":"李四 \"x\\y\"","tax_id":"T-1","phones":["13812345678"],"emails":["a@b.cn"]})");
    ASSERT_TRUE(r.ok()) << r.error().message;
    const std::string_view asked = "tax_id,no_such_field,emails,name,fax";
    for (int round = 0; round < 2; ++round) {
      auto text = service->lookup_phone(admin, "13812345678", asked).value();
      auto got = service->lookup_phone_values(admin, "138 1234 5678", asked).value();
      ASSERT_EQ(got.matches.size(), 1u);
      const PhoneMatch& m = got.matches[0];
      EXPECT_EQ(m.record, "");
      EXPECT_EQ(m.title, text.matches[0].title);
      ASSERT_EQ(m.values.size(), 5u);
      EXPECT_EQ(m.values[0], json::member_text(text.matches[0].record, "tax_id"));
      EXPECT_EQ(m.values[0], std::optional<std::string_view>(R"("T-1")"));
      EXPECT_EQ(m.values[1], std::nullopt);
      EXPECT_EQ(m.values[2], json::member_text(text.matches[0].record, "emails"));
      EXPECT_EQ(m.values[3], std::optional<std::string_view>(R"("李四 \"x\\y\"")"));
      EXPECT_EQ(m.values[4], std::optional<std::string_view>("null"));
    }
    if (cache > 0) EXPECT_GE(service->list_cache().hits(), 1u);

    auto role = std::make_shared<access::Role>();
    role->entities["lead"].read = access::Scope::kAll;
    role->fields["lead.tax_id"] = access::FieldAccess::kHidden;
    access::Principal masked;
    masked.role = role;
    masked.user_id = 9;
    auto seen = service->lookup_phone_values(masked, "13812345678", asked).value();
    ASSERT_EQ(seen.matches.size(), 1u);
    ASSERT_EQ(seen.matches[0].values.size(), 5u);
    EXPECT_EQ(seen.matches[0].values[0], std::nullopt);  // hidden: not even null
    EXPECT_EQ(seen.matches[0].values[3], std::optional<std::string_view>(R"("李四 \"x\\y\"")"));
    TearDown();
  }
}

// counts()' narrower filters (constant texts, such as the phone pop's open items) are compiled
// once per role and entity and kept; the counts themselves are read fresh every time, and a
// field the role may not see is still refused by name.
TEST_F(PhoneIndexTest, CountsCompileEachNarrowerFilterOncePerRoleAndCountFresh) {
  open();
  auto l = service->create(admin, *lead, R"({"name":"a"})");
  ASSERT_TRUE(l.ok()) << l.error().message;
  auto note = registry.get("note");
  const std::string own =
      R"({"field":"lead_id","op":"=","value":")" + std::to_string(l->id) + R"("})";
  const std::string narrower[] = {R"({"field":"title","op":"=","value":"open"})"};
  for (const char* title : {"open", "done", "open"}) {
    auto n = service->create(admin, *note,
                             R"({"title":")" + std::string(title) + R"(","lead_id":")" +
                                 std::to_string(l->id) + R"("})");
    ASSERT_TRUE(n.ok()) << n.error().message;
  }
  EXPECT_EQ(service->counts(admin, *note, own, narrower).value(),
            (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(service->filters_compiled(), 1u);
  ASSERT_TRUE(service->create(admin, *note, R"({"title":"open"})").ok());  // another lead's
  ASSERT_TRUE(
      service
          ->create(admin, *note, R"({"title":"open","lead_id":")" + std::to_string(l->id) + R"("})")
          .ok());
  EXPECT_EQ(service->counts(admin, *note, own, narrower).value(),
            (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(service->counts(admin, *note, "", narrower).value(), (std::vector<std::int64_t>{5, 4}));
  EXPECT_EQ(service->filters_compiled(), 1u);  // the same text for the same role: kept

  // Another role compiles it for itself; one that may not see the field is refused by name.
  auto reader = json::parse(R"({"entities":{"note":{"read":"all"}}})").value();
  access::Principal other;
  other.role = std::make_shared<access::Role>(access::parse_role_permissions(reader).value());
  other.user_id = 42;
  EXPECT_EQ(service->counts(other, *note, own, narrower).value(),
            (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(service->filters_compiled(), 2u);
  auto hiding =
      json::parse(R"({"entities":{"note":{"read":"all"}},"fields":{"note.title":"hidden"}})")
          .value();
  access::Principal blind;
  blind.role = std::make_shared<access::Role>(access::parse_role_permissions(hiding).value());
  blind.user_id = 43;
  for (int i = 0; i < 2; ++i) {
    auto refused = service->counts(blind, *note, own, narrower);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().field, "title");
  }
}

// counts_of: the per-record filter ("lead_id = <id>") is compiled once per role and field, not
// per id, and each id still counts its own records; a field the role may not see is refused.
TEST_F(PhoneIndexTest, CountsOfCompileThePerRecordFilterOncePerRoleAndCountEachIdsOwn) {
  open();
  auto note = registry.get("note");
  const std::string narrower[] = {R"({"field":"title","op":"=","value":"open"})"};
  std::vector<std::int64_t> leads;
  for (int k = 0; k < 3; ++k) {
    auto l = service->create(admin, *lead, R"({"name":"l)" + std::to_string(k) + R"("})");
    ASSERT_TRUE(l.ok()) << l.error().message;
    leads.push_back(l->id);
    // lead k has k + 1 notes, the first of them "open"
    for (int i = 0; i <= k; ++i) {
      auto n = service->create(admin, *note,
                               R"({"title":")" + std::string(i == 0 ? "open" : "done") +
                                   R"(","lead_id":")" + std::to_string(l->id) + R"("})");
      ASSERT_TRUE(n.ok()) << n.error().message;
    }
  }
  for (int round = 0; round < 2; ++round)
    for (int k = 0; k < 3; ++k) {
      auto n = service->counts_of(admin, *note, "lead_id", leads[k], narrower);
      ASSERT_TRUE(n.ok()) << n.error().message;
      EXPECT_EQ(*n, (std::vector<std::int64_t>{k + 1, 1})) << "lead " << k;
      // The same as counts() with the filter text.
      const std::string own =
          R"({"field":"lead_id","op":"=","value":")" + std::to_string(leads[k]) + R"("})";
      EXPECT_EQ(*n, service->counts(admin, *note, own, narrower).value());
    }
  EXPECT_EQ(service->counts_of(admin, *note, "lead_id", leads[2] + 1000, narrower).value(),
            (std::vector<std::int64_t>{0, 0}));
  // The narrower filter and the per-record filter's shape: two, whatever the ids.
  EXPECT_EQ(service->filters_compiled(), 2u);

  auto unknown = service->counts_of(admin, *note, "no_such_field", leads[0], narrower);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().field, "no_such_field");
  auto hiding =
      json::parse(R"({"entities":{"note":{"read":"all"}},"fields":{"note.lead_id":"hidden"}})")
          .value();
  access::Principal blind;
  blind.role = std::make_shared<access::Role>(access::parse_role_permissions(hiding).value());
  blind.user_id = 43;
  for (int i = 0; i < 2; ++i) {
    auto refused = service->counts_of(blind, *note, "lead_id", leads[0], {});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().field, "lead_id");
  }
}

// The screen pop's open items (R-360) are a count of live records by a reference, narrowed by a
// condition on another column: with the entity's count index on both, counts_of reads that
// index alone (no table row per counted record), and the index, maintained by the database
// with every write, follows creates, updates of either column, deletes and restores.
TEST_F(PhoneIndexTest, CountsOfReadTheCountIndexAloneAndFollowEveryWrite) {
  open();
  auto note = registry.get("note");
  const std::string narrower[] = {R"({"field":"title","op":"=","value":"open"})"};
  auto st = service->counts_of_statement(admin, *note, "lead_id", narrower);
  ASSERT_TRUE(st.ok()) << st.error().message;
  {
    auto tx = store->read().value();
    auto rows = tx->query("EXPLAIN QUERY PLAN " + st->first, st->second).value();
    std::string plan;
    for (const auto& r : rows.rows) plan += std::get<std::string>(r.back()) + "\n";
    EXPECT_NE(plan.find("USING COVERING INDEX ix_note__lead_id__title__live (lead_id=?)"),
              std::string::npos)
        << plan;
  }
  auto a = service->create(admin, *lead, R"({"name":"a"})").value().id;
  auto b = service->create(admin, *lead, R"({"name":"b"})").value().id;
  const auto counts = [&](std::int64_t id) {
    auto n = service->counts_of(admin, *note, "lead_id", id, narrower);
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
    return n.ok() ? *n : std::vector<std::int64_t>{};
  };
  const auto note_of = [&](std::int64_t id, const char* title) {
    return R"({"title":")" + std::string(title) + R"(","lead_id":")" + std::to_string(id) + R"("})";
  };
  std::vector<std::int64_t> notes;
  for (const char* title : {"open", "done", "open"})
    notes.push_back(service->create(admin, *note, note_of(a, title)).value().id);
  EXPECT_EQ(counts(a), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(counts(b), (std::vector<std::int64_t>{0, 0}));
  // The narrowing column changes; then the reference.
  ASSERT_TRUE(service->update(admin, *note, notes[1], R"({"title":"open"})").ok());
  EXPECT_EQ(counts(a), (std::vector<std::int64_t>{3, 3}));
  ASSERT_TRUE(service->update(admin, *note, notes[0], note_of(b, "open")).ok());
  EXPECT_EQ(counts(a), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(counts(b), (std::vector<std::int64_t>{1, 1}));
  // A deleted record leaves the count (and the partial index); restored, it is back.
  ASSERT_TRUE(service->remove(admin, *note, notes[2]).ok());
  EXPECT_EQ(counts(a), (std::vector<std::int64_t>{1, 1}));
  ASSERT_TRUE(service->restore(admin, *note, notes[2]).ok());
  EXPECT_EQ(counts(a), (std::vector<std::int64_t>{2, 2}));
  ASSERT_TRUE(service->update(admin, *note, notes[2], R"({"lead_id":null})").ok());
  EXPECT_EQ(counts(a), (std::vector<std::int64_t>{1, 1}));
}

// counts_of keeps its whole statement per role, field and scope (R-360 screen pop's open items):
// callers of one role with "own" or "team" scope each still count only their own records, in
// any order of calls, and an "all" caller of another role everything.
TEST_F(PhoneIndexTest, CountsOfKeptStatementCountsEachCallersOwnScope) {
  open();
  auto note = registry.get("note");
  auto l = service->create(admin, *lead, R"({"name":"l"})");
  ASSERT_TRUE(l.ok()) << l.error().message;
  const std::string lead_id = std::to_string(l->id);
  const auto make = [&](const char* entity, const std::string& body) {
    auto r = service->create(admin, *registry.get(entity), body);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->id : 0;
  };
  const std::int64_t u1 = make("user", R"({"username":"u1"})"),
                     u2 = make("user", R"({"username":"u2"})"),
                     u3 = make("user", R"({"username":"u3"})");
  const std::int64_t t1 = make("team", R"({"name":"t1"})"), t2 = make("team", R"({"name":"t2"})");
  // u1 (team t1) owns 1 note, u2 (team t1) owns 2, u3 (team t2) owns 3.
  const std::pair<std::int64_t, std::int64_t> owners[] = {{u1, t1}, {u2, t1}, {u2, t1},
                                                          {u3, t2}, {u3, t2}, {u3, t2}};
  for (auto [owner, team] : owners) {
    auto n = service->create(admin, *note,
                             R"({"title":"open","lead_id":")" + lead_id + R"(","owner_id":")" +
                                 std::to_string(owner) + R"(","team_id":")" + std::to_string(team) +
                                 R"("})");
    ASSERT_TRUE(n.ok()) << n.error().message;
  }
  const auto principal = [](const char* scope, std::int64_t user, std::int64_t team) {
    auto doc =
        json::parse(R"({"entities":{"note":{"read":")" + std::string(scope) + R"("}}})").value();
    access::Principal p;
    p.role = std::make_shared<access::Role>(access::parse_role_permissions(doc).value());
    p.user_id = user;
    p.team_id = team;
    return p;
  };
  const std::string narrower[] = {R"({"field":"title","op":"=","value":"open"})"};
  auto own_u1 = principal("own", u1, t1);
  auto own_u2 = own_u1;  // the same role
  own_u2.user_id = u2;
  auto own_u3 = own_u1;
  own_u3.user_id = u3;
  own_u3.team_id = t2;
  auto team_u2 = principal("team", u2, t1);
  auto team_u3 = team_u2;
  team_u3.user_id = u3;
  team_u3.team_id = t2;
  for (int round = 0; round < 2; ++round) {
    const std::pair<const access::Principal*, int> calls[] = {
        {&own_u1, 1}, {&own_u3, 3}, {&own_u2, 2}, {&team_u3, 3}, {&team_u2, 3}, {&admin, 6}};
    for (auto [who, want] : calls) {
      auto n = service->counts_of(*who, *note, "lead_id", l->id, narrower);
      ASSERT_TRUE(n.ok()) << n.error().message;
      EXPECT_EQ(*n, (std::vector<std::int64_t>{want, want}))
          << "user " << who->user_id << ", round " << round;
    }
  }
}

// The distribution key (docs/SCALING.md): phone index and audit rows carry the id of the
// record of the distribution entity they belong to, so a sharded database keeps them with it.
TEST_F(PhoneIndexTest, RowsCarryTheDistributionKey) {
  RecordOptions options;
  options.distribution_entity = "lead";
  open(options);
  auto note = registry.get("note");
  auto l1 = service->create(admin, *lead, R"({"name":"一号","phones":["13800000001"]})");
  auto l2 = service->create(admin, *lead, R"({"name":"二号"})");
  ASSERT_TRUE(l1.ok() && l2.ok());
  auto n1 = service->create(
      admin, *note,
      R"({"title":"n1","lead_id":")" + std::to_string(l1->id) + R"(","phones":["13800000002"]})");
  ASSERT_TRUE(n1.ok()) << n1.error().message;
  auto n2 = service->create(admin, *note, R"({"title":"n2","phones":["13800000003"]})");
  ASSERT_TRUE(n2.ok()) << n2.error().message;
  auto keys = [&](const char* sql) {
    auto tx = store->read().value();
    std::map<std::int64_t, std::vector<storage::SqlValue>> out;
    auto rows = tx->query(sql);
    EXPECT_TRUE(rows.ok()) << sql << ": " << (rows.ok() ? "" : rows.error().message);
    if (rows.ok())
      for (const auto& r : rows->rows) out[as_int(r[0])].push_back(r[1]);
    return out;
  };
  const storage::SqlValue k1 = l1->id, k2 = l2->id, none;
  auto phones = keys("SELECT record_id, account_id FROM phone_index");
  EXPECT_EQ(phones[l1->id], std::vector{k1});
  EXPECT_EQ(phones[n1->id], std::vector{k1}) << "a note carries its lead's id";
  EXPECT_EQ(phones[n2->id], std::vector{none}) << "no lead, no key";
  // the search index's rows of a created record carry it too (as derive() and bulk inserts
  // write them)
  auto terms = keys("SELECT id, account_id FROM lead_terms_of");
  EXPECT_EQ(terms[l1->id], std::vector{k1});
  EXPECT_EQ(terms[l2->id], std::vector{k2});
  auto term_keys = keys("SELECT DISTINCT id, account_id FROM lead_terms");
  EXPECT_EQ(term_keys[l1->id], std::vector{k1});
  const char* audit_sql = "SELECT record_id, account_id FROM audit_log ORDER BY id";
  auto audit = keys(audit_sql);
  EXPECT_EQ(audit[l1->id], std::vector{k1});
  EXPECT_EQ(audit[l2->id], std::vector{k2});
  EXPECT_EQ(audit[n1->id], std::vector{k1});
  EXPECT_EQ(audit[n2->id], std::vector{none});

  // Moving the note to another lead moves its index rows; its new audit entry has the new key.
  auto moved =
      service->update(admin, *note, n1->id, R"({"lead_id":")" + std::to_string(l2->id) + "\"}");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(keys("SELECT record_id, account_id FROM phone_index")[n1->id], std::vector{k2});
  EXPECT_EQ(keys(audit_sql)[n1->id], (std::vector{k1, k2}));

  // Entries written before the column existed are filled in at start-up (once).
  {
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("UPDATE audit_log SET account_id = NULL").ok());
    ASSERT_TRUE(tx->exec("DELETE FROM derived_index WHERE name = 'audit_key'").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  ASSERT_TRUE(service->sync_schema().ok());
  audit = keys(audit_sql);
  EXPECT_EQ(audit[l1->id], std::vector{k1});
  EXPECT_EQ(audit[n1->id], (std::vector{k2, k2})) << "backfill uses the current reference";
  EXPECT_EQ(audit[n2->id], std::vector{none});
}

// Every derived index as text, in a fixed order: search bodies, phone index, match index.
std::vector<std::string> derived_snapshot(storage::Store& store) {
  auto tx = store.read().value();
  std::vector<std::string> out;
  for (const char* sql :
       {"SELECT term, id, account_id FROM lead_terms ORDER BY term, id",
        "SELECT id, account_id, terms FROM lead_terms_of ORDER BY id",
        "SELECT e164, entity, record_id, account_id FROM phone_index "
        "ORDER BY e164, entity, record_id",
        "SELECT key, entity, record_id FROM match_index ORDER BY key, entity, record_id"}) {
    auto rows = tx->query(sql);
    EXPECT_TRUE(rows.ok()) << sql;
    for (const auto& r : rows->rows) {
      std::string line;
      for (const auto& v : r) {
        line += storage::is_null(v)                      ? std::string("NULL")
                : std::holds_alternative<std::string>(v) ? std::get<std::string>(v)
                                                         : std::to_string(as_int(v));
        line += '|';
      }
      out.push_back(std::move(line));
    }
    out.push_back("--");
  }
  return out;
}

TEST_F(PhoneIndexTest, StartUpRebuildInBatchesGivesTheSameIndexes) {
  dedupe_leads_as_organisations();
  RecordOptions options;
  options.rebuild_batch = 7;  // 40 live records: 6 batches
  open(options);
  std::vector<std::int64_t> made;
  for (int i = 0; i < 42; ++i) {
    std::string n = std::to_string(i);
    auto r = service->create(admin, *lead,
                             R"({"name":"客户 Lead )" + n + R"(","phones":["010-6253 )" +
                                 std::to_string(1000 + i) + R"("],"emails":["a)" + n + R"(@corp)" +
                                 n + R"(.cn"],"tax_id":"91110000X)" + n + R"("})");
    ASSERT_TRUE(r.ok()) << r.error().message;
    made.push_back(r->id);
    if (i >= 40) {
      ASSERT_TRUE(service->remove(admin, *lead, r->id).ok());  // not rebuilt
    }
  }
  const auto built = derived_snapshot(*store);
  ASSERT_GT(built.size(), 120u);

  // An older format version: the next start-up rebuilds everything from the records.
  {
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("UPDATE derived_index SET version = 'old'").ok());
    ASSERT_TRUE(tx->exec("DELETE FROM lead_terms").ok());
    ASSERT_TRUE(tx->exec("DELETE FROM lead_terms_of").ok());
    ASSERT_TRUE(tx->exec("DELETE FROM phone_index").ok());
    ASSERT_TRUE(tx->exec("DELETE FROM match_index").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto* sqlite = dynamic_cast<storage::sqlite::SqliteStore*>(store.get());
  ASSERT_NE(sqlite, nullptr);
  const auto before = sqlite->group_commit_stats().batches;
  service = std::make_unique<RecordService>(*store, registry, hooks, bus, clock, ids, options);
  ASSERT_TRUE(service->sync_schema().ok());
  EXPECT_EQ(derived_snapshot(*store), built);
  // Search bodies and phones walk the 40 live records in 6 batches, the match index in 6 more:
  // each a transaction of its own (plus the schema sync, the two clears and two version writes).
  EXPECT_GE(sqlite->group_commit_stats().batches - before, 12);
  EXPECT_EQ(found("010 6253 1005"), std::vector<std::int64_t>{made[5]});
  EXPECT_EQ(found("010 6253 1041"), std::vector<std::int64_t>{});  // deleted
}

// An update rewrites a derived index only when what it is made of changed (derive_changed): a
// PATCH of a plain field writes no term, phone or match row; a PATCH of the name rewrites the
// term rows alone (names are no match keys); one of the numbers the phone rows and the terms
// (which hold the digits); a re-spelling of the same numbers not the phone rows; the tax id and
// the emails (not searchable here) the match rows alone. After them all the indexes are what a
// rebuild from the records gives, and lookups and searches find the new values only.
TEST_F(PhoneIndexTest, AnUpdateRewritesOnlyTheDerivedRowsWhoseSourceChanged) {
  dedupe_leads_as_organisations();
  RecordOptions options;
  options.distribution_entity = "lead";
  open(options);
  ASSERT_TRUE(service->add_custom_field(admin, "lead", R"({"name":"terms","type":"text"})").ok());
  lead = registry.get("lead");
  auto a = service->create(admin, *lead,
                           R"({"name":"Alpha 甲","phones":["010-6253 1001"],"tax_id":"91110000A",
                               "terms":"net 30"})");
  auto b = service->create(admin, *lead,
                           R"({"name":"Beta 乙","phones":["010-6253 1002"],"tax_id":"91110000B"})");
  ASSERT_TRUE(a.ok() && b.ok());
  // Every insert into and delete from a derived table, by table (b's rows are the newest: a
  // rewrite of a's gives them new places in the rowid tables, and every rewrite shows here).
  {
    auto tx = store->write().value();
    ASSERT_TRUE(tx->exec("CREATE TABLE derived_writes (tbl TEXT NOT NULL)").ok());
    for (const char* t : {"lead_terms", "lead_terms_of", "phone_index", "match_index"})
      for (const char* op : {"INSERT", "DELETE"})
        ASSERT_TRUE(tx->exec(std::string("CREATE TRIGGER ") + t + "_" + op + " AFTER " + op +
                             " ON " + t + " BEGIN INSERT INTO derived_writes VALUES ('" + t +
                             "'); END")
                        .ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  auto writes = [&] {
    auto tx = store->write().value();
    auto rows = tx->query("SELECT tbl FROM derived_writes GROUP BY tbl ORDER BY tbl").value().rows;
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(as_text(r[0]));
    EXPECT_TRUE(tx->exec("DELETE FROM derived_writes").ok());
    EXPECT_TRUE(tx->commit().ok());
    return out;
  };
  using Tables = std::vector<std::string>;
  const auto patch = [&](const std::string& body) {
    auto u = service->update(admin, *lead, a->id, body);
    ASSERT_TRUE(u.ok()) << body << ": " << u.error().message;
  };
  const auto searched = [&](std::string_view q) {
    auto tx = store->read().value();
    return tx->fts_search("lead", q, 10).value();
  };
  const std::vector<std::int64_t> just_a{a->id}, none;

  patch(R"({"terms":"net 60"})");
  EXPECT_EQ(writes(), Tables{}) << "a plain field";
  patch(R"({"name":"Gamma 丙"})");
  EXPECT_EQ(writes(), (Tables{"lead_terms", "lead_terms_of"})) << "the name (no match key)";
  EXPECT_EQ(searched("gamma"), just_a);
  EXPECT_EQ(searched("丙"), just_a);
  EXPECT_EQ(searched("alpha"), none);
  EXPECT_EQ(searched("甲"), none);
  patch(R"({"phones":["010-6253 1003"]})");
  EXPECT_EQ(writes(), (Tables{"lead_terms", "lead_terms_of", "phone_index"})) << "the numbers";
  EXPECT_EQ(found("010 6253 1003"), just_a);
  EXPECT_EQ(found("010 6253 1001"), none);
  EXPECT_EQ(searched("62531003"), just_a);
  EXPECT_EQ(searched("62531001"), none);
  patch(R"({"phones":["+86 10 62531003"]})");
  EXPECT_EQ(writes(), (Tables{"lead_terms", "lead_terms_of"})) << "the same number re-spelt";
  EXPECT_EQ(found("010 6253 1003"), just_a);
  patch(R"({"tax_id":"91110000C"})");
  EXPECT_EQ(writes(), Tables{"match_index"}) << "a match key alone";
  patch(R"({"emails":["info@gamma.cn"]})");
  EXPECT_EQ(writes(), Tables{"match_index"}) << "match keys (email, domain), not searchable";

  // A note moved to another lead: its term rows carry the new lead's id (the distribution key
  // changed, no searchable field did).
  ASSERT_TRUE(
      service->add_custom_field(admin, "note", R"({"name":"memo","type":"text","searchable":true})")
          .ok());
  auto note = registry.get("note");
  auto n = service->create(
      admin, *note,
      R"({"title":"n","memo":"Kettle","lead_id":")" + std::to_string(a->id) + R"("})");
  ASSERT_TRUE(n.ok()) << n.error().message;
  auto moved =
      service->update(admin, *note, n->id, R"({"lead_id":")" + std::to_string(b->id) + "\"}");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  {
    auto tx = store->read().value();
    storage::SqlValue id[] = {n->id};
    for (const char* sql : {"SELECT DISTINCT account_id FROM note_terms WHERE id = ?",
                            "SELECT account_id FROM note_terms_of WHERE id = ?"}) {
      auto rows = tx->query(sql, id).value().rows;
      ASSERT_EQ(rows.size(), 1u) << sql;
      EXPECT_EQ(as_int(rows[0][0]), b->id) << sql;
    }
  }

  // What the updates left is what a rebuild from the records writes.
  const auto updated = derived_snapshot(*store);
  {
    auto tx = store->write().value();
    for (const char* t : {"lead_terms", "lead_terms_of", "phone_index", "match_index"})
      for (const char* op : {"INSERT", "DELETE"})
        ASSERT_TRUE(tx->exec(std::string("DROP TRIGGER ") + t + "_" + op).ok());
    ASSERT_TRUE(tx->exec("DROP TABLE derived_writes").ok());
    ASSERT_TRUE(tx->exec("UPDATE derived_index SET version = 'old'").ok());
    ASSERT_TRUE(tx->commit().ok());
  }
  ASSERT_TRUE(service->sync_schema().ok());
  EXPECT_EQ(derived_snapshot(*store), updated);
}

// Bulk creates (create_batch, imports: RecordService::insert_many) write the same derived rows as
// single creates: phone index and audit entries with the distribution key, search bodies, and
// a failing row fails the whole batch without writing anything.
TEST_F(PhoneIndexTest, BulkCreatesWriteWhatSingleCreatesWrite) {
  RecordOptions options;
  options.distribution_entity = "lead";
  open(options);
  auto note = registry.get("note");
  auto leads = service->create_batch(
      admin, *lead,
      {R"({"name":"批量一号","phones":["138 0000 0011"],"fax":["010-6253 0011"]})",
       R"({"name":"Bulk Two","phones":["+86 138 0000 0012"]})"});
  ASSERT_TRUE(leads.ok()) << leads.error().message;
  ASSERT_EQ(leads->size(), 2u);
  const std::int64_t l1 = (*leads)[0], l2 = (*leads)[1];
  auto notes = service->create_batch(
      admin, *note,
      {R"({"title":"bn1","lead_id":")" + std::to_string(l1) + R"(","phones":["13800000013"]})",
       R"({"title":"bn2","phones":["13800000014"]})"});
  ASSERT_TRUE(notes.ok()) << notes.error().message;
  auto keys = [&](const std::string& sql) {
    auto tx = store->read().value();
    std::map<std::int64_t, std::vector<storage::SqlValue>> out;
    auto rows = tx->query(sql);
    EXPECT_TRUE(rows.ok()) << sql;
    if (rows.ok())
      for (const auto& r : rows->rows) out[as_int(r[0])].push_back(r[1]);
    return out;
  };
  const storage::SqlValue k1 = l1, k2 = l2, none;
  auto phones = keys("SELECT record_id, account_id FROM phone_index ORDER BY e164");
  EXPECT_EQ(phones[l1], (std::vector{k1, k1})) << "phones and fax";
  EXPECT_EQ(phones[l2], std::vector{k2});
  EXPECT_EQ(phones[(*notes)[0]], std::vector{k1}) << "a note carries its lead's id";
  EXPECT_EQ(phones[(*notes)[1]], std::vector{none});
  auto e164 = keys("SELECT record_id, e164 FROM phone_index ORDER BY e164");
  EXPECT_EQ(e164[l1], (std::vector<storage::SqlValue>{std::string("+861062530011"),
                                                      std::string("+8613800000011")}));
  auto audit = keys("SELECT record_id, account_id FROM audit_log ORDER BY id");
  EXPECT_EQ(audit[l1], std::vector{k1});
  EXPECT_EQ(audit[(*notes)[0]], std::vector{k1});
  EXPECT_EQ(audit[(*notes)[1]], std::vector{none});
  auto actions = keys("SELECT record_id, action || ' ' || channel FROM audit_log");
  EXPECT_EQ(actions[l2], std::vector<storage::SqlValue>{std::string("create api")});
  // found by phone and by search like any record
  auto hit = service->lookup_phone(admin, "13800000012");
  ASSERT_TRUE(hit.ok());
  ASSERT_EQ(hit->matches.size(), 1u);
  EXPECT_EQ(hit->matches[0].id, l2);
  auto found = service->search(admin, "批量", "lead", 10);
  ASSERT_TRUE(found.ok());
  EXPECT_NE(found->find(std::to_string(l1)), std::string::npos) << *found;
  // the numbers of every phone list are search terms in E.164 and as digits (parsed once per
  // row for the phone index, the search body and the duplicate facts)
  for (const char* q : {"+8613800000011", "+861062530011", "62530011", "13800000011"}) {
    auto by = service->search(admin, q, "lead", 10);
    ASSERT_TRUE(by.ok()) << q;
    EXPECT_NE(by->find(std::to_string(l1)), std::string::npos) << q << ": " << *by;
    EXPECT_EQ(by->find(std::to_string(l2)), std::string::npos) << q << ": " << *by;
  }
  // the record reads back as written
  auto got = service->get(admin, *lead, l2);
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->body.find("\"name\":\"Bulk Two\""), std::string::npos) << got->body;
  EXPECT_EQ(got->version, 1);

  // A bad row fails the batch, naming it; nothing of the batch is written.
  auto bad = service->create_batch(
      admin, *note,
      {R"({"title":"bn3","phones":["13800000015"]})", R"({"title":"bn4","lead_id":"999999"})"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kValidation);
  EXPECT_EQ(bad.error().field, "lead_id");
  EXPECT_EQ(bad.error().message.rfind("row 2: ", 0), 0u) << bad.error().message;
  auto none_hit = service->lookup_phone(admin, "13800000015");
  ASSERT_TRUE(none_hit.ok());
  EXPECT_TRUE(none_hit->matches.empty());
  // A body that is not a JSON object fails the batch, naming its row.
  auto not_object = service->create_batch(admin, *note, {R"({"title":"bn5"})", "[1]", "{"});
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.error().code, Errc::kBadRequest);
  EXPECT_EQ(not_object.error().message, "row 2 is not a JSON object");
  auto bn5 = service->search(admin, "bn5", "note", 10);
  ASSERT_TRUE(bn5.ok());
  EXPECT_EQ(bn5->find("bn5"), std::string::npos) << *bn5;
}

// Bulk loading with the search index deferred (the benchmark data generator): create_batch
// stages the terms, the records are not found by search until finish_deferred_search_index()
// sorts them into the index; then they are found by every term as with an indexed batch, and
// the phone index was written at once.
TEST_F(PhoneIndexTest, DeferredSearchIndexIsFilledByFinish) {
  RecordOptions options;
  options.defer_search_index = true;
  open(options);
  auto leads = service->create_batch(admin, *lead,
                                     {R"({"name":"延迟索引一号","phones":["138 0000 0021"]})",
                                      R"({"name":"Deferred Two","phones":["+86 138 0000 0022"]})"});
  ASSERT_TRUE(leads.ok()) << leads.error().message;
  ASSERT_EQ(leads->size(), 2u);
  const std::string l1 = std::to_string((*leads)[0]), l2 = std::to_string((*leads)[1]);
  auto search = [&](const char* q) {
    auto r = service->search(admin, q, "lead", 10);
    EXPECT_TRUE(r.ok()) << q;
    return r.ok() ? *r : std::string();
  };
  EXPECT_EQ(search("延迟").find(l1), std::string::npos) << "staged, not yet indexed";
  EXPECT_EQ(search("deferred").find(l2), std::string::npos);
  auto hit = service->lookup_phone(admin, "13800000022");
  ASSERT_TRUE(hit.ok());
  ASSERT_EQ(hit->matches.size(), 1u);
  EXPECT_EQ(std::to_string(hit->matches[0].id), l2);

  auto finished = service->finish_deferred_search_index();
  ASSERT_TRUE(finished.ok()) << finished.error().message;
  EXPECT_NE(search("延迟").find(l1), std::string::npos) << search("延迟");
  EXPECT_NE(search("deferred").find(l2), std::string::npos) << search("deferred");
  EXPECT_EQ(search("deferred").find(l1), std::string::npos);
  for (const char* q : {"+8613800000021", "13800000021"})
    EXPECT_NE(search(q).find(l1), std::string::npos) << q << ": " << search(q);
  // the staging tables are gone
  auto tx = store->read().value();
  auto staged = tx->query("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_terms_in'");
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(as_int(staged->rows[0][0]), 0);
}

}  // namespace
}  // namespace rapport::record
