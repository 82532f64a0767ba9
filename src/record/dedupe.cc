// Normalisers, Jaro–Winkler and match rules for duplicate detection (see dedupe.h).
#include "record/dedupe.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <set>

#include "base/utf8.h"
#include "core/phone.h"
#include "core/text.h"

namespace rapport::record::dedupe {

namespace {

constexpr std::array<std::string_view, 20> kFreeMail = {
    "gmail.com",   "googlemail.com", "qq.com",      "163.com",        "126.com",
    "yeah.net",    "outlook.com",    "hotmail.com", "live.com",       "msn.com",
    "yahoo.com",   "yahoo.com.cn",   "sina.com",    "sina.cn",        "sohu.com",
    "foxmail.com", "aliyun.com",     "icloud.com",  "protonmail.com", "139.com"};

// Rules' name thresholds (DOMAIN §9).
constexpr double kPhoneNameThreshold = 0.88;
constexpr double kFirstLastThreshold = 0.90;
constexpr double kOrgNameThreshold = 0.92;
// The most a shared phone and a similar name score when a city is missing: review, not duplicate.
constexpr double kUnknownCityScore = 0.85;

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    if (i + n > s.size()) n = 1;
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out += cp;
    i += n;
  }
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Punctuation that separates words in a name: ASCII non-alphanumerics, general punctuation,
// CJK symbols and punctuation, the middle dots of transliterated names.
bool is_separator(char32_t c) {
  if (c < 0x80)
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
  return c == 0xB7 || c == 0x30FB || (c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) ||
         (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF01 && c <= 0xFF0F);
}

// Punctuation to single spaces, trimmed.
std::string words_only(std::string_view folded) {
  std::string out;
  bool space = false;
  for (char32_t c : decode(folded)) {
    if (is_separator(c) || c == U'\u3000') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    append_utf8(out, c);
  }
  return out;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t sp = s.find(' ', i);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > i) out.emplace_back(s.substr(i, sp - i));
    i = sp + 1;
  }
  return out;
}

std::string without_spaces(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ') out += c;
  return out;
}

// Chinese characters as toneless pinyin, everything else kept, no spaces: "张三" → "zhangsan".
std::string latin(std::string_view key) {
  if (!text::has_han(key)) return without_spaces(key);
  std::string out;
  std::string run;
  auto flush = [&] {
    if (!run.empty()) out += without_spaces(text::pinyin(run).full);
    run.clear();
  };
  for (char32_t c : decode(key)) {
    std::string ch;
    append_utf8(ch, c);
    if (c >= 0x2E80 && text::has_han(ch)) {
      run += ch;
    } else {
      flush();
      if (c != ' ') out += ch;
    }
  }
  flush();
  return out;
}

std::string sorted_words(std::string_view key) {
  auto words = split_words(key);
  std::sort(words.begin(), words.end());
  std::string out;
  for (const auto& w : words) out += w;
  return out;
}

struct PersonName {
  std::string first, last;  // as written (folded), and their latin forms
  std::string first_latin, last_latin;
};

// Chinese: the surname is the first character (two for the common compound surnames);
// otherwise the first word is the first name and the last word the last name.
PersonName split_person(std::string_view key) {
  static const std::set<std::u32string> kCompound = {U"欧阳", U"司马", U"诸葛", U"上官",
                                                     U"东方", U"皇甫", U"慕容", U"令狐"};
  PersonName n;
  auto words = split_words(key);
  if (words.size() == 1 && text::has_han(key)) {
    std::u32string u = decode(without_spaces(key));
    size_t cut = u.size() >= 3 && kCompound.count(u.substr(0, 2)) ? 2 : 1;
    for (size_t i = 0; i < u.size(); ++i) append_utf8(i < cut ? n.last : n.first, u[i]);
  } else if (words.size() == 1) {
    n.last = words[0];
  } else if (!words.empty()) {
    n.first = words.front();
    n.last = words.back();
  }
  n.first_latin = latin(n.first);
  n.last_latin = latin(n.last);
  return n;
}

// A given or family name both written in Chinese characters meets another by pinyin only as a
// homophone (an input method's slip: 王芳 = 汪芳): one or two syllables a letter apart (李明
// ming, 李敏 min) are other names, though Jaro–Winkler of the pinyin says 0.93. Near pinyin is
// for a Chinese name against a Latin one (and for whole names, name_similarity).
double part_similarity(const std::string& a, const std::string& a_latin, const std::string& b,
                       const std::string& b_latin) {
  if (a.empty() && b.empty()) return 1;
  if (text::has_han(a) && text::has_han(b)) return a_latin == b_latin ? 1.0 : jaro_winkler(a, b);
  return std::max(jaro_winkler(a, b), jaro_winkler(a_latin, b_latin));
}

