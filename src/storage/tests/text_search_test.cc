// The search index's terms and query keys (storage/text_search.h), shared by both backends.
#include "storage/text_search.h"
#include "storage/sqlite/term_codes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

namespace rapport::storage::detail {
namespace {

using Terms = std::vector<std::string>;

TEST(IndexTerms, WordsLowercasedReversedDigitWordsAndCjkBigrams) {
  EXPECT_EQ(index_terms("Acme GmbH, acme@x.org"), (Terms{"acme", "gmbh", "org", "x"}));
  EXPECT_EQ(index_terms("张三丰"), (Terms{"三丰", "丰", "张三"}));  // bytewise order
  EXPECT_EQ(index_terms("张"), (Terms{"张"}));
  // A word of >= 5 digits: itself and its reversed form (found by its start or its end), no
  // longer every suffix of >= 4 digits (R-SEARCH: ~3 term rows per phone number instead of ~11).
  EXPECT_EQ(index_terms("138123"), (Terms{"138123", "~321831"}));
  EXPECT_EQ(index_terms("+86 138-1234-5678 13812345678"),
            (Terms{"1234", "138", "13812345678", "5678", "86", "~87654321831"}));
  EXPECT_EQ(index_terms("1234"), (Terms{"1234"}));
  EXPECT_EQ(index_terms("a12345"), (Terms{"a12345"}));  // not all digits: the word only
  EXPECT_EQ(index_terms(std::string(60, '1') + "9"),
            (Terms{std::string(kMaxTermBytes, '1'), "~9" + std::string(kMaxTermBytes - 2, '1')}));
  EXPECT_EQ(index_terms("华为ltd"), (Terms{"ltd", "为", "华为"}));
  EXPECT_EQ(index_terms("Straße Zürich"), (Terms{"straße", "zürich"}));
  EXPECT_EQ(index_terms("!!! ··· 、"), Terms{});
  std::string longword(100, 'x');
  EXPECT_EQ(index_terms(longword), (Terms{std::string(kMaxTermBytes, 'x')}));
}

TEST(QueryKeys, PrefixesForWordsExactBigramsForCjk) {
  using K = std::vector<TermKey>;
  EXPECT_EQ(query_keys("ZS"), (K{{"zs", true}}));
  EXPECT_EQ(query_keys("张"), (K{{"张", true}}));
  EXPECT_EQ(query_keys("张三丰"), (K{{"张三", false}, {"三丰", false}}));
  EXPECT_EQ(query_keys("bruce@acme acme"), (K{{"bruce", true}, {"acme", true}}));
  EXPECT_EQ(query_keys("华为 ltd"), (K{{"华为", false}, {"ltd", true}}));
  // An all-digit key also finds a number by its end: the prefix of the reversed form.
  EXPECT_EQ(query_keys("5678"), (K{{"5678", true, "~8765"}}));
  EXPECT_EQ(query_keys("张三 138-5678"),
            (K{{"张三", false}, {"138", true, "~831"}, {"5678", true, "~8765"}}));
  EXPECT_EQ(query_keys("a5678"), (K{{"a5678", true}}));
  EXPECT_EQ(query_keys("\" * %"), K{});
  EXPECT_EQ(query_keys(""), K{});
}

TEST(PrefixEnd, IsTheNextCodePointAndValidUtf8) {
  EXPECT_EQ(prefix_end("zh"), "zi");
  EXPECT_EQ(prefix_end("a"), "b");
  // 张 = E5 BC A0: every term starting with it sorts below E5 BC A1.
  EXPECT_EQ(prefix_end("\xE5\xBC\xA0"), "\xE5\xBC\xA1");
  EXPECT_LT(std::string("张三"), prefix_end("张"));
  // 长 = U+957F (E9 95 BF): the next code point U+9580 (E9 96 80), not the invalid E9 95 C0.
  EXPECT_EQ(prefix_end("长"), "\xE9\x96\x80");
  EXPECT_LT(std::string("长沙"), prefix_end("长"));
  EXPECT_EQ(prefix_end("\x7F"), "\xC2\x80");                  // U+007F → U+0080
  EXPECT_EQ(prefix_end("x\xC3\xBF"), "x\xC4\x80");            // ÿ U+00FF → U+0100
  EXPECT_EQ(prefix_end("\xED\x9F\xBF"), "\xEE\x80\x80");      // U+D7FF → U+E000, past surrogates
  EXPECT_EQ(prefix_end("\xEF\xBF\xBF"), "\xF0\x90\x80\x80");  // U+FFFF → U+10000
  EXPECT_EQ(prefix_end("a\xF4\x8F\xBF\xBF"), "b");            // U+10FFFF has no successor
  EXPECT_EQ(prefix_end("\xBF"), "\xC0");                      // not UTF-8: the last byte
}

TEST(TermsSql, DriverIsTheMostSelectiveKeyAndParamsFollowTheText) {
  std::vector<SqlValue> params;
  std::string sql = terms_condition("account", "a 张三", "instr", params);
  // The exact bigram drives; the prefix is checked on the entry's signature, then on the
  // candidate's term list.
  EXPECT_EQ(sql,
            "\"id\" IN (SELECT d.id FROM \"account_terms\" d JOIN \"account_terms_of\" o ON o.id = "
            "d.id WHERE d.term = ? AND (d.sig & ?) = ? AND instr(o.terms, ?) > 0)");
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(std::get<std::string>(params[0]), "张三");
  EXPECT_EQ(std::get<std::int64_t>(params[1]), std::int64_t{1} << ('a' - 'a'));
  EXPECT_EQ(std::get<std::int64_t>(params[2]), std::int64_t{1} << ('a' - 'a'));
  EXPECT_EQ(std::get<std::string>(params[3]), "\na");
  params.clear();
  sql = terms_condition("account", "张三 ab", "strpos", params);
  EXPECT_EQ(std::get<std::string>(params[0]), "张三");
  EXPECT_EQ(std::get<std::string>(params[3]), "\nab");
  params.clear();
  sql = terms_condition("account", "abc", "strpos", params);
  EXPECT_EQ(sql,
            "\"id\" IN (SELECT d.id FROM \"account_terms\" d WHERE d.term >= ? AND d.term < ?)");
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(std::get<std::string>(params[1]), "abd");
  params.clear();
  EXPECT_EQ(terms_condition("bad name", "x", "instr", params), "1 = 0");
  EXPECT_EQ(terms_page("account", "x", -1, nullptr, 0, "instr", true, true, params), "");
  EXPECT_TRUE(params.empty());
}

// A window driven by one bigram checks the others in the index from the last to the first:
// a company name's first bigrams are its city, which nearly every entry of the driver shares,
// so the check stops at the first key after one lookup for most entries (R-SEARCH, issue #4).
TEST(TermsSql, ExactOtherKeysAreCheckedFromTheLast) {
  std::vector<SqlValue> params;
  const std::string sql =
      terms_page("account", "重庆海泰建", 1, nullptr, 50, "instr", true, true, params);
  ASSERT_EQ(params.size(), 7u) << sql;
  EXPECT_EQ(std::get<std::string>(params[2]), "泰建");
  EXPECT_EQ(std::get<std::string>(params[3]), "海泰");
  EXPECT_EQ(std::get<std::string>(params[4]), "重庆");
  EXPECT_EQ(std::get<std::string>(params[5]), "庆海") << "the driver's entries";
  EXPECT_EQ(std::get<std::int64_t>(params[6]), 50);
}

// The one other key of a page a number fragment of three or more digits ("zhou 114"): its
// entries counted up to one more than kSmallKeyEntries once per statement, and when they are no
// more, the entry's record looked up among the ids of those entries whose signature has every
// key's bits (zhou's); past the page's kSetAfterEntries-th entry the same up to
// kSmallNumberEntries; else its term list (R-SEARCH, issue #4). The parameters in the order of
// the text.
TEST(TermsSql, ARareNumberFragmentIsTestedOnItsEntriesIds) {
  std::vector<SqlValue> params;
  const std::string sql =
      terms_page("account", "zhou 114", 0, nullptr, 50, "instr", true, true, params);
  const std::string set =
      "THEN (CASE WHEN p.fts_id IN (SELECT d.id FROM \"account_terms\" d WHERE d.term >= ? AND "
      "d.term < ? AND (d.sig & ?) = ? UNION ALL SELECT d.id FROM \"account_terms\" d WHERE "
      "d.term >= ? AND d.term < ? AND (d.sig & ?) = ?) THEN 1 ELSE 0 END) WHEN ";
  // Then (a fragment of more entries) the record's number codes in memory (SQLite's
  // rapport_term_codes: 0 no, 1 maybe, 2 not known for the snapshot's last term write, read
  // once per statement), a maybe checked on its term list.
  const std::string last = "(SELECT n FROM _term_writes), (SELECT writer FROM _term_writes))";
  const std::string codes =
      "rapport_term_codes('account', p.fts_id, ?, ?, " + last + " = 0 THEN 0 WHEN " +
      "rapport_term_codes('account', p.fts_id, ?, ?, " + last +
      " = 1 THEN (CASE WHEN EXISTS (SELECT 1 FROM "
      "\"account_terms_of\" o WHERE o.id = p.fts_id AND (instr(o.terms, ?) > 0 OR instr(o.terms, "
      "?) > 0)) THEN 1 ELSE 0 END) WHEN ";
  EXPECT_NE(sql.find(") fts_n) <= ? " + set + codes +
                     "(p.fts_term, -p.fts_id) > (SELECT fts_k.fts_term, "
                     "-fts_k.fts_id FROM (SELECT d.term AS fts_term, d.id AS fts_id, d.sig AS "
                     "fts_sig FROM \"account_terms\" d WHERE d.term >= ? AND d.term < ? ORDER BY "
                     "d.term, d.id DESC LIMIT 1 OFFSET ?) fts_k) AND (SELECT count(*)"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find(") fts_n) <= ? " + set + "EXISTS (SELECT 1 FROM \"account_terms_of\" o"),
            std::string::npos)
      << sql;
  const std::int64_t cap = kSmallKeyEntries + 1, more = kSmallNumberEntries + 1;
  const std::int64_t zhou = keys_signature(query_keys("zhou"), 1);
  ASSERT_NE(zhou, 0);
  EXPECT_EQ(params, (std::vector<SqlValue>{std::int64_t{0},
                                           std::int64_t{0},
                                           "114",
                                           "115",
                                           cap,
                                           "~411",
                                           "~412",
                                           cap,
                                           cap,
                                           std::int64_t{kSmallKeyEntries},
                                           "114",
                                           "115",
                                           zhou,
                                           zhou,
                                           "~411",
                                           "~412",
                                           zhou,
                                           zhou,
                                           std::int64_t{114},
                                           std::int64_t{1411},
                                           std::int64_t{114},
                                           std::int64_t{1411},
                                           "\n114",
                                           "\n~411",
                                           "zhou",
                                           "zhov",
                                           std::int64_t{kSetAfterEntries - 1},
                                           "114",
                                           "115",
                                           more,
                                           "~411",
                                           "~412",
                                           more,
                                           more,
                                           std::int64_t{kSmallNumberEntries},
                                           "114",
                                           "115",
                                           zhou,
                                           zhou,
                                           "~411",
                                           "~412",
                                           zhou,
                                           zhou,
                                           "\n114",
                                           "\n~411",
                                           "zhou",
                                           "zhov",
                                           std::int64_t{50}}));
  // Two digits, or a third key, or a backend without these lookups (PostgreSQL): the term list
  // alone, as before.
  for (const char* q : {"zhou 11", "zhou wei 114"}) {
    params.clear();
    const std::string other = terms_page("account", q, 0, nullptr, 50, "instr", true, true, params);
    EXPECT_EQ(other.find("fts_n"), std::string::npos) << q;
    EXPECT_EQ(other.find("rapport_term_codes"), std::string::npos) << q;
  }
  params.clear();
  const std::string pg =
      terms_page("account", "zhou 114", 0, nullptr, 50, "strpos", false, false, params);
  EXPECT_EQ(pg.find("fts_n"), std::string::npos);
  EXPECT_EQ(pg.find("rapport_term_codes"), std::string::npos);
  params.clear();
  EXPECT_EQ(
      terms_page("account", "王 芳", 0, nullptr, 50, "strpos", false, false, params).find("fts_c"),
      std::string::npos);
}

// The one other key of a page a prefix that is not a number ("王 芳"): its distinct terms found
// by a chain of min(term) lookups up to one more than kFewKeyTerms; when they are no more, the
// entry's record looked up in the index under each; else, past the page's kSetAfterEntries-th
// entry, among the ids of its entries with every key's bits when it has at most
// kSmallKeyEntries; else the term list (R-SEARCH, issue #4).
TEST(TermsSql, AnOtherKeyOfFewTermsIsLookedUpInTheIndex) {
  std::vector<SqlValue> params;
  const std::string sql =
      terms_page("account", "王 芳", 0, nullptr, 50, "instr", true, true, params);
  // First the record's first-character codes in memory (SQLite's rapport_term_codes: 0 no).
  EXPECT_NE(sql.find("THEN 0 WHEN rapport_term_codes('account', p.fts_id, ?, -1, (SELECT n FROM "
                     "_term_writes), (SELECT writer FROM _term_writes)) = 0 THEN 0 WHEN "
                     "(SELECT count(*) FROM (SELECT fts_v.term"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find(") fts_c) <= ? THEN (CASE WHEN EXISTS (SELECT 1 FROM \"account_terms\" e "
                     "WHERE e.term IN (SELECT fts_v.term FROM (WITH RECURSIVE fts_v(term, n)"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find("fts_k) AND (SELECT count(*) FROM (SELECT 1 FROM \"account_terms\" d WHERE "
                     "d.term >= ? AND d.term < ? LIMIT ?) fts_n) <= ? THEN (CASE WHEN p.fts_id IN "
                     "(SELECT d.id FROM \"account_terms\" d WHERE d.term >= ? AND d.term < ? AND "
                     "(d.sig & ?) = ?) THEN 1 ELSE 0 END) WHEN EXISTS (SELECT 1 FROM "
                     "\"account_terms_of\" o"),
            std::string::npos)
      << sql;
  const std::int64_t few = kFewKeyTerms;
  const std::int64_t sig = keys_signature(query_keys("王 芳"), 0);
  const std::int64_t both = keys_signature(query_keys("王 芳"), 2);
  EXPECT_EQ(params, (std::vector<SqlValue>{sig,
                                           sig,
                                           std::int64_t{sqlite::TermCodes::char_code("芳")},
                                           "芳",
                                           "芴",
                                           "芴",
                                           few,
                                           few,
                                           "芳",
                                           "芴",
                                           "芴",
                                           few,
                                           "王",
                                           "玌",
                                           std::int64_t{kSetAfterEntries - 1},
                                           "芳",
                                           "芴",
                                           std::int64_t{kSmallKeyEntries + 1},
                                           std::int64_t{kSmallKeyEntries},
                                           "芳",
                                           "芴",
                                           both,
                                           both,
                                           "\n芳",
                                           "王",
                                           "玌",
                                           std::int64_t{50}}));
}

// A digit key is the union of two ranges, its own and its reversed form's: an OR where the
// statement reads every entry (the driver of terms_condition, the other keys on the term list),
// one limited range per form where it stops at a count or a window (key counts, the driver's
// page), so that neither reads past a bound. Other keys' SQL is unchanged (see above).
TEST(TermsSql, ADigitKeyIsItsRangeOrItsReversedRange) {
  std::vector<SqlValue> params;
  std::string sql = terms_condition("account", "5678", "instr", params);
  EXPECT_EQ(
      sql,
      "\"id\" IN (SELECT d.id FROM \"account_terms\" d WHERE ((d.term >= ? AND d.term < ?) OR "
      "(d.term >= ? AND d.term < ?)))");
  EXPECT_EQ(params, (std::vector<SqlValue>{"5678", "5679", "~8765", "~8766"}));
  params.clear();
  // 张三 drives; the digit key is on the term list in either form, and demands no signature bit.
  sql = terms_condition("account", "张三 5678", "instr", params);
  EXPECT_EQ(sql,
            "\"id\" IN (SELECT d.id FROM \"account_terms\" d JOIN \"account_terms_of\" o ON o.id = "
            "d.id WHERE d.term = ? AND (d.sig & ?) = ? AND (instr(o.terms, ?) > 0 OR "
            "instr(o.terms, ?) > 0))");
  EXPECT_EQ(params,
            (std::vector<SqlValue>{"张三", std::int64_t{0}, std::int64_t{0}, "\n5678", "\n~8765"}));
  params.clear();
  sql = terms_key_counts("account", "5678", 50, params);
  EXPECT_EQ(sql,
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM (SELECT 1 FROM \"account_terms\" d WHERE "
            "d.term >= ? AND d.term < ? LIMIT ?) fts_r0 UNION ALL SELECT 1 FROM (SELECT 1 FROM "
            "\"account_terms\" d WHERE d.term >= ? AND d.term < ? LIMIT ?) fts_r1 LIMIT ?) c0)");
  EXPECT_EQ(params, (std::vector<SqlValue>{"5678", "5679", std::int64_t{50}, "~8765", "~8766",
                                           std::int64_t{50}, std::int64_t{50}}));
  params.clear();
  // The first window: each form's range in index order, limited (SQLite runs the parts in turn).
  sql = terms_window_end("account", "5678", -1, nullptr, 10, true, params);
  EXPECT_EQ(sql,
            "SELECT e.fts_term, e.fts_id FROM (SELECT * FROM (SELECT d.term AS fts_term, d.id AS "
            "fts_id, d.sig AS fts_sig FROM \"account_terms\" d WHERE d.term >= ? AND d.term < ? "
            "ORDER BY d.term, d.id DESC LIMIT ?) fts_a UNION ALL SELECT * FROM (SELECT d.term AS "
            "fts_term, d.id AS fts_id, d.sig AS fts_sig FROM \"account_terms\" d WHERE d.term >= ? "
            "AND d.term < ? ORDER BY d.term, d.id DESC LIMIT ?) fts_b LIMIT 1 OFFSET ?) e");
  EXPECT_EQ(params, (std::vector<SqlValue>{"5678", "5679", std::int64_t{10}, "~8765", "~8766",
                                           std::int64_t{10}, std::int64_t{9}}));
  // After a position in the first form: the rest of its term, the rest of the first range,
  // all of the second.
  params.clear();
  const FtsPosition in_first{"56781", 7};
  sql = terms_page("account", "5678", -1, &in_first, 10, "instr", true, true, params);
  EXPECT_NE(sql.find("fts_c"), std::string::npos) << sql;
  EXPECT_EQ(params, (std::vector<SqlValue>{"56781", std::int64_t{7}, std::int64_t{10}, "56781",
                                           "5679", std::int64_t{10}, "~8765", "~8766",
                                           std::int64_t{10}, std::int64_t{10}}));
  // After a position in the reversed form: the first range is behind it.
  params.clear();
  const FtsPosition in_second{"~87651", 7};
  sql = terms_page("account", "5678", -1, &in_second, 10, "strpos", false, false, params);
  EXPECT_EQ(sql.find("fts_c"), std::string::npos) << sql;
  EXPECT_NE(sql.find("ORDER BY fts_term, fts_id DESC LIMIT ?"), std::string::npos) << sql;
  EXPECT_EQ(params, (std::vector<SqlValue>{"~87651", "~87651", std::int64_t{7}, std::int64_t{10},
                                           "~87651", "~8766", std::int64_t{10}, std::int64_t{10}}));
  // Scoped: the first entry of the form the record has.
  params.clear();
  sql =
      terms_scoped("account", "5678", "?", std::vector<SqlValue>{std::int64_t{3}}, "instr", params);
  EXPECT_NE(sql.find("coalesce(nullif(instr(o.terms, ?), 0), instr(o.terms, ?))"),
            std::string::npos)
      << sql;
  EXPECT_EQ(params, (std::vector<SqlValue>{"\n5678", "\n~8765", "\n5678", "\n~8765", "\n",
                                           std::int64_t{3}, "\n5678", "\n~8765"}));
}

TEST(TermSignature, HasTheBitsOfEveryPrefixOfEveryTerm) {
  // A record's signature has every bit of any key that is a prefix of one of its terms (or the
  // term itself), so that the signature test never drops a match.
  for (const char* body : {"Zhang Wei 张伟 zw 13812345678", "Acme Shanghai Trading acme.example",
                           "北京远丰纺织集团有限公司 beijing yuanfeng", "Émile Zola 2024 x"}) {
    const auto terms = index_terms(body);
    const std::int64_t sig = term_signature(terms);
    EXPECT_GE(sig, 0) << body;  // bit 63 unused: the same number on both backends
    for (const auto& t : terms) {
      if (t.starts_with(kReversedMarker)) continue;  // no key has the marker: query_keys' alt
      for (std::size_t n = 1; n <= t.size(); ++n) {
        if (n < t.size() && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) continue;
        const TermKey k{t.substr(0, n), n < t.size()};
        const std::int64_t need = keys_signature(std::vector<TermKey>{k}, 1);
        EXPECT_EQ(sig & need, need) << body << " key " << k.term;
      }
    }
  }
}

TEST(TermSignature, RulesOutARecordWithoutAWordOfThatLetter) {
  const std::int64_t sig = term_signature(index_terms("Li Na 李娜 lina ln"));
  const auto has = [&](std::string_view q) {
    const auto keys = query_keys(q);
    const std::int64_t need = keys_signature(keys, keys.size());
    return (sig & need) == need;
  };
  EXPECT_TRUE(has("li n"));
  EXPECT_TRUE(has("na"));
  EXPECT_FALSE(has("li w"));  // no word starts with w: exact, never a false positive
  // A digit key may match a number's end (its reversed term): no bit rules it out (see
  // ADigitKeyDemandsNoBit).
  EXPECT_TRUE(has("li 7"));
  // The first key's bits are left out when it is the one skipped (it drives the lookup).
  const auto keys = query_keys("w li");
  const std::int64_t need = keys_signature(keys, 0);
  EXPECT_EQ(sig & need, need);
}

// A digit key may find a record by its reversed form alone, which has none of the key's digit
// bits: it demands no bit, and the reversed terms set none (they would only blur the hashed
// bits other keys test).
TEST(TermSignature, ADigitKeyDemandsNoBit) {
  EXPECT_EQ(keys_signature(query_keys("5678"), 1), 0);
  EXPECT_EQ(keys_signature(query_keys("li 5678"), 2), keys_signature(query_keys("li"), 1));
  EXPECT_EQ(term_signature(index_terms("13812345678")), std::int64_t{1} << (26 + 1));
  const std::int64_t sig = term_signature(index_terms("Li Na 13812345678"));
  const auto keys = query_keys("li 5678");
  const std::int64_t need = keys_signature(keys, keys.size());
  EXPECT_EQ(sig & need, need);
}

TEST(FtsTextMatches, EveryKeyAsTheIndexWouldFindIt) {
  const std::string body = "Zhang Wei 张伟 zhangwei zw 138-1234-5678";
  EXPECT_TRUE(fts_text_matches(body, "zhang w"));
  EXPECT_TRUE(fts_text_matches(body, "张伟"));
  EXPECT_TRUE(fts_text_matches(body, "伟"));
  EXPECT_TRUE(fts_text_matches(body, "5678"));
  // A number by its start or by its end, not by a fragment from its middle.
  EXPECT_TRUE(fts_text_matches("13812345678", "138123"));
  EXPECT_TRUE(fts_text_matches("13812345678", "5678"));
  EXPECT_TRUE(fts_text_matches("13812345678", "12345678"));
  EXPECT_FALSE(fts_text_matches("13812345678", "1234"));
  EXPECT_FALSE(fts_text_matches("13812345678", "2345"));
  EXPECT_FALSE(fts_text_matches(body, "zhang x"));
  EXPECT_FALSE(fts_text_matches(body, "伟张"));
  EXPECT_FALSE(fts_text_matches(body, "hang"));  // a prefix of a word, not any substring
  EXPECT_FALSE(fts_text_matches(body, "!!"));    // nothing indexable matches nothing
  EXPECT_FALSE(fts_text_matches("", "zhang"));
}

// A transaction that only records the rows put_terms binds to its INSERTs (values per table).
class RecordingTx final : public Tx {
 public:
  struct Statement {
    std::string sql;
    std::vector<SqlValue> params;
  };
  std::vector<Statement> statements;
  Result<Rows> query(std::string_view, std::span<const SqlValue>) override { return Rows{}; }
  Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) override {
    statements.push_back({std::string(sql), {params.begin(), params.end()}});
    return std::int64_t{0};
  }
  Status commit() override { return {}; }
  Status fts_put(std::string_view, std::int64_t, std::string_view, const SqlValue&) override {
    return {};
  }
  Status fts_delete(std::string_view, std::int64_t) override { return {}; }
  Status fts_clear(std::string_view) override { return {}; }
  Result<std::optional<std::vector<std::string>>> table_columns(std::string_view) override {
    return std::optional<std::vector<std::string>>();
  }
  Result<std::vector<std::int64_t>> fts_search(std::string_view, std::string_view, int) override {
    return std::vector<std::int64_t>{};
  }
  Result<std::vector<std::int64_t>> fts_search_words(std::string_view, std::string_view,
                                                     int) override {
    return std::vector<std::int64_t>{};
  }
  // The term rows (term, id, sig) bound to the term table's INSERTs, in order, and the term
  // lists (id → terms) bound to the term lists' INSERTs.
  std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> term_rows() const {
    std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> out;
    for (const auto& s : statements) {
      if (s.sql.find("\"thing_terms\" (") == std::string::npos) continue;
      for (std::size_t i = 0; i + 3 < s.params.size(); i += 4)
        out.emplace_back(std::get<std::string>(s.params[i]),
                         std::get<std::int64_t>(s.params[i + 1]),
                         std::get<std::int64_t>(s.params[i + 3]));
    }
    return out;
  }
  std::vector<std::pair<std::int64_t, std::string>> lists() const {
    std::vector<std::pair<std::int64_t, std::string>> out;
    for (const auto& s : statements) {
      if (s.sql.find("\"thing_terms_of\"") == std::string::npos) continue;
      for (std::size_t i = 0; i + 2 < s.params.size(); i += 3)
        out.emplace_back(std::get<std::int64_t>(s.params[i]),
                         std::get<std::string>(s.params[i + 2]));
    }
    return out;
  }
};

std::vector<Tx::FtsRow> some_records(int n) {
  std::vector<Tx::FtsRow> rows;
  for (int i = 0; i < n; ++i)
    rows.push_back({1000 + i, "Record " + std::to_string(i) + " 北京 shop" + std::to_string(i * 7),
                    std::int64_t{i}});
  return rows;
}

// Each term row is bound once, in key order: a statement is not padded by repeating its last
// row (each repeat cost an INSERT OR IGNORE's B-tree seek on the writer at COMMIT), whatever the
// number of rows (here 3 records: 20-odd rows, below any power of two's statement but 1).
TEST(PutTerms, BindsEveryTermRowOnceInKeyOrderWithoutPadding) {
  for (int n : {1, 3, 25, 40}) {
    const auto rows = some_records(n);
    RecordingTx tx;
    ASSERT_TRUE(put_terms("thing", rows, /*fresh=*/true, "INSERT OR IGNORE INTO", "", tx).ok());
    std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> want;
    for (const auto& r : rows) {
      const auto terms = index_terms(r.text);
      for (const auto& t : terms) want.emplace_back(t, r.id, term_signature(terms));
    }
    std::sort(want.begin(), want.end());
    EXPECT_EQ(tx.term_rows(), want) << n << " records";
    const auto lists = tx.lists();
    ASSERT_EQ(lists.size(), rows.size()) << n << " records: one term list each, none repeated";
    for (std::size_t k = 0; k < rows.size(); ++k) EXPECT_EQ(lists[k].first, rows[k].id);
  }
}

// A create works its record's terms out before it waits for the writer (Tx::FtsRow::terms):
// the same rows and lists as put_terms works out from the text itself.
TEST(PutTerms, TermsWorkedOutAheadAreTheSameRows) {
  auto rows = some_records(5);
  RecordingTx from_text;
  ASSERT_TRUE(put_terms("thing", rows, true, "INSERT OR IGNORE INTO", "", from_text).ok());
  for (auto& r : rows) r.terms = fts_terms_of(r.text);
  RecordingTx ahead;
  ASSERT_TRUE(put_terms("thing", rows, true, "INSERT OR IGNORE INTO", "", ahead).ok());
  EXPECT_EQ(ahead.term_rows(), from_text.term_rows());
  EXPECT_EQ(ahead.lists(), from_text.lists());
  EXPECT_EQ(fts_terms_of("Acme GmbH")->list, "\nacme\ngmbh\n");
  EXPECT_EQ(fts_terms_of("Acme GmbH")->terms, (Terms{"acme", "gmbh"}));
  // The writer binds the terms it is given (they must be the text's: the caller's promise).
  rows.resize(1);
  rows[0].terms = fts_terms_of("zebra");
  RecordingTx given;
  ASSERT_TRUE(put_terms("thing", rows, true, "INSERT OR IGNORE INTO", "", given).ok());
  ASSERT_EQ(given.term_rows().size(), 1U);
  EXPECT_EQ(std::get<0>(given.term_rows()[0]), "zebra");
}

TEST(ValidIdentifier, LeavesRoomForTheTermIndexName) {
  EXPECT_TRUE(valid_identifier(std::string(54, 'a')));
  EXPECT_FALSE(valid_identifier(std::string(55, 'a')));
  EXPECT_EQ(*fts_table("account"), "\"account_terms\"");
}

}  // namespace
}  // namespace rapport::storage::detail
