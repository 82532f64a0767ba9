// Text normalisation for search and matching, over ICU: NFKC with case folding, pinyin of Han
// characters (full and initials) and legal-suffix stripping of company names. Pure functions;
// ICU transliterators are built once per thread (they take milliseconds to create).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rapport::text {

// NFKC + Unicode case folding: "ＡＢＣ" → "abc", "Straße" → "strasse". Invalid UTF-8 is replaced.
std::string fold(std::string_view s);

// fold(s) with each run of whitespace (after folding, which makes the ideographic and the
// no-break spaces plain ones) written as one space, and none at either end: "  ＡＣＭＥ　 Ltd"
// → "acme ltd". Two names written differently compare equal by it.
std::string fold_spaced(std::string_view s);

// Whether the text has at least one Han (Chinese) character.
bool has_han(std::string_view s);

struct Pinyin {
  std::string full;      // toneless syllables without spaces per run of Han characters: "zhangsan"
  std::string initials;  // first letters of the syllables: "zs"
  std::vector<std::size_t> starts;  // offset in `full` of each syllable: {0, 5}
};
// Pinyin of the Han characters of `s`; other characters are left out. Runs of Han characters
// separated by anything else give space-separated words ("张三、李四" → "zhangsan lisi").
Pinyin pinyin(std::string_view s);

// The folded name without trailing legal-form suffixes (有限公司, 股份有限公司, 有限责任公司, 集团,
// 公司, Ltd, Inc, GmbH, Co., Corp, LLC, …), repeatedly: "Acme Co., Ltd." → "acme",
// "华为技术有限公司" → "华为技术". A name that is nothing but a suffix is returned folded,
// unstripped.
std::string strip_legal_suffix(std::string_view name);

// Extra text for a record's full-text body, so that searches by folded text, pinyin, initials
// or the name without its legal suffix find it: the folded form when it differs from `s`, the
// pinyin and initials when `s` has Han characters, and for names (`is_name`) the stripped name
// and its pinyin, also from each later syllable on ("beijinghuawei" and "huawei", "wei"), so
// that a word prefix search finds a name by the pinyin of any of its parts. Lines separated by
// '\n'; empty when there is nothing to add.
std::string search_extras(std::string_view s, bool is_name);

// A search query as the full-text index should see it: a number typed in groups ("138 1234 5678",
// "(010) 6253-1234": only digits and number punctuation — spaces, - . / ( ) + — with two or more
// groups of digits) as its digits joined ("13812345678"), so that it is found by its start or
// its end (search_extras adds the joined form of such numbers inside a text to its body);
// anything else without a legal suffix when something remains ("ACME Ltd" → "acme").
std::string search_query(std::string_view q);

// The digits of each number written in groups inside `s` (two or more runs of digits parted
// only by number punctuation), joined, each followed by a space: "Tel 010-6253 1234, fax
// 6253 1235" → "01062531234 62531235 ". Empty when there is none.
std::string grouped_numbers(std::string_view s);

}  // namespace rapport::text