std::string fixed2(double d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", d);
  return buf;
}

template <typename T>
const T* first_shared(const std::vector<T>& a, const std::vector<T>& b) {
  auto i = a.begin(), j = b.begin();
  while (i != a.end() && j != b.end()) {
    if (*i < *j)
      ++i;
    else if (*j < *i)
      ++j;
    else
      return &*i;
  }
  return nullptr;
}

// A rule whose anchor (shared phone, company, address …) holds: the name similarity decides.
// At the threshold the pair is a duplicate (0.90); above it up to 1; below it proportionally
// less, so a name a little short of the threshold lands in the review band.
double anchored(double s, double threshold) {
  return s >= threshold
             ? kDuplicateScore + (1 - kDuplicateScore) * (s - threshold) / (1 - threshold)
             : kDuplicateScore * s / threshold;
}

std::string str_member(const json::Value& v, const char* name) {
  const json::Value* m = json::member(v, name);
  return m && m->IsString() ? std::string(m->GetString(), m->GetStringLength()) : std::string();
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

void consider(std::optional<Match>& best, double score, std::string reason, std::string field) {
  if (!best || score > best->score) best = Match{score, std::move(reason), std::move(field)};
}

std::string name_reason(const NameSimilarity& s) {
  return "name similarity " + fixed2(s.score) + (s.by_pinyin ? " (pinyin)" : "");
}

}  // namespace

std::string canonical_email(std::string_view raw) {
  std::string s = lower_ascii(trim(raw));
  size_t at = s.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 >= s.size()) return {};
  std::string local = s.substr(0, at), domain = s.substr(at + 1);
  if (domain == "gmail.com" || domain == "googlemail.com") {
    local = local.substr(0, local.find('+'));
    local.erase(std::remove(local.begin(), local.end(), '.'), local.end());
    domain = "gmail.com";
    if (local.empty()) return {};
  }
  return local + "@" + domain;
}

bool is_free_mail(std::string_view domain) {
  if (std::find(kFreeMail.begin(), kFreeMail.end(), domain) != kFreeMail.end()) return true;
  // Reserved for documentation and tests (RFC 2606, 6761): nobody's company domain.
  for (std::string_view reserved : {"example.com", "example.org", "example.net"})
    if (domain == reserved) return true;
  for (std::string_view tld : {".example", ".test", ".invalid", ".localhost", ".local"})
    if (domain.size() > tld.size() && domain.substr(domain.size() - tld.size()) == tld) return true;
  return false;
}

std::string website_host(std::string_view website) {
  std::string s = lower_ascii(trim(website));
  if (size_t scheme = s.find("://"); scheme != std::string::npos) s.erase(0, scheme + 3);
  s = s.substr(0, s.find_first_of("/?#"));
  if (size_t at = s.rfind('@'); at != std::string::npos) s.erase(0, at + 1);
  s = s.substr(0, s.find(':'));
  while (!s.empty() && s.back() == '.') s.pop_back();
  if (s.rfind("www.", 0) == 0) s.erase(0, 4);
  if (s.find('.') == std::string::npos) return {};
  return s;
}

std::string company_domain(std::string_view website_or_email) {
  std::string_view v = trim(website_or_email);
  std::string host;
  if (v.find('@') != std::string_view::npos && v.find("://") == std::string_view::npos) {
    std::string email = canonical_email(v);
    if (email.empty()) return {};
    host = email.substr(email.rfind('@') + 1);
    if (host.rfind("www.", 0) == 0) host.erase(0, 4);
  } else {
    host = website_host(v);
  }
  return is_free_mail(host) ? std::string() : host;
}

std::string name_key(std::string_view name) {
  std::string key = words_only(text::strip_legal_suffix(name));
  // Punctuation gone, a suffix may now end the name ("Acme (Beijing) Ltd" → "acme beijing").
  std::string again = text::strip_legal_suffix(key);
  if (!again.empty()) key = words_only(again);
  // "&" is punctuation, so "and" (und) between words goes too: "Smith & Sons" = "Smith and Sons".
  auto words = split_words(key);
  if (words.size() < 3) return key;
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0 && i + 1 < words.size() && (words[i] == "and" || words[i] == "und")) continue;
    if (!out.empty()) out += ' ';
    out += words[i];
  }
  return out;
}

std::string tax_id_key(std::string_view raw) {
  std::string out;
  for (char c : raw) {
    if (c >= 'a' && c <= 'z') out += static_cast<char>(c - 'a' + 'A');
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out += c;
  }
  return out;
}

