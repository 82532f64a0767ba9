// JSON text written by hand where rapidjson's Writer costs more than the answer: a string's
// escaped form, byte for byte what rapidjson::Writer<StringBuffer> writes for it (UTF-8 in and
// out, no validation), so that an answer written either way is the same text.
#pragma once

#include <string>
#include <string_view>

namespace rapport::json {

// Appends `s` as a JSON string (quotes included): '"' and '\\' and control characters escaped
// as rapidjson escapes them (\b \t \n \f \r, others \u00XX with upper-case hex digits); every
// other byte, multi-byte UTF-8 and DEL included, copied as it is.
inline void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\b':
        out.push_back('b');
        break;
      case '\t':
        out.push_back('t');
        break;
      case '\n':
        out.push_back('n');
        break;
      case '\f':
        out.push_back('f');
        break;
      case '\r':
        out.push_back('r');
        break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace rapport::json
