// A list page's records written straight from their columns (RecordJson) give the same text as
// write_json/write_record (rapidjson), for every field kind, every value shape (NULL, escapes,
// Chinese, control characters), and a hidden field is never in the text.
#include "record/row_json.h"

#include <gtest/gtest.h>

#include "core/json.h"
#include "record/table.h"

namespace rapport::record {
namespace {

using schema::FieldType;
using storage::SqlValue;

const char* kEntity = R"({"name":"thing","plural":"things","title_field":"name","fields":[
  {"name":"name","type":"text"},
  {"name":"notes","type":"long_text"},
  {"name":"n","type":"integer"},
  {"name":"ratio","type":"decimal"},
  {"name":"price","type":"money"},
  {"name":"flag","type":"boolean"},
  {"name":"day","type":"date"},
  {"name":"at","type":"datetime"},
  {"name":"color","type":"enum","options":["red","blue"]},
  {"name":"colors","type":"multi_enum","options":["red","blue"]},
  {"name":"phones","type":"phone_list"},
  {"name":"emails","type":"email_list"},
  {"name":"addr","type":"address"},
  {"name":"owner","type":"reference","reference":"user"},
  {"name":"extra","type":"json"}]})";

// A distinct value per field (so that a hidden one can be looked for in the text), with the
// characters JSON must escape in every text.
SqlValue value_for(const schema::Field& f, size_t i) {
  const std::string tag = "v" + std::to_string(i) + "_";
  switch (f.type) {
    case FieldType::kInteger:
    case FieldType::kReference:
    case FieldType::kMoney:
      return static_cast<std::int64_t>(9000000000000 + i);
    case FieldType::kBoolean:
      return std::int64_t{1};
    case FieldType::kDecimal:
      return 1234.5625 + static_cast<double>(i);
    case FieldType::kMultiEnum:
    case FieldType::kPhoneList:
    case FieldType::kEmailList:
      return "[\"" + tag + "a\",\"b\\\"\"]";
    case FieldType::kAddress:
    case FieldType::kJson:
      return "{\"city\":\"" + tag + "北京\"}";
    default:
      return tag + "q\"b\\s/c\x01\x1f\b\f\n\r\t 上海 \xF0\x9F\x98\x80 end";
  }
}

// The row of `e` in select_list order: every field's value (or NULL when `nulls`), then
// deleted_at and merged_into.
std::vector<SqlValue> row_of(const schema::Entity& e, bool nulls, bool deleted) {
  std::vector<SqlValue> row;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    const auto& f = e.fields[i];
    row.push_back(nulls ? SqlValue{} : value_for(f, i));
    if (f.type == FieldType::kMoney) row.push_back(nulls ? SqlValue{} : SqlValue{"CNY\"x"});
  }
  row.push_back(deleted ? SqlValue{"2026-11-23T08:00:00.000Z"} : SqlValue{});
  row.push_back(deleted ? SqlValue{std::int64_t{42}} : SqlValue{});
  return row;
}

// What rapidjson's writer gives (write_record, as list pages were written before RecordJson).
std::string with_rapidjson(const schema::Entity& e, const std::vector<char>& shown,
                           const std::vector<SqlValue>& row) {
  json::Buffer buf;
  json::Writer w(buf);
  write_record(w, e, shown, row);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string with_record_json(const schema::Entity& e, const std::vector<char>& shown,
                             const std::vector<SqlValue>& row) {
  std::vector<storage::SqlView> view;
  for (const auto& v : row) view.push_back(storage::view_of(v));
  std::string out;
  RecordJson(e, shown).append(out, view);
  return out;
}

class RowJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto parsed = schema::parse_entity(kEntity, "test");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    e = std::move(parsed).value();
  }
  schema::Entity e;
};

TEST_F(RowJsonTest, EveryFieldKindIsWrittenAsRapidjsonWritesIt) {
  const std::vector<char> all(e.fields.size(), 1);
  for (bool nulls : {false, true})
    for (bool deleted : {false, true}) {
      const auto row = row_of(e, nulls, deleted);
      const std::string text = with_record_json(e, all, row);
      EXPECT_EQ(text, with_rapidjson(e, all, row)) << "nulls " << nulls << " deleted " << deleted;
      EXPECT_TRUE(json::parse(text).ok()) << text;
    }
}