std::string city_key(std::string_view city) {
  std::string s = without_spaces(words_only(text::fold(city)));
  if (s.size() > 3 && s.compare(s.size() - 3, 3, "市") == 0) s.resize(s.size() - 3);
  return s;
}

std::string street_key(std::string_view street, std::string_view city) {
  // Usual abbreviations of street words (USPS and Royal Mail style) and their long forms meet
  // on the short one; house-number words ("No.", "#") go; "12th Floor" and "12/F" both read
  // "12f". Traditional 號 is 号.
  static const std::map<std::string, std::string, std::less<>> kShort = {
      {"road", "rd"},       {"street", "st"},      {"str", "st"},        {"avenue", "ave"},
      {"av", "ave"},        {"boulevard", "blvd"}, {"drive", "dr"},      {"lane", "ln"},
      {"court", "ct"},      {"place", "pl"},       {"square", "sq"},     {"highway", "hwy"},
      {"parkway", "pkwy"},  {"terrace", "ter"},    {"crescent", "cres"}, {"circle", "cir"},
      {"building", "bldg"}, {"bld", "bldg"},       {"tower", "twr"},     {"floor", "f"},
      {"fl", "f"},          {"flr", "f"},          {"suite", "ste"},     {"room", "rm"},
      {"apartment", "apt"}, {"north", "n"},        {"south", "s"},       {"east", "e"},
      {"west", "w"},        {"centre", "ctr"},     {"center", "ctr"},    {"mount", "mt"},
      {"district", "dist"}, {"industrial", "ind"}, {"estate", "est"},    {"saint", "st"},
      {"strasse", "str"},   {"straße", "str"}};
  std::string folded = text::fold(street);
  for (size_t at = folded.find("號"); at != std::string::npos; at = folded.find("號", at))
    folded.replace(at, std::string_view("號").size(), "号");
  std::string out;
  for (std::string w : split_words(words_only(folded))) {
    if (w == "no" || w == "nr" || w == "number") continue;
    // An ordinal number is its number: "12th" → "12".
    size_t digits = 0;
    while (digits < w.size() && w[digits] >= '0' && w[digits] <= '9') ++digits;
    if (digits > 0 && w.size() == digits + 2) {
      std::string_view tail = std::string_view(w).substr(digits);
      if (tail == "st" || tail == "nd" || tail == "rd" || tail == "th") w.resize(digits);
    }
    // German compounds: "Hauptstraße" and "Hauptstr." meet.
    for (std::string_view long_form : {"strasse", "straße"})
      if (w.size() > long_form.size() && w.ends_with(long_form))
        w = w.substr(0, w.size() - long_form.size()) + "str";
    auto it = kShort.find(w);
    out += it == kShort.end() ? w : it->second;
  }
  // A Chinese street often repeats the city first: "北京市海淀区…" is "海淀区…" in 北京.
  const std::string c = city_key(city);
  if (!c.empty() && out.size() > c.size() && out.compare(0, c.size(), c) == 0) {
    std::string rest = out.substr(c.size());
    if (rest.rfind("市", 0) == 0) rest.erase(0, std::string_view("市").size());
    if (!rest.empty() && text::has_han(rest)) out = rest;
  }
  return out;
}

std::string country_key(std::string_view country) {
  std::string s = words_only(text::fold(country));
  static const std::map<std::string, std::string, std::less<>> kAliases = {
      {"china", "cn"},
      {"中国", "cn"},
      {"prc", "cn"},
      {"p r china", "cn"},
      {"people s republic of china", "cn"},
      {"中华人民共和国", "cn"},
      {"germany", "de"},
      {"deutschland", "de"},
      {"德国", "de"},
      {"united states", "us"},
      {"usa", "us"},
      {"美国", "us"},
      {"united kingdom", "gb"},
      {"uk", "gb"},
      {"英国", "gb"},
      {"japan", "jp"},
      {"日本", "jp"}};
  auto it = kAliases.find(s);
  return it == kAliases.end() ? s : it->second;
}

