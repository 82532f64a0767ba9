// Phone numbers as values: any written form ("010-6253 1234", "+86 10 62531234", "13812345678")
// to E.164 with libphonenumber. Pure and thread-safe (libphonenumber's util is a singleton).
#pragma once

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
// unless a 0 follows the first one to three digits (a national prefix the parser drops).
Result<std::string> to_e164(std::string_view raw, std::string_view region = kDefaultRegion);

// Whether libphonenumber knows the region code ("CN", "DE", …).
bool known_region(std::string_view region);

}  // namespace rapport::phone