TEST_F(RowJsonTest, AHiddenFieldOfEveryKindIsNeverWritten) {
  const auto row = row_of(e, false, false);
  for (size_t hidden = 0; hidden < e.fields.size(); ++hidden) {
    std::vector<char> shown(e.fields.size(), 1);
    shown[hidden] = 0;
    const std::string text = with_record_json(e, shown, row);
    EXPECT_EQ(text, with_rapidjson(e, shown, row)) << e.fields[hidden].name;
    auto doc = json::parse(text);
    ASSERT_TRUE(doc.ok()) << text;
    EXPECT_EQ(json::member(*doc, e.fields[hidden].name), nullptr) << e.fields[hidden].name;
    // Nor its value: every field's value is distinct ("vI_" or 9000000000000 + I).
    const auto& f = e.fields[hidden];
    const std::string value =
        (f.type == FieldType::kInteger || f.type == FieldType::kReference ||
         f.type == FieldType::kMoney)
            ? std::to_string(9000000000000 + hidden)
        : (f.type == FieldType::kDecimal) ? std::to_string(1234 + hidden) + ".5625"
        : (f.type == FieldType::kBoolean) ? std::string()
                                          : "v" + std::to_string(hidden) + "_";
    if (!value.empty()) {
      EXPECT_EQ(text.find(value), std::string::npos) << f.name << ": " << text;
    }
  }
  // Nothing shown: an empty object.
  EXPECT_EQ(with_record_json(e, std::vector<char>(e.fields.size(), 0), row), "{}");
}

TEST_F(RowJsonTest, StringsAreEscapedAsRapidjsonEscapesThem) {
  std::string every;
  for (int c = 1; c < 256; ++c) every.push_back(static_cast<char>(c));
  std::string ours;
  append_json_string(ours, every);
  json::Buffer buf;
  json::Writer w(buf);
  w.String(every.data(), static_cast<rapidjson::SizeType>(every.size()));
  EXPECT_EQ(ours, std::string(buf.GetString(), buf.GetSize()));
  // Each character that needs escaping at every position of a longer text (the text is
  // scanned eight bytes at a time).
  for (char special : {'"', '\\', '\x01', '\x1f', '\n'})
    for (size_t at = 0; at < 19; ++at) {
      std::string text(19, 'a');
      text[at] = special;
      text += "\xE4\xB8\x8A";  // 上
      std::string mine;
      append_json_string(mine, text);
      json::Buffer b;
      json::Writer rw(b);
      rw.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      EXPECT_EQ(mine, std::string(b.GetString(), b.GetSize())) << at;
    }
  std::string empty;
  append_json_string(empty, "");
  EXPECT_EQ(empty, "\"\"");
}

std::vector<storage::SqlView> view_of_row(const std::vector<SqlValue>& row) {
  std::vector<storage::SqlView> view;
  for (const auto& v : row) view.push_back(storage::view_of(v));
  return view;
}