double jaro_winkler(std::string_view a_utf8, std::string_view b_utf8) {
  std::u32string a = decode(a_utf8), b = decode(b_utf8);
  if (a.empty() && b.empty()) return 1;
  if (a.empty() || b.empty()) return 0;
  const size_t window = std::max<size_t>(std::max(a.size(), b.size()) / 2, 1) - 1;
  std::vector<bool> a_hit(a.size()), b_hit(b.size());
  size_t matches = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    size_t lo = i > window ? i - window : 0, hi = std::min(b.size(), i + window + 1);
    for (size_t j = lo; j < hi; ++j) {
      if (b_hit[j] || a[i] != b[j]) continue;
      a_hit[i] = b_hit[j] = true;
      ++matches;
      break;
    }
  }
  if (matches == 0) return 0;
  size_t transposed = 0;
  for (size_t i = 0, j = 0; i < a.size(); ++i) {
    if (!a_hit[i]) continue;
    while (!b_hit[j]) ++j;
    if (a[i] != b[j]) ++transposed;
    ++j;
  }
  const double m = static_cast<double>(matches);
  const double jaro = (m / a.size() + m / b.size() + (m - transposed / 2.0) / m) / 3.0;
  if (jaro <= 0.7) return jaro;
  size_t prefix = 0;
  while (prefix < 4 && prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  return jaro + prefix * 0.1 * (1 - jaro);
}

NameForms name_forms(std::string_view key) {
  NameForms n;
  n.key = std::string(key);
  if (key.empty()) return n;
  n.plain = without_spaces(key);
  n.sorted = sorted_words(key);
  n.han = text::has_han(key);
  // Latin forms in both orders of the words, and for a Chinese name given name first, so that
  // "Zhang San", "San Zhang" and 张三 meet.
  PersonName person = split_person(key);
  n.first = person.first;
  n.last = person.last;
  n.first_latin = person.first_latin;
  n.last_latin = person.last_latin;
  n.latin.push_back(latin(key));
  auto words = split_words(key);
  if (words.size() == 1 && n.han) {
    n.latin.push_back(person.first_latin + person.last_latin);
  } else if (words.size() > 1) {
    std::string reversed;
    for (auto it = words.rbegin(); it != words.rend(); ++it) reversed += latin(*it);
    n.latin.push_back(reversed);
  }
  return n;
}

NameSimilarity name_similarity(const NameForms& a, const NameForms& b) {
  if (a.key.empty() || b.key.empty()) return {};
  NameSimilarity s{std::max(jaro_winkler(a.plain, b.plain), jaro_winkler(a.sorted, b.sorted)),
                   false};
  if (!a.han && !b.han) return s;
  for (const auto& x : a.latin)
    for (const auto& y : b.latin) {
      double js = jaro_winkler(x, y);
      if (js > s.score) s = {js, true};
    }
  return s;
}

NameSimilarity name_similarity(std::string_view a, std::string_view b) {
  return name_similarity(name_forms(a), name_forms(b));
}

double first_last_similarity(const NameForms& x, const NameForms& y) {
  if (x.key.empty() || y.key.empty()) return 0;
  double same_order = std::min(part_similarity(x.first, x.first_latin, y.first, y.first_latin),
                               part_similarity(x.last, x.last_latin, y.last, y.last_latin));
  double swapped = std::min(part_similarity(x.first, x.first_latin, y.last, y.last_latin),
                            part_similarity(x.last, x.last_latin, y.first, y.first_latin));
  return std::max(same_order, swapped);
}

double first_last_similarity(std::string_view a, std::string_view b) {
  return first_last_similarity(name_forms(a), name_forms(b));
}

Facts facts_of(const Profile& profile, const schema::Entity& e, const json::Value& record,
               std::string_view phone_region, const std::vector<std::string>* e164) {
  Facts f;
  if (e164) f.phones = *e164;
  for (const auto& field : e.fields) {
    const json::Value* v = json::member(record, field.name);
    if (!v || v->IsNull()) continue;
    if ((field.type == schema::FieldType::kPhoneList ||
         field.type == schema::FieldType::kEmailList) &&
        v->IsArray()) {
      for (const auto& entry : v->GetArray()) {
        const json::Value* val = entry.IsString() ? &entry : json::member(entry, "value");
        if (!val || !val->IsString()) continue;
        std::string_view raw(val->GetString(), val->GetStringLength());
        if (field.type == schema::FieldType::kPhoneList) {
          if (e164) continue;
          auto normalised = phone::to_e164(raw, phone_region);
          if (normalised.ok()) f.phones.push_back(std::move(normalised).value());
        } else if (std::string email = canonical_email(raw); !email.empty()) {
          if (std::string d = company_domain(email); !d.empty()) f.mail_domains.push_back(d);
          f.emails.push_back(std::move(email));
        }
      }
      continue;
    }
    if (!v->IsString()) {
      if (field.name == profile.address_field && v->IsObject()) {
        std::string raw_city = str_member(*v, "city");
        std::string street = street_key(str_member(*v, "street"), raw_city);
        std::string city = city_key(raw_city);
        if (f.city.empty()) f.city = city;
        f.country = country_key(str_member(*v, "country"));
        if (!street.empty()) f.address = street + "|" + city;
      }
      continue;
    }
    std::string_view s(v->GetString(), v->GetStringLength());
    if (field.name == profile.name_field) {
      f.title = std::string(s);
      f.name = name_key(s);
    } else if (field.name == profile.company_field) {
      f.company = std::string(s);
    } else if (field.name == profile.tax_id_field) {
      f.tax_id = tax_id_key(s);
    } else if (field.name == profile.website_field) {
      f.web_domain = company_domain(s);
    } else if (field.name == profile.city_field) {
      if (std::string c = city_key(s); !c.empty()) f.city = c;
    }
  }
  f.forms = name_forms(f.name);
  sort_unique(f.phones);
  sort_unique(f.emails);
  sort_unique(f.mail_domains);
  return f;
}

