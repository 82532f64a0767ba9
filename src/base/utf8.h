// UTF-8 well-formedness, shared by every reader of outside text (CSV imports, query strings).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rapport {

// Offset of the first byte that does not start a well-formed UTF-8 sequence (overlongs,
// surrogates and code points above U+10FFFF are ill-formed), or npos.
std::size_t invalid_utf8_offset(std::string_view s);

inline bool valid_utf8(std::string_view s) {
  return invalid_utf8_offset(s) == std::string_view::npos;
}

// Appends code point `c` (at most U+10FFFF, not a surrogate) as UTF-8.
void append_utf8(std::string& out, char32_t c);

}  // namespace rapport
