// Text normalisation over ICU (normalizer2, transliterator, uscript).
#include "core/text.h"

#include <unicode/normalizer2.h>
#include <unicode/translit.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace rapport::text {

namespace {

std::string to_utf8(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

bool is_han(UChar32 c) {
  UErrorCode status = U_ZERO_ERROR;
  return uscript_getScript(c, &status) == USCRIPT_HAN && U_SUCCESS(status);
}

// "Han-Latin" gives toned syllables ("zhāng"); "Latin-ASCII" drops the tones. Instances are not
// thread-safe, so each thread has its own — a clone of one built once per process: building one
// parses the rules under ICU's registry lock, which took the first requests of a server with
// many workers seconds, while a clone shares the frozen rule data.
icu::Transliterator* han_latin() {
  static const std::unique_ptr<icu::Transliterator> prototype = [] {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::Transliterator> tr(
        icu::Transliterator::createInstance("Han-Latin; Latin-ASCII", UTRANS_FORWARD, status));
    return U_SUCCESS(status) ? std::move(tr) : nullptr;
  }();
  thread_local std::unique_ptr<icu::Transliterator> t(prototype ? prototype->clone() : nullptr);
  return t.get();
}

// Toneless syllable of one Han character, cached per thread: running the transliterator over a
// whole name costs ~30 µs, a cache hit well under one (import speed depends on it).
const std::string& syllable(UChar32 c) {
  thread_local std::unordered_map<UChar32, std::string> cache;
  auto it = cache.find(c);
  if (it != cache.end()) return it->second;
  std::string out;
  if (icu::Transliterator* t = han_latin()) {
    icu::UnicodeString u(c);
    t->transliterate(u);
    for (char ch : to_utf8(u))
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        out += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  }
  return cache.emplace(c, std::move(out)).first->second;
}

// Readings that ICU's per-character table gets wrong in names people search for (it has
// 银行 "yinxing", 厦门 "shamen"). Words first; 长 is read "chang" (长城, 长沙, 长虹) except after
// the characters of titles and growth words (董事长, 行长, 增长).
struct WordReading {
  std::u32string_view word;
  std::array<const char*, 2> syllables;
};
constexpr WordReading kWords[] = {{U"银行", {"yin", "hang"}},   {U"行业", {"hang", "ye"}},
                                  {U"重庆", {"chong", "qing"}}, {U"厦门", {"xia", "men"}},
                                  {U"会计", {"kuai", "ji"}},    {U"蚌埠", {"beng", "bu"}},
                                  {U"六安", {"lu", "an"}}};
constexpr std::u32string_view kZhangAfter = U"事行校部市省县局处科院社会组队班厂所成增生家师兄年首";

// Surnames whose reading differs from the character's common one (单 shan, 曾 zeng, …): a name
// starting with one is also indexed under the surname reading.
constexpr std::pair<char32_t, const char*> kSurnames[] = {
    {U'单', "shan"}, {U'曾', "zeng"}, {U'解', "xie"}, {U'仇', "qiu"}, {U'区', "ou"},
    {U'查', "zha"},  {U'朴', "piao"}, {U'盖', "ge"},  {U'乐', "yue"}, {U'翟', "zhai"},
    {U'缪', "miao"}, {U'覃', "qin"},  {U'尉', "yu"}};

void add_syllable(std::string_view syl, Pinyin& out) {
  if (syl.empty()) return;
  out.starts.push_back(out.full.size());
  out.full += syl;
  out.initials += syl[0];
}

// Appends the syllables of one run of Han characters.
void add_run(const std::u32string& run, Pinyin& out) {
  if (run.empty()) return;
  if (!out.full.empty()) {
    out.full += ' ';
    out.initials += ' ';
  }
  for (size_t i = 0; i < run.size();) {
    bool matched = false;
    for (const auto& w : kWords) {
      if (run.compare(i, w.word.size(), w.word) == 0) {
        for (const char* syl : w.syllables) add_syllable(syl, out);
        i += w.word.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (run[i] == U'长')
      add_syllable(
          i > 0 && kZhangAfter.find(run[i - 1]) != std::u32string_view::npos ? "zhang" : "chang",
          out);
    else
      add_syllable(syllable(static_cast<UChar32>(run[i])), out);
    ++i;
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Legal forms, folded. Chinese ones are whole words by themselves; the longer forms come first.
constexpr std::array<std::string_view, 8> kHanSuffixes = {
    "股份有限公司", "有限责任公司", "有限公司", "(集团)", "集团公司", "集团", "总公司", "公司"};
constexpr std::array<std::string_view, 19> kLatinSuffixes = {
    "ltd", "limited", "inc", "incorporated", "gmbh", "co",  "corp", "corporation", "company", "llc",
    "plc", "ag",      "sa",  "s.a",          "bv",   "b.v", "kg",   "pty",         "s.r.l"};

// Drops trailing spaces and punctuation that separate a suffix from the name.
void trim_tail(std::string& s) {
  while (!s.empty()) {
    char c = s.back();
    if (c == ' ' || c == ',' || c == '.' || c == ';' || c == '&' || c == '-' || c == '/' ||
        c == '\t')
      s.pop_back();
    else if (ends_with(s, "\xE3\x80\x80") || ends_with(s, "\xE3\x80\x81"))  // 　 、
      s.resize(s.size() - 3);
    else
      break;
  }
}

// True when the byte before position `at` ends a word (start, space, punctuation, non-ASCII).
bool word_boundary(const std::string& s, size_t at) {
  if (at == 0) return true;
  unsigned char c = static_cast<unsigned char>(s[at - 1]);
  return !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
}

bool strip_once(std::string& s) {
  // A name that is a legal form by itself ("有限公司") is not cut down to part of it ("有限").
  for (std::string_view suf : kHanSuffixes)
    if (s == suf) return false;
  for (std::string_view suf : kHanSuffixes) {
    if (ends_with(s, suf) && s.size() > suf.size()) {
      s.resize(s.size() - suf.size());
      trim_tail(s);
      return true;
    }
  }
  for (std::string_view suf : kLatinSuffixes) {
    if (ends_with(s, suf) && s.size() > suf.size() && word_boundary(s, s.size() - suf.size())) {
      s.resize(s.size() - suf.size());
      trim_tail(s);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string fold(std::string_view s) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFKCCasefoldInstance(status);
  icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  if (U_FAILURE(status)) return std::string(s);
  icu::UnicodeString out = n->normalize(u, status);
  if (U_FAILURE(status)) return std::string(s);
  return to_utf8(out);
}

std::string fold_spaced(std::string_view s) {
  const std::string folded = fold(s);
  std::string out;
  out.reserve(folded.size());
  bool space = false;
  for (char c : folded) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool has_han(std::string_view s) {
  icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  for (int32_t i = 0; i < u.length(); i = u.moveIndex32(i, 1))
    if (is_han(u.char32At(i))) return true;
  return false;
}

Pinyin pinyin(std::string_view s) {
  Pinyin out;
  icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  std::u32string run;
  for (int32_t i = 0; i < u.length(); i = u.moveIndex32(i, 1)) {
    UChar32 c = u.char32At(i);
    if (is_han(c)) {
      run += static_cast<char32_t>(c);
    } else if (!run.empty()) {
      add_run(run, out);
      run.clear();
    }
  }
  add_run(run, out);
  return out;
}

std::string strip_legal_suffix(std::string_view name) {
  std::string folded = fold(name);
  std::string s = folded;
  trim_tail(s);
  while (strip_once(s)) {
  }
  return s.empty() ? folded : s;
}

std::string search_extras(std::string_view s, bool is_name) {
  std::string out;
  std::string folded = fold(s);
  // Substring search: a line already contained in the text (or in an earlier line) adds nothing.
  auto add = [&](const std::string& line) {
    if (line.empty() || folded.find(line) != std::string::npos ||
        out.find(line) != std::string::npos)
      return;
    out += line;
    out += '\n';
  };
  std::string lower(s);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (folded != lower) {  // ASCII case alone the index already ignores
    out += folded;
    out += '\n';
  }
  // A number written in groups, joined, as search_query joins one typed so.
  if (std::string numbers = grouped_numbers(s); !numbers.empty()) {
    out += numbers;
    out += '\n';
  }
  if (!has_han(s)) {
    if (is_name) add(strip_legal_suffix(s));
    return out;
  }
  Pinyin p = pinyin(s);
  add(p.full);
  add(p.initials);
  if (!is_name) return out;
  // A name starting with a surname of its own reading: 曾国藩 is also "zengguofan", "zgf".
  icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  UChar32 first = u.isEmpty() ? 0 : u.char32At(0);
  for (const auto& [c, reading] : kSurnames) {
    if (static_cast<UChar32>(c) != first) continue;
    const std::string& common = syllable(first);
    std::string word = p.full.substr(0, p.full.find(' '));
    std::string initials = p.initials.substr(0, p.initials.find(' '));
    if (!common.empty() && word.compare(0, common.size(), common) == 0) {
      add(reading + word.substr(common.size()));
      add(reading[0] + initials.substr(1));
    }
  }
  std::string stripped = strip_legal_suffix(s);
  Pinyin sp = stripped != folded ? pinyin(stripped) : std::move(p);
  if (stripped != folded) {
    add(stripped);
    add(sp.full);
    add(sp.initials);
  }
  // The stripped name's pinyin from each syllable after the first of its run on: "huawei"
  // finds 北京华为技术有限公司 as a word prefix.
  std::string later;
  for (std::size_t k : sp.starts) {
    if (k == 0 || sp.full[k - 1] == ' ') continue;
    later += sp.full.substr(k, sp.full.find(' ', k) - k);
    later += ' ';
  }
  if (!later.empty()) {
    later.back() = '\n';
    out += later;
  }
  return out;
}

namespace {
bool number_punctuation(char c) {
  return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')' ||
         c == '+';
}
bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

std::string grouped_numbers(std::string_view s) {
  std::string out, digits;
  int groups = 0;
  auto end_run = [&] {
    if (groups >= 2) out += digits + ' ';
    digits.clear();
    groups = 0;
  };
  for (std::size_t i = 0; i < s.size();) {
    if (ascii_digit(s[i])) {
      while (i < s.size() && ascii_digit(s[i])) digits += s[i++];
      ++groups;
    } else if (number_punctuation(s[i])) {
      // Punctuation between two groups keeps the run; before the first it starts none.
      while (i < s.size() && number_punctuation(s[i])) ++i;
    } else {
      end_run();
      ++i;
    }
  }
  end_run();
  return out;
}

std::string search_query(std::string_view q) {
  // Only digits and number punctuation: the one run grouped_numbers finds is the number.
  if (std::all_of(q.begin(), q.end(),
                  [](char c) { return ascii_digit(c) || number_punctuation(c); }))
    if (std::string joined = grouped_numbers(q); !joined.empty()) {
      joined.pop_back();  // its trailing space
      return joined;
    }
  return strip_legal_suffix(q);
}

}  // namespace rapport::text