std::vector<std::string> index_keys(const Profile& profile, const Facts& f) {
  std::vector<std::string> keys;
  for (const auto& e : f.emails) keys.push_back("email:" + e);
  // A company domain identifies an organisation; colleagues share it, so not persons.
  if (profile.kind == Profile::Kind::kOrganisation) {
    if (!f.web_domain.empty()) keys.push_back("domain:" + f.web_domain);
    for (const auto& d : f.mail_domains) keys.push_back("domain:" + d);
  }
  if (!f.tax_id.empty()) keys.push_back("tax:" + f.tax_id);
  if (!f.address.empty()) keys.push_back("addr:" + f.address);
  sort_unique(keys);
  return keys;
}

std::optional<Match> match(const Profile& profile, const Facts& a, const Facts& b) {
  std::optional<Match> best;
  const NameSimilarity names = name_similarity(a.forms, b.forms);
  const std::string* phone = first_shared(a.phones, b.phones);
  if (profile.kind == Profile::Kind::kPerson) {
    if (const std::string* email = first_shared(a.emails, b.emails))
      consider(best, 0.95 + 0.05 * names.score, "same email " + *email, "emails");
    if (phone)
      consider(best, anchored(names.score, kPhoneNameThreshold),
               "same phone " + *phone + " and " + name_reason(names), "phones");
    const bool same_company = !a.company.empty() && a.company == b.company;
    const bool same_address = !a.address.empty() && a.address == b.address;
    if (same_company || same_address) {
      double s = first_last_similarity(a.forms, b.forms);
      consider(best, anchored(s, kFirstLastThreshold),
               std::string(same_company ? "same company" : "same address") +
                   " and first/last name similarity " + fixed2(s),
               same_company ? profile.company_field : profile.address_field);
    }
  } else {
    if (!a.tax_id.empty() && a.tax_id == b.tax_id)
      consider(best, 0.95 + 0.05 * names.score, "same tax id " + a.tax_id, profile.tax_id_field);
    std::vector<std::string> da = a.mail_domains, db = b.mail_domains;
    if (!a.web_domain.empty()) da.push_back(a.web_domain);
    if (!b.web_domain.empty()) db.push_back(b.web_domain);
    sort_unique(da);
    sort_unique(db);
    if (const std::string* d = first_shared(da, db)) {
      bool web = *d == a.web_domain || *d == b.web_domain;
      consider(best, kDuplicateScore + 0.05 + 0.05 * names.score, "same company domain " + *d,
               web ? profile.website_field : "emails");
    }
    const bool same_country = a.country.empty() || b.country.empty() || a.country == b.country;
    const bool same_address = !a.address.empty() && a.address == b.address;
    const bool city_phone = phone && !a.city.empty() && a.city == b.city;
    if (same_country && (same_address || city_phone))
      consider(best, anchored(names.score, kOrgNameThreshold),
               name_reason(names) + (same_address ? " and the same address"
                                                  : ", same city and same phone " + *phone),
               profile.name_field);
    // A shared phone and a similar name where a city is not known (an account typed in from a
    // call: name and number only) is not the rule above, which needs the city; it goes to the
    // review queue, scored below kDuplicateScore, so that it is reported but never blocks.
    const bool city_unknown = phone && (a.city.empty() || b.city.empty());
    if (same_country && city_unknown && !same_address)
      consider(best, std::min(kUnknownCityScore, anchored(names.score, kOrgNameThreshold)),
               name_reason(names) + " and the same phone " + *phone + " (city unknown)",
               profile.name_field);
  }
  if (best && best->score < kReviewScore) best.reset();
  if (best) best->score = std::min(1.0, std::round(best->score * 1000) / 1000);
  return best;
}

}  // namespace rapport::record::dedupe
