// Phone number normalisation over libphonenumber.
#include "core/phone.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

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

Result<std::string> to_e164(std::string_view raw, std::string_view region) {
  if (is_e164(raw)) return std::string(raw);
  if (std::string e164 = separated_e164(raw); !e164.empty()) return e164;
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
