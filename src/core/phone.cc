// Phone number normalisation over libphonenumber.
#include "core/phone.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <array>
#include <cstdint>
#include <unordered_map>

namespace rapport::phone {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {
// Longer input is not a phone number; keeps the parser away from pathological strings.
constexpr size_t kMaxInput = 64;
// One write normalises the same numbers several times (validation, phone index, search body,
// duplicate facts), an import batch its rows' numbers again when it checks them for duplicates,
// and libphonenumber's parser is the costly part: each thread remembers its answers. Large
// enough for an import batch's numbers (5,000 rows); dropped whole when full. A pure function
// of (raw, region): nothing to invalidate.
constexpr size_t kCacheEntries = 65536;

Result<std::string> parse_to_e164(std::string_view raw, std::string_view region) {
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(raw), std::string(region), &number) !=
      PhoneNumberUtil::NO_PARSING_ERROR)
    return make_error(Errc::kValidation, "not a phone number: " + std::string(raw));
  // Possible (length fits the country's plan) rather than valid (range known to the metadata):
  // new number ranges must still match, and dedupe compares numbers, not allocations.
  if (!util->IsPossibleNumber(number))
    return make_error(Errc::kValidation, "not a possible phone number in " + std::string(region) +
                                             ": " + std::string(raw));
  std::string out;
  util->Format(number, PhoneNumberUtil::E164, &out);
  return out;
}
}  // namespace

bool is_e164(std::string_view s) {
  if (s.size() < 9 || s.size() > 16 || s[0] != '+' || s[1] == '0') return false;
  for (size_t i = 1; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool known_region(std::string_view region) {
  return PhoneNumberUtil::GetInstance()->GetCountryCodeForRegion(std::string(region)) != 0;
}

// "+86 138 1234 5678", "+86-13812345678": E.164 written with spaces or hyphens (a third of
// the numbers of a typical import file). Without them it is E.164, unless a digit where a
// national prefix could stand (the first digit after a country code of one to three digits) is
// 0: "+86 010 …" is +8610…, which only the parser knows. Other input: empty.
std::string separated_e164(std::string_view raw) {
  if (raw.size() < 9 || raw.size() > kMaxInput || raw[0] != '+') return {};
  std::string out;
  out.reserve(raw.size());
  out += '+';
  for (size_t i = 1; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c >= '0' && c <= '9')
      out += c;
    else if (c != ' ' && c != '-')
      return {};
  }
  if (!is_e164(out) || out[2] == '0' || out[3] == '0' || out[4] == '0') return {};
  return out;
}

std::optional<std::string> national_cn_e164(std::string_view raw) {
  if (raw.size() > kMaxInput) return std::nullopt;
  // An extension as people write it after the number (" x724"): not part of E.164.
  if (size_t x = raw.rfind(" x"); x != std::string_view::npos) {
    const std::string_view ext = raw.substr(x + 2);
    if (ext.empty() || ext.size() > 6 ||
        ext.find_first_not_of("0123456789") != std::string_view::npos)
      return std::nullopt;
    raw = raw.substr(0, x);
  }
  std::string d;  // the digits
  d.reserve(raw.size());
  int parens = 0;  // 0: none yet, 1: open, 2: closed
  for (const char c : raw) {
    if (c >= '0' && c <= '9')
      d += c;
    else if (c == '(' && parens == 0 && d.empty())  // "(021) 5555-0101": the area code only
      parens = 1;
    else if (c == ')' && parens == 1)
      parens = 2;
    else if (c != ' ' && c != '-')
      return std::nullopt;
  }
  if (parens == 1 || d.size() < 3) return std::nullopt;
  std::string_view national = d;
  if (d[0] == '0' && d[1] != '0')
    national.remove_prefix(1);  // the trunk prefix ("00" is the international prefix)
  else if (!(d.size() == 11 && d[0] == '1' && d[1] >= '3' && !(d[1] == '7' && d[2] == '9')))
    return std::nullopt;  // a mobile 13x–19x, not 179 (carrier-selection codes 179xx, 11xx, 12xx)
  // The length must be one CN's plan allows for a whole number, as the parser checks it: a
  // length possible only for local dialling (5–6 digits) keeps the parser from stripping the
  // trunk 0 ("013032" stays +86013032), so it goes to the parser too. For a country of one
  // region, as CN, that check depends on the length alone: asked once per length.
  static const std::array<bool, 18> possible = [] {
    std::array<bool, 18> out{};
    const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
    std::uint64_t n = 1;
    for (size_t len = 1; len < out.size(); ++len, n *= 10) {
      PhoneNumber probe;
      probe.set_country_code(86);
      probe.set_national_number(n);  // 1, 10, 100 …: `len` digits
      out[len] = util->IsPossibleNumberWithReason(probe) == PhoneNumberUtil::IS_POSSIBLE;
    }
    return out;
  }();
  if (national.size() >= possible.size() || !possible[national.size()]) return std::nullopt;
  std::string out = "+86";
  out.append(national);
  return out;
}

Result<std::string> parse_with_libphonenumber(std::string_view raw, std::string_view region) {
  if (raw.empty() || raw.size() > kMaxInput)
    return make_error(Errc::kValidation, "not a phone number: " + std::string(raw));
  return parse_to_e164(raw, region);
}

Result<std::string> to_e164(std::string_view raw, std::string_view region) {
  if (is_e164(raw)) return std::string(raw);
  if (std::string e164 = separated_e164(raw); !e164.empty()) return e164;
  if (region == "CN")
    if (auto e164 = national_cn_e164(raw)) return std::move(*e164);
  if (raw.empty() || raw.size() > kMaxInput)
    return make_error(Errc::kValidation, "not a phone number: " + std::string(raw));
  thread_local std::unordered_map<std::string, Result<std::string>> cache;
  std::string key;
  key.reserve(region.size() + 1 + raw.size());
  key.append(region).append(1, '\n').append(raw);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= kCacheEntries) cache.clear();
  auto r = parse_to_e164(raw, region);
  cache.emplace(std::move(key), r);
  return r;
}

}  // namespace rapport::phone
