// RFC 4180 reader, UTF-8 validation and GB18030 conversion (see csv.h).
#include "core/csv.h"

#include <unicode/ucnv.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace rapport::csv {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '"')) s.remove_suffix(1);
  return s;
}

Error too_large(std::string what) { return make_error(Errc::kTooLarge, std::move(what)); }

// Number of the record (header = 1) that holds byte `off`.
std::size_t record_at(std::string_view text, std::size_t off) {
  Reader r(text);
  std::vector<std::string> fields;
  std::size_t n = 0;
  while (r.offset() <= off && r.offset() < text.size()) {
    ++n;
    auto more = r.next(fields);
    if (!more.ok() || !*more) break;
  }
  return std::max<std::size_t>(n, 1);
}

}  // namespace

Result<Charset> parse_charset(std::string_view name) {
  std::string n = lower(trim(name));
  if (n.empty() || n == "utf-8" || n == "utf8") return Charset::kUtf8;
  if (n == "gb18030" || n == "gbk" || n == "gb2312" || n == "cp936") return Charset::kGb18030;
  return make_error(Errc::kBadRequest,
                    "unsupported charset " + std::string(name) + " (utf-8 or gb18030)", "encoding");
}

Result<Charset> charset_of_content_type(std::string_view ct) {
  std::string l = lower(ct);
  size_t at = l.find("charset=");
  if (at == std::string::npos) return Charset::kUtf8;
  std::string_view v = std::string_view(ct).substr(at + 8);
  v = v.substr(0, v.find(';'));
  return parse_charset(v);
}

Result<std::string_view> utf8_view(std::string_view raw) {
  if (raw.size() > kMaxBytes)
    return too_large("the file is larger than " + std::to_string(kMaxBytes) + " bytes");
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  std::size_t bad = invalid_utf8_offset(raw);
  if (bad != std::string_view::npos)
    return make_error(Errc::kBadRequest,
                      "row " + std::to_string(record_at(raw, bad)) + " is not valid UTF-8 (byte " +
                          std::to_string(bad + 1) +
                          "); save the file as UTF-8, or declare charset=gb18030 for GBK/GB18030",
                      "encoding");
  return raw;
}

Result<std::string> to_utf8(std::string_view raw, Charset cs) {
  if (cs == Charset::kUtf8) {
    RP_ASSIGN(std::string_view text, utf8_view(raw));
    return std::string(text);
  }
  if (raw.size() > kMaxBytes)
    return too_large("the file is larger than " + std::to_string(kMaxBytes) + " bytes");
  // GB18030 (a superset of GBK and GB2312) → UTF-16 → UTF-8; an ill-formed sequence stops.
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<UConverter, void (*)(UConverter*)> conv(ucnv_open("gb18030", &status),
                                                          ucnv_close);
  if (U_FAILURE(status)) return make_error(Errc::kInternal, "GB18030 converter unavailable");
  ucnv_setToUCallBack(conv.get(), UCNV_TO_U_CALLBACK_STOP, nullptr, nullptr, nullptr, &status);
  std::u16string utf16(raw.size() + 1, u'\0');
  int32_t n16 = ucnv_toUChars(conv.get(), reinterpret_cast<UChar*>(utf16.data()),
                              static_cast<int32_t>(utf16.size()), raw.data(),
                              static_cast<int32_t>(raw.size()), &status);
  if (U_FAILURE(status))
    return make_error(Errc::kBadRequest, "the file is not valid GB18030 text", "encoding");
  std::string out;
  int32_t n8 = 0;
  status = U_ZERO_ERROR;
  u_strToUTF8(nullptr, 0, &n8, reinterpret_cast<const UChar*>(utf16.data()), n16, &status);
  if (static_cast<std::size_t>(n8) > kMaxBytes)
    return too_large("the file is larger than " + std::to_string(kMaxBytes) + " bytes as UTF-8");
  out.resize(static_cast<std::size_t>(n8));
  status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), n8, &n8, reinterpret_cast<const UChar*>(utf16.data()), n16, &status);
  if (U_FAILURE(status))
    return make_error(Errc::kBadRequest, "the file is not valid GB18030 text", "encoding");
  if (std::string_view(out).substr(0, 3) == "\xEF\xBB\xBF") out.erase(0, 3);
  return out;
}

char detect_delimiter(std::string_view text) {
  std::size_t comma = 0, semi = 0, tab = 0;
  bool quoted = false;
  for (char c : text) {
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted) {
      if (c == '\n' || c == '\r') break;
      if (c == ',') ++comma;
      if (c == ';') ++semi;
      if (c == '\t') ++tab;
    }
  }
  if (semi > comma && semi >= tab) return ';';
  if (tab > comma && tab > semi) return '\t';
  return ',';
}

Reader::Reader(std::string_view text, char delimiter)
    : text_(text), delim_(delimiter ? delimiter : detect_delimiter(text)) {}

Result<bool> Reader::next(std::vector<std::string>& fields) {
  fields.clear();
  if (pos_ >= text_.size()) return false;
  if (record_ >= kMaxRecords)
    return too_large("the file has more than " + std::to_string(kMaxRecords - 1) + " rows");
  ++record_;
  const std::size_t n = text_.size();
  auto where = [&] { return "row " + std::to_string(record_); };
  for (;;) {
    if (fields.size() >= kMaxColumns)
      return too_large(where() + " has more than " + std::to_string(kMaxColumns) + " columns");
    std::string& field = fields.emplace_back();
    if (pos_ < n && text_[pos_] == '"') {
      ++pos_;
      for (;;) {
        std::size_t q = text_.find('"', pos_);
        if (q == std::string_view::npos)
          return make_error(Errc::kBadRequest, where() + ": a quoted field is never closed");
        field.append(text_.substr(pos_, q - pos_));
        pos_ = q + 1;
        if (pos_ < n && text_[pos_] == '"') {
          field += '"';
          ++pos_;
          continue;
        }
        break;
      }
      if (pos_ < n && text_[pos_] != delim_ && text_[pos_] != '\r' && text_[pos_] != '\n')
        return make_error(Errc::kBadRequest,
                          where() +
                              ": text after the closing quote of a field (write \"\" for a "
                              "quote inside a quoted field)");
    } else {
      const char stops[] = {delim_, '\r', '\n', '\0'};
      std::size_t end = text_.find_first_of(std::string_view(stops, 3), pos_);
      if (end == std::string_view::npos) end = n;
      field.assign(text_.substr(pos_, end - pos_));
      pos_ = end;
    }
    if (field.size() > kMaxFieldBytes)
      return too_large(where() + " has a field longer than " + std::to_string(kMaxFieldBytes) +
                       " bytes");
    if (pos_ >= n) return true;
    char c = text_[pos_];
    if (c == delim_) {  // at the end of the text too: the empty last field counts as a column
      ++pos_;
      continue;
    }
    // line end: CRLF, LF or a lone CR
    ++pos_;
    if (c == '\r' && pos_ < n && text_[pos_] == '\n') ++pos_;
    return true;
  }
}

Result<std::vector<std::vector<std::string>>> parse_all(std::string_view text, char delimiter) {
  Reader r(text, delimiter);
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> fields;
  for (;;) {
    RP_ASSIGN(bool more, r.next(fields));
    if (!more) break;
    out.push_back(fields);
  }
  return out;
}

}  // namespace rapport::csv
