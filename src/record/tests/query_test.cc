// Filter compilation, sort parsing and cursors: the SQL shape and bound values.
#include <gtest/gtest.h>

#include "record/query.h"
#include "storage/store.h"

namespace rapport::record {
namespace {

class FakeDialect : public storage::Dialect {
 public:
  std::string column_type(storage::ColumnType) const override { return "X"; }
  std::vector<std::string> fts_create(std::string_view) const override { return {}; }
  std::string ilike() const override { return "LIKE"; }
  std::string fts_condition(std::string_view, std::string_view,
                            std::vector<storage::SqlValue>&) const override {
    return "1 = 0";
  }
  std::string fts_key_counts(std::string_view, std::string_view, int,
                             std::vector<storage::SqlValue>&) const override {
    return {};
  }
  std::string fts_page(std::string_view, std::string_view, int, const storage::FtsPosition*, int,
                       std::vector<storage::SqlValue>&) const override {
    return {};
  }
  std::string fts_window_end(std::string_view, std::string_view, int, const storage::FtsPosition*,
                             int, std::vector<storage::SqlValue>&) const override {
    return {};
  }
};

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    entity = schema::parse_entity(
                 R"({"name":"account","title_field":"name","fields":[
      {"name":"name","type":"text","indexed":true},
      {"name":"employees","type":"integer","indexed":true},
      {"name":"revenue","type":"money"},
      {"name":"vip","type":"boolean"},
      {"name":"since","type":"date"},
      {"name":"phones","type":"phone_list"},
      {"name":"bank_account","type":"text","sensitive":true,"indexed":true}]})",
                 "t")
                 .value();
    auto role = std::make_shared<access::Role>();
    role->entities["account"] = {true, access::Scope::kAll, access::Scope::kAll,
                                 access::Scope::kAll};
    sales.role = role;
    sales.user_id = 1;
  }
  Result<std::string> compile(const char* filter) {
    json::Document d;
    d.Parse(filter);
    params.clear();
    return compile_filter(d, entity, sales, dialect, params);
  }
  schema::Entity entity;
  access::Principal sales;
  FakeDialect dialect;
  std::vector<storage::SqlValue> params;
};

TEST_F(QueryTest, ComparisonsBindValues) {
  auto r = compile(R"({"field":"employees","op":">=","value":10})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "\"employees\" >= ?");
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(std::get<std::int64_t>(params[0]), 10);
}

TEST_F(QueryTest, NotEqualKeepsEmptyValues) {
  auto r = compile(R"({"field":"name","op":"!=","value":"x"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "(\"name\" <> ? OR \"name\" IS NULL)");
}

TEST_F(QueryTest, ContainsEscapesLikeWildcards) {
  auto r = compile(R"({"field":"name","op":"contains","value":"50%_off"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "\"name\" LIKE ? ESCAPE '\\'");
  EXPECT_EQ(std::get<std::string>(params[0]), "%50\\%\\_off%");
  ASSERT_TRUE(compile(R"({"field":"name","op":"starts_with","value":"北京"})").ok());
  EXPECT_EQ(std::get<std::string>(params[0]), "北京%");
}

TEST_F(QueryTest, BooleanCombinatorsNest) {
  auto r = compile(R"({"and":[{"field":"vip","op":"=","value":true},
    {"or":[{"field":"employees","op":"in","value":[1,2]},{"not":{"field":"since","op":"is_null","value":true}}]}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "(\"vip\" = ? AND (\"employees\" IN (?, ?) OR NOT (\"since\" IS NULL)))");
  EXPECT_EQ(params.size(), 3u);
}

TEST_F(QueryTest, BetweenAndMoney) {
  auto r = compile(R"({"field":"revenue","op":"between","value":[100,200]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "\"revenue\" BETWEEN ? AND ?");
}

struct Failing {
  const char* filter;
  const char* field;
};

TEST_F(QueryTest, FailingFiltersAreBadFilterNamingTheField) {
  const Failing cases[] = {
      {R"({"field":"nope","op":"=","value":1})", "nope"},
      {R"({"field":"bank_account","op":"=","value":"1"})",
       "bank_account"},  // hidden from this role
      {R"({"field":"name","op":"~","value":"x"})", "name"},
      {R"({"field":"employees","op":"=","value":"ten"})", "employees"},
      {R"({"field":"since","op":"=","value":"2024-13-01"})", "since"},
      {R"({"field":"phones","op":"=","value":"1"})", "phones"},
      {R"({"field":"employees","op":"between","value":[1]})", "employees"},
      {R"({"field":"employees","op":"in","value":[]})", "employees"},
      {R"({"field":"name","op":"is_null","value":"yes"})", "name"},
      {R"({"and":[]})", ""},
      {R"([1,2])", ""},
      {R"({"field":"name","op":"=","value":"x","extra":1})", ""},
  };
  for (const auto& c : cases) {
    auto r = compile(c.filter);
    ASSERT_FALSE(r.ok()) << c.filter;
    EXPECT_EQ(r.error().code, Errc::kBadFilter) << c.filter;
    EXPECT_EQ(r.error().field, c.field) << c.filter;
  }
}

TEST_F(QueryTest, FailingDeepNesting) {
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += R"({"not":)";
  deep += R"({"field":"name","op":"=","value":"x"})";
  for (int i = 0; i < 20; ++i) deep += "}";
  auto r = compile(deep.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadFilter);
}

TEST_F(QueryTest, SortAppendsIdAndRefusesUnindexedFields) {
  auto keys = parse_sort("-employees,name", entity, sales);
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ(order_by(*keys),
            "\"employees\" DESC NULLS LAST, \"name\" ASC NULLS FIRST, \"id\" DESC NULLS LAST");
  auto bad = parse_sort("vip", entity, sales);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "sort");
  ASSERT_FALSE(parse_sort("bank_account", entity, sales).ok());
  ASSERT_FALSE(parse_sort("missing", entity, sales).ok());
}

