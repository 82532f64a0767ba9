// Phone numbers as values: any written form ("010-6253 1234", "+86 10 62531234", "13812345678")
// to E.164 with libphonenumber. Pure and thread-safe (libphonenumber's util is a singleton).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace rapport::phone {

// Region assumed for numbers written without a country code, unless a setting says otherwise.
constexpr const char* kDefaultRegion = "CN";

// True when `s` is already E.164: '+' and 8–15 digits, first digit not 0. Such input skips the
// parser (the screen-pop path gets ANI in this form from most carriers).
bool is_e164(std::string_view s);

// E.164 form of a written number, read in `region` (ISO 3166 alpha-2) when it has no country
// code. Numbers that cannot be a phone number in their region fail with kValidation. E.164
// input, also with spaces or hyphens between its digits ("+86 138 1234 5678"), skips the parser
// unless a 0 follows the first one to three digits (a national prefix the parser drops); so do
// Chinese national forms in region CN (national_cn_e164).
Result<std::string> to_e164(std::string_view raw, std::string_view region = kDefaultRegion);

// A Chinese number written nationally, as most CN callers and carriers write it, read without
// libphonenumber's parser (about 10 µs a number; the per-thread cache does not help a screen
// pop, whose callers' numbers mostly differ): digits with spaces, hyphens, an area code in
// parentheses and an extension (" x724", dropped, as E.164 drops it), either a trunk 0 and the
// national number ("010-6253 1234", "(021) 5555-0101", "0755 86001234 x12") or a mobile of 11
// digits 13x–19x ("13812345678", "138-1234-5678"), whose length CN's plan allows
// (libphonenumber's possible-number check on the number itself). nullopt for anything else —
// "00" international prefixes, carrier-selection codes (179xx, 11xx, 12xx), letters, lengths
// the plan does not allow —, which to_e164 leaves to the parser. Its answer is the parser's
// (phone_test compares them over every written form the data generator uses and more).
std::optional<std::string> national_cn_e164(std::string_view raw);

// libphonenumber's answer alone (no fast path, no cache): what to_e164 must agree with.
Result<std::string> parse_with_libphonenumber(std::string_view raw,
                                              std::string_view region = kDefaultRegion);

// Whether libphonenumber knows the region code ("CN", "DE", …).
bool known_region(std::string_view region);

}  // namespace rapport::phone