// The cached text of a record (every field), copied with a page's shown fields, is what
// RecordJson writes from the row for those fields: every field hidden in turn, every other one,
// none, all; live, deleted and merged records, NULLs. A hidden field's text is never copied.
TEST_F(RowJsonTest, CachedTextWithTheShownFieldsIsWhatRecordJsonWrites) {
  const std::vector<char> all(e.fields.size(), 1);
  const RecordJson every(e, all);
  std::vector<std::vector<char>> patterns{all, std::vector<char>(e.fields.size(), 0)};
  for (size_t hidden = 0; hidden < e.fields.size(); ++hidden) {
    patterns.push_back(all);
    patterns.back()[hidden] = 0;
    std::vector<char> only(e.fields.size(), 0);
    only[hidden] = 1;
    patterns.push_back(only);
  }
  for (int parity : {0, 1}) {
    std::vector<char> alternate(e.fields.size());
    for (size_t i = 0; i < alternate.size(); ++i)
      alternate[i] = (i % 2) == static_cast<size_t>(parity);
    patterns.push_back(alternate);
  }
  for (bool nulls : {false, true})
    for (bool deleted : {false, true}) {
      const auto row = row_of(e, nulls, deleted);
      const auto view = view_of_row(row);
      const CachedRecord cached = every.whole(view, 7);
      EXPECT_EQ(cached.version, 7);
      EXPECT_EQ(cached.fields(), e.fields.size());
      for (const auto& shown : patterns) {
        std::string text;
        CachedRecordJson(shown).append(text, cached);
        EXPECT_EQ(text, with_record_json(e, shown, row))
            << "nulls " << nulls << " deleted " << deleted;
        if (nulls) continue;
        for (size_t i = 0; i < e.fields.size(); ++i)
          if (!shown[i] && e.fields[i].type != FieldType::kBoolean &&
              e.fields[i].type != FieldType::kDecimal && e.fields[i].type != FieldType::kInteger &&
              e.fields[i].type != FieldType::kReference && e.fields[i].type != FieldType::kMoney)
            EXPECT_EQ(text.find("v" + std::to_string(i) + "_"), std::string::npos)
                << e.fields[i].name << ": " << text;
      }
    }
}

std::shared_ptr<const CachedRecord> record_at(std::int64_t version, size_t fields, size_t size) {
  auto r = std::make_shared<CachedRecord>();
  r->version = version;
  r->text.assign(size, 'x');
  for (size_t i = 0; i < fields; ++i) r->start.push_back(static_cast<std::uint32_t>(i));
  r->start.push_back(static_cast<std::uint32_t>(size + 1));
  return r;
}

// The cache answers a record only at the version and field count it was written with, keeps a
// later version against an earlier one, tells entities apart, and stays within its bytes,
// the least recently used out first.
TEST(RowJsonCacheTest, ARecordIsFoundOnlyAtItsVersionAndTheCacheStaysWithinItsBytes) {
  constexpr auto L = RowJsonCache::Path::kList;
  RowJsonCache cache(std::size_t{16} << 20);
  ASSERT_TRUE(cache.enabled());
  const auto accounts = cache.slot("account"), contacts = cache.slot("contact");
  EXPECT_NE(accounts, contacts);
  EXPECT_EQ(cache.slot("account"), accounts);
  cache.put(accounts, 1, record_at(3, 5, 100), L);
  EXPECT_NE(cache.find(accounts, 1, 3, 5, L), nullptr);
  EXPECT_EQ(cache.find(accounts, 1, 4, 5, L), nullptr);  // changed since
  EXPECT_EQ(cache.find(accounts, 1, 2, 5, L), nullptr);
  EXPECT_EQ(cache.find(accounts, 1, 3, 6, L), nullptr);  // a field added since
  EXPECT_EQ(cache.find(contacts, 1, 3, 5, L), nullptr);  // another entity's record 1
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 4u);
  cache.put(accounts, 1, record_at(4, 5, 100), L);
  EXPECT_NE(cache.find(accounts, 1, 4, 5, L), nullptr);
  cache.put(accounts, 1, record_at(3, 5, 100), L);  // a reader of an older snapshot
  EXPECT_NE(cache.find(accounts, 1, 4, 5, L), nullptr);
  EXPECT_EQ(cache.find(accounts, 1, 3, 5, L), nullptr);

  // 1 MiB: far fewer than 4,000 records of 1 KiB fit; the newest stay, the oldest go.
  RowJsonCache small(std::size_t{1} << 20);
  const auto s = small.slot("account");
  for (std::int64_t id = 1; id <= 4000; ++id) {
    small.put(s, id, record_at(1, 5, 1024), L);
    ASSERT_LE(small.bytes(), std::size_t{1} << 20);
  }
  EXPECT_EQ(small.find(s, 1, 1, 5, L), nullptr);
  int kept = 0;
  for (std::int64_t id = 3901; id <= 4000; ++id) kept += small.find(s, id, 1, 5, L) != nullptr;
  EXPECT_GE(kept, 90);  // per shard, so not exactly the last ones

  RowJsonCache off(0);
  EXPECT_FALSE(off.enabled());
  off.put(off.slot("account"), 1, record_at(1, 5, 10), L);
  EXPECT_EQ(off.find(0, 1, 1, 5, L), nullptr);
  EXPECT_EQ(off.bytes(), 0u);
}