TEST_F(QueryTest, CursorRoundTripAndKeysetCondition) {
  std::vector<storage::SqlValue> values = {std::int64_t{5}, storage::SqlValue{}, std::int64_t{99}};
  std::string c = encode_cursor(values);
  auto back = decode_cursor(c, 3);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<std::int64_t>((*back)[2]), 99);
  EXPECT_TRUE(storage::is_null((*back)[1]));
  EXPECT_FALSE(decode_cursor(c, 2).ok());
  EXPECT_FALSE(decode_cursor("zz", 1).ok());
  EXPECT_EQ(decode_cursor("abc", 1).error().field, "cursor");

  auto keys = parse_sort("-employees,name", entity, sales).value();
  std::vector<storage::SqlValue> p;
  std::string cond = after_cursor(keys, *back, p);
  // A descending key that may be NULL gets no leading range (NULLs come after the cursor).
  EXPECT_EQ(cond,
            "((((\"employees\" < ? OR \"employees\" IS NULL)) OR (\"employees\" = ? AND \"name\" "
            "IS NOT NULL) OR (\"employees\" = ? AND \"name\" IS NULL AND \"id\" < ?)))");
  EXPECT_EQ(p.size(), 4u);

  // Never-NULL system keys in one direction: one row-value comparison the index seeks to.
  std::vector<storage::SqlValue> at = {std::string("2026-11-23T01:00:00.000Z"), std::int64_t{7}};
  p.clear();
  cond = after_cursor(parse_sort("-created_at", entity, sales).value(), at, p);
  EXPECT_EQ(cond, "((\"created_at\", \"id\") < (?, ?))");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(std::get<std::string>(p[0]), "2026-11-23T01:00:00.000Z");
  EXPECT_EQ(std::get<std::int64_t>(p[1]), 7);
  p.clear();
  EXPECT_EQ(after_cursor(parse_sort("created_at", entity, sales).value(), at, p),
            "((\"created_at\", \"id\") > (?, ?))");
  // Never NULL but mixed directions: no NULL arm, and a leading range the index can seek to.
  std::vector<storage::SqlValue> three = {std::string("2026-11-23T01:00:00.000Z"),
                                          std::string("2026-11-22T01:00:00.000Z"), std::int64_t{7}};
  p.clear();
  cond = after_cursor(parse_sort("-created_at,updated_at", entity, sales).value(), three, p);
  EXPECT_EQ(cond.rfind("(\"created_at\" <= ? AND ((\"created_at\" < ?) OR ", 0), 0u) << cond;
  EXPECT_EQ(cond.find("IS NULL"), std::string::npos) << cond;
  // Ascending: the range holds whatever the key (NULLs come before the cursor).
  p.clear();
  std::vector<storage::SqlValue> named = {std::string("Acme"), std::int64_t{7}};
  cond = after_cursor(parse_sort("name,id", entity, sales).value(), named, p);
  EXPECT_EQ(cond, "((\"name\", \"id\") > (?, ?))");
  EXPECT_EQ(p.size(), 2u);
  // Mixed directions after a key that may be NULL: the OR of every position, with its range.
  p.clear();
  cond = after_cursor(parse_sort("name,-id", entity, sales).value(), named, p);
  EXPECT_EQ(cond.rfind("(\"name\" >= ? AND ", 0), 0u) << cond;
  EXPECT_EQ(p.size(), 4u);
}

