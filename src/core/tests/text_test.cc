// Text normalisation for search: folding, pinyin, legal suffixes.
#include "core/text.h"

#include <gtest/gtest.h>

namespace rapport::text {
namespace {

TEST(Text, FoldAppliesNfkcAndCaseFolding) {
  EXPECT_EQ(fold("ＡＢＣ１２３"), "abc123");  // full-width letters and digits
  EXPECT_EQ(fold("Straße"), "strasse");
  EXPECT_EQ(fold("张三"), "张三");
  EXPECT_EQ(fold("（集团）"), "(集团)");
}

TEST(Text, FoldSpacedCollapsesWhitespace) {
  EXPECT_EQ(fold_spaced("  ＡＣＭＥ\u3000 Ltd\t"), "acme ltd");  // full-width, ideographic space
  EXPECT_EQ(fold_spaced("Acme\u00a0\u00a0Ltd"), "acme ltd");     // no-break spaces
  EXPECT_EQ(fold_spaced("北京  华为"), "北京 华为");
  EXPECT_EQ(fold_spaced(" \u3000 "), "");
}

TEST(Text, HasHan) {
  EXPECT_TRUE(has_han("张三"));
  EXPECT_TRUE(has_han("Acme 北京"));
  EXPECT_FALSE(has_han("Acme"));
  EXPECT_FALSE(has_han(""));
}

TEST(Text, PinyinFullAndInitials) {
  Pinyin p = pinyin("张三");
  EXPECT_EQ(p.full, "zhangsan");
  EXPECT_EQ(p.initials, "zs");
  p = pinyin("北京");
  EXPECT_EQ(p.full, "beijing");
  EXPECT_EQ(p.initials, "bj");
}

TEST(Text, PinyinLeavesOtherCharactersOutAndSplitsRuns) {
  Pinyin p = pinyin("张三、李四 (Sales)");
  EXPECT_EQ(p.full, "zhangsan lisi");
  EXPECT_EQ(p.initials, "zs ls");
  EXPECT_EQ(pinyin("Acme").full, "");
}

TEST(Text, PinyinOfWordsThatTheCharacterTableReadsWrongly) {
  EXPECT_EQ(pinyin("中国工商银行").full, "zhongguogongshangyinhang");
  EXPECT_EQ(pinyin("重庆").full, "chongqing");
  EXPECT_EQ(pinyin("厦门航空").full, "xiamenhangkong");
  EXPECT_EQ(pinyin("长城汽车").full, "changchengqiche");
  EXPECT_EQ(pinyin("董事长").full, "dongshizhang");
}

TEST(Text, SearchExtrasAddTheSurnameReading) {
  std::string x = search_extras("曾国藩", true);
  EXPECT_NE(x.find("cengguofan"), std::string::npos) << x;
  EXPECT_NE(x.find("zengguofan"), std::string::npos) << x;
  EXPECT_NE(x.find("zgf"), std::string::npos) << x;
  EXPECT_EQ(search_extras("曾国藩", false).find("zengguofan"), std::string::npos);
}

TEST(Text, StripLegalSuffixChinese) {
  EXPECT_EQ(strip_legal_suffix("华为技术有限公司"), "华为技术");
  EXPECT_EQ(strip_legal_suffix("中国平安保险(集团)股份有限公司"), "中国平安保险");
  EXPECT_EQ(strip_legal_suffix("海尔集团有限责任公司"), "海尔");
  EXPECT_EQ(strip_legal_suffix("阿里巴巴集团"), "阿里巴巴");
  EXPECT_EQ(strip_legal_suffix("联想（北京）有限公司"), "联想(北京)");
}

TEST(Text, StripLegalSuffixLatin) {
  EXPECT_EQ(strip_legal_suffix("Acme Co., Ltd."), "acme");
  EXPECT_EQ(strip_legal_suffix("ACME Inc"), "acme");
  EXPECT_EQ(strip_legal_suffix("Müller GmbH"), "müller");
  EXPECT_EQ(strip_legal_suffix("Globex Corp."), "globex");
  EXPECT_EQ(strip_legal_suffix("ＡＣＭＥ　Ｌｔｄ"), "acme");  // full-width, ideographic space
}

TEST(Text, StripLegalSuffixKeepsWordsThatOnlyEndLikeASuffix) {
  EXPECT_EQ(strip_legal_suffix("Visa"), "visa");  // not "vi" + "sa"
  EXPECT_EQ(strip_legal_suffix("Costco"), "costco");
  EXPECT_EQ(strip_legal_suffix("有限公司"), "有限公司");  // nothing but a suffix: kept
  EXPECT_EQ(strip_legal_suffix("Ltd"), "ltd");
}

TEST(Text, SearchExtrasForAChineseName) {
  std::string x = search_extras("张三", true);
  EXPECT_NE(x.find("zhangsan"), std::string::npos) << x;
  EXPECT_NE(x.find("zs"), std::string::npos) << x;
}

TEST(Text, SearchExtrasForACompanyName) {
  std::string x = search_extras("北京华为技术有限公司", true);
  EXPECT_NE(x.find("beijinghuaweijishuyouxiangongsi"), std::string::npos) << x;
  EXPECT_NE(x.find("bjhwjsyxgs"), std::string::npos) << x;
  // Full-width Latin becomes searchable as plain ASCII.
  x = search_extras("ＡＣＭＥ Ｌｔｄ", true);
  EXPECT_NE(x.find("acme ltd"), std::string::npos) << x;
}

TEST(Text, SearchExtrasNameFromEachLaterSyllable) {
  // Word-prefix search then finds a company by the pinyin of its brand or trade.
  std::string x = search_extras("北京华为技术有限公司", true);
  EXPECT_NE(x.find("\njingh"), std::string::npos) << x;
  EXPECT_NE(x.find(" huaweijishu "), std::string::npos) << x;
  EXPECT_NE(x.find(" jishu"), std::string::npos) << x;
  EXPECT_EQ(x.find("youxian"), x.find("beijinghuaweijishuyouxiangongsi") + 18)
      << "not past the suffix";
  EXPECT_EQ(search_extras("华为技术", false).find("jishu "), std::string::npos) << "names only";
}

TEST(Text, SearchExtrasEmptyForPlainAscii) {
  EXPECT_EQ(search_extras("Acme", true), "");
  EXPECT_EQ(search_extras("Acme Ltd", true), "");  // "acme" is already a substring
}

// A number typed in groups is searched as its digits joined; a text's grouped numbers are added
// to its body joined, so that both meet in one index term.
TEST(Text, GroupedNumbersAreJoinedInQueriesAndBodies) {
  EXPECT_EQ(search_query("138 1234 5678"), "13812345678");
  EXPECT_EQ(search_query("(010) 6253-1234"), "01062531234");
  EXPECT_EQ(search_query("+86 138.1234/5678 "), "8613812345678");
  EXPECT_EQ(search_query("13812345678"), "13812345678");    // one group: as it is
  EXPECT_EQ(search_query("138 1234 abc"), "138 1234 abc");  // not a number alone: words
  EXPECT_EQ(search_query("张三 5678"), "张三 5678");
  EXPECT_EQ(grouped_numbers("Tel 010-6253 1234, fax 6253 1235"), "01062531234 62531235 ");
  EXPECT_EQ(grouped_numbers("400 820 8820"), "4008208820 ");
  EXPECT_EQ(grouped_numbers("Room 1203, Building 5"), "");  // groups parted by a comma
  EXPECT_EQ(grouped_numbers("13812345678"), "");            // one group: the word is enough
  EXPECT_EQ(grouped_numbers(""), "");
  EXPECT_NE(search_extras("Hotline 400 820 8820", true).find("4008208820 "), std::string::npos);
}

TEST(Text, SearchQueryFoldsAndStrips) {
  EXPECT_EQ(search_query("ACME Ltd"), "acme");
  EXPECT_EQ(search_query("华为技术有限公司"), "华为技术");
  EXPECT_EQ(search_query("ＺＳ"), "zs");
  EXPECT_EQ(search_query("zhangsan"), "zhangsan");
}

}  // namespace
}  // namespace rapport::text
