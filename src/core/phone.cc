// Phone number normalisation over libphonenumber.
#include "core/phone.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <array>

namespace rapport::phone {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {
// Longer input is not a phone number; keeps the parser away from pathological strings.
constexpr size_t kMaxInput = 64;
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

namespace {

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

// One write normalises the same numbers several times (validation, phone index, search body,
// duplicate facts); libphonenumber's parser is the costly part, so each thread remembers its
// last few answers. A pure function of (raw, region): nothing to invalidate.
struct Memo {
  std::string raw;
  std::string region;
  Result<std::string> out{std::string()};
};
constexpr std::size_t kMemoSize = 16;

}  // namespace

Result<std::string> to_e164(std::string_view raw, std::string_view region) {
  if (is_e164(raw)) return std::string(raw);
  if (raw.empty() || raw.size() > kMaxInput)
    return make_error(Errc::kValidation, "not a phone number: " + std::string(raw));
  thread_local std::array<Memo, kMemoSize> memo;
  thread_local std::size_t used = 0;
  thread_local std::size_t next = 0;
  for (std::size_t i = 0; i < used; ++i) {
    if (memo[i].raw == raw && memo[i].region == region) return memo[i].out;
  }
  Result<std::string> out = parse_to_e164(raw, region);
  Memo& slot = memo[next];
  slot.raw.assign(raw);
  slot.region.assign(region);
  slot.out = out;
  next = (next + 1) % kMemoSize;
  used = std::min(used + 1, kMemoSize);
  return out;
}

}  // namespace rapport::phone