// Reads by id and list pages share the cache but not their fates (issue #5: list pages at 1M
// after reads by id). A run of reads by id of records never asked for again pushes out only
// their own records while list pages' records hold at most half the bytes, and it does not make
// list pages "mostly missed": each path has its own share of misses. A record a list page finds
// that a read by id put is a list page's record from then on. Either path alone fills it all.
TEST(RowJsonCacheTest, ReadsByIdNeverPushOutListPagesRecordsNorTheirHitShare) {
  constexpr auto L = RowJsonCache::Path::kList, R = RowJsonCache::Path::kRead;
  constexpr std::size_t kBytes = std::size_t{1} << 20;
  RowJsonCache cache(kBytes);
  const auto s = cache.slot("account");
  // A list page's 150 records of 1 KiB (about a seventh of the bytes), found again.
  for (std::int64_t id = 1; id <= 150; ++id) cache.put(s, id, record_at(1, 5, 1024), L);
  for (std::int64_t id = 1; id <= 150; ++id) ASSERT_NE(cache.find(s, id, 1, 5, L), nullptr);
  cache.count_page(s, L, 150, 0);
  const std::size_t listed = cache.list_bytes();
  EXPECT_EQ(listed, cache.bytes());
  // 20,000 reads by id of other records, each missed and then put: 20 times the bytes.
  for (std::int64_t id = 1001; id <= 21000; ++id) {
    ASSERT_EQ(cache.find(s, id, 1, 5, R), nullptr);
    cache.count_page(s, R, 0, 1);
    cache.put(s, id, record_at(1, 5, 1024), R);
    ASSERT_LE(cache.bytes(), kBytes);
  }
  EXPECT_TRUE(cache.mostly_missed(s, R));
  EXPECT_FALSE(cache.mostly_missed(s, L));
  EXPECT_EQ(cache.list_bytes(), listed);
  for (std::int64_t id = 1; id <= 150; ++id) EXPECT_NE(cache.find(s, id, 1, 5, L), nullptr) << id;
  EXPECT_GT(cache.bytes(), kBytes * 3 / 4);  // the reads' records fill the rest
  // A read by id finds a list page's record too, and the newest reads' records are there.
  EXPECT_NE(cache.find(s, 7, 1, 5, R), nullptr);
  int kept = 0;
  for (std::int64_t id = 20951; id <= 21000; ++id) kept += cache.find(s, id, 1, 5, R) != nullptr;
  EXPECT_GE(kept, 45);

  // A list page finding a record a read put keeps it as its own: more reads do not push it out.
  ASSERT_NE(cache.find(s, 21000, 1, 5, L), nullptr);
  for (std::int64_t id = 30001; id <= 32000; ++id) cache.put(s, id, record_at(1, 5, 1024), R);
  EXPECT_NE(cache.find(s, 21000, 1, 5, L), nullptr);
  EXPECT_EQ(cache.find(s, 20999, 1, 5, R), nullptr);

  // List pages' records beyond their half go first when reads by id need room; list pages alone
  // fill the cache.
  RowJsonCache lists(kBytes);
  for (std::int64_t id = 1; id <= 2000; ++id) lists.put(s, id, record_at(1, 5, 1024), L);
  EXPECT_GT(lists.list_bytes(), kBytes * 3 / 4);
  for (std::int64_t id = 5001; id <= 7000; ++id) lists.put(s, id, record_at(1, 5, 1024), R);
  EXPECT_LE(lists.list_bytes(), kBytes / RowJsonCache::kListShare);
  EXPECT_GT(lists.list_bytes(), kBytes / RowJsonCache::kListShare * 3 / 4);
  EXPECT_NE(lists.find(s, 2000, 1, 5, L), nullptr);  // the newest of them stay
  EXPECT_EQ(lists.find(s, 1, 1, 5, L), nullptr);
}

}  // namespace
}  // namespace rapport::record