TEST_F(QueryTest, OneFieldOfItsOwnIndexSortsTiesByCreatedAtThenIdInItsDirection) {
  EXPECT_EQ(order_by(parse_sort("name", entity, sales).value()),
            "\"name\" ASC NULLS FIRST, \"created_at\" ASC NULLS FIRST, \"id\" ASC NULLS FIRST");
  EXPECT_EQ(
      order_by(parse_sort("-employees", entity, sales).value()),
      "\"employees\" DESC NULLS LAST, \"created_at\" DESC NULLS LAST, \"id\" DESC NULLS LAST");
  // Not for created_at itself, an explicit id, or several fields.
  EXPECT_EQ(parse_sort("-created_at", entity, sales).value().size(), 2u);
  EXPECT_EQ(parse_sort("name,-id", entity, sales).value().size(), 2u);
  EXPECT_EQ(parse_sort("name,employees", entity, sales).value().size(), 3u);
}

TEST_F(QueryTest, CursorOfAKeyThatMayBeNullIsARowValueAndItsNullsOnTheFarSide) {
  const std::string when = "2026-11-23T01:00:00.000Z";
  std::vector<storage::SqlValue> at = {std::int64_t{5}, when, std::int64_t{7}};
  // Ascending: NULLs came before the cursor; one row-value range.
  auto arms = cursor_arms(parse_sort("employees", entity, sales).value(), at);
  ASSERT_TRUE(arms);
  EXPECT_EQ(arms->first, "(\"employees\", \"created_at\", \"id\") > (?, ?, ?)");
  EXPECT_EQ(arms->first_params.size(), 3u);
  EXPECT_EQ(arms->then, "");
  // Descending: the range, then the NULLs (last in that order).
  arms = cursor_arms(parse_sort("-employees", entity, sales).value(), at);
  ASSERT_TRUE(arms);
  EXPECT_EQ(arms->first, "(\"employees\", \"created_at\", \"id\") < (?, ?, ?)");
  EXPECT_EQ(arms->then, "\"employees\" IS NULL");
  EXPECT_TRUE(arms->then_params.empty());
  std::vector<storage::SqlValue> p;
  EXPECT_EQ(after_cursor(parse_sort("-employees", entity, sales).value(), at, p),
            "((\"employees\", \"created_at\", \"id\") < (?, ?, ?) OR \"employees\" IS NULL)");
  EXPECT_EQ(p.size(), 3u);
  // A cursor among the NULLs: the rest of them, then (ascending) every value.
  at[0] = storage::SqlValue{};
  arms = cursor_arms(parse_sort("employees", entity, sales).value(), at);
  ASSERT_TRUE(arms);
  EXPECT_EQ(arms->first, "\"employees\" IS NULL AND (\"created_at\", \"id\") > (?, ?)");
  ASSERT_EQ(arms->first_params.size(), 2u);
  EXPECT_EQ(std::get<std::string>(arms->first_params[0]), when);
  EXPECT_EQ(arms->then, "\"employees\" IS NOT NULL");
  arms = cursor_arms(parse_sort("-employees", entity, sales).value(), at);
  ASSERT_TRUE(arms);
  EXPECT_EQ(arms->first, "\"employees\" IS NULL AND (\"created_at\", \"id\") < (?, ?)");
  EXPECT_EQ(arms->then, "");
  // Mixed directions, or a later key that may be NULL: none.
  EXPECT_FALSE(cursor_arms(parse_sort("employees,-id", entity, sales).value(),
                           {std::int64_t{5}, std::int64_t{7}}));
  EXPECT_FALSE(cursor_arms(parse_sort("employees,name", entity, sales).value(),
                           {std::int64_t{5}, std::string("a"), std::int64_t{7}}));
}

}  // namespace
}  // namespace rapport::record
