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

// Problems of the file as a whole (its size, its quoting) name the field "file": the request body.
Error too_large(std::string what) { return make_error(Errc::kTooLarge, std::move(what), "file"); }

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

namespace {

enum class Step { kRecord, kMore };

// One record of `text` from `pos` into `fields` (`record` numbers it in errors). kRecord moves
// `pos` past it. When `last` is false the text may go on: a record that reaches the end of
// `text` (or needs the byte after it: a closing quote, CR LF) answers kMore and leaves `pos`.
Result<Step> parse_record(std::string_view text, std::size_t& pos, char delim, bool last,
                          std::size_t record, std::vector<std::string>& fields) {
  fields.clear();
  const std::size_t n = text.size();
  std::size_t p = pos;
  auto where = [&] { return "row " + std::to_string(record); };
  for (;;) {
    if (fields.size() >= kMaxColumns)
      return too_large(where() + " has more than " + std::to_string(kMaxColumns) + " columns");
    std::string& field = fields.emplace_back();
    if (p < n && text[p] == '"') {
      ++p;
      for (;;) {
        std::size_t q = text.find('"', p);
        if (q == std::string_view::npos) {
          if (!last) return Step::kMore;
          return make_error(Errc::kBadRequest, where() + ": a quoted field is never closed",
                            "file");
        }
        field.append(text.substr(p, q - p));
        p = q + 1;
        if (p >= n && !last) return Step::kMore;  // "" split across pieces?
        if (p < n && text[p] == '"') {
          field += '"';
          ++p;
          continue;
        }
        break;
      }
      if (p < n && text[p] != delim && text[p] != '\r' && text[p] != '\n')
        return make_error(Errc::kBadRequest,
                          where() +
                              ": text after the closing quote of a field (write \"\" for a "
                              "quote inside a quoted field)",
                          "file");
    } else {
      const char stops[] = {delim, '\r', '\n', '\0'};
      std::size_t end = text.find_first_of(std::string_view(stops, 3), p);
      if (end == std::string_view::npos) {
        if (!last) return Step::kMore;
        end = n;
      }
      field.assign(text.substr(p, end - p));
      p = end;
    }
    if (field.size() > kMaxFieldBytes)
      return too_large(where() + " has a field longer than " + std::to_string(kMaxFieldBytes) +
                       " bytes");
    if (p >= n) {
      if (!last) return Step::kMore;
      pos = p;
      return Step::kRecord;
    }
    char c = text[p];
    if (c == delim) {  // at the end of the text too: the empty last field counts as a column
      ++p;
      continue;
    }
    // line end: CRLF, LF or a lone CR
    ++p;
    if (c == '\r') {
      if (p >= n && !last) return Step::kMore;
      if (p < n && text[p] == '\n') ++p;
    }
    pos = p;
    return Step::kRecord;
  }
}

}  // namespace

Result<bool> Reader::next(std::vector<std::string>& fields) {
  fields.clear();
  if (pos_ >= text_.size()) return false;
  if (record_ >= kMaxRecords)
    return too_large("the file has more than " + std::to_string(kMaxRecords - 1) + " rows");
  ++record_;
  RP_TRY(parse_record(text_, pos_, delim_, true, record_, fields));
  return true;
}

// ---- StreamReader

struct StreamReader::Converter {
  std::unique_ptr<UConverter, void (*)(UConverter*)> conv{nullptr, ucnv_close};
  std::u16string utf16;
};

StreamReader::StreamReader(Source source, Charset cs, char delimiter, std::size_t piece_bytes)
    : source_(std::move(source)),
      cs_(cs),
      delim_(delimiter),
      piece_bytes_(std::max<std::size_t>(1, piece_bytes)) {}

StreamReader::~StreamReader() = default;

Error StreamReader::bad_encoding() const {
  if (cs_ != Charset::kUtf8)
    return make_error(Errc::kBadRequest, "the file is not valid GB18030 text", "encoding");
  return make_error(Errc::kBadRequest,
                    "row " + std::to_string(record_ + 1) + " is not valid UTF-8 (byte " +
                        std::to_string(decoded_ + 1) +
                        "); save the file as UTF-8, or declare charset=gb18030 for GBK/GB18030",
                    "encoding");
}

Status StreamReader::decode(std::string_view raw, bool last) {
  if (cs_ == Charset::kUtf8) {
    // hold back a character split at the end of the piece
    std::size_t cut = raw.size();
    if (!last) {
      for (std::size_t i = 1; i <= std::min<std::size_t>(3, raw.size()); ++i) {
        auto b = static_cast<unsigned char>(raw[raw.size() - i]);
        if ((b & 0xC0) == 0x80) continue;  // continuation byte
        std::size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        if (len > i) cut = raw.size() - i;
        break;
      }
    }
    std::string_view whole = raw.substr(0, cut);
    std::size_t bad = invalid_utf8_offset(whole);
    if (bad != std::string_view::npos) {
      text_.append(whole.substr(0, bad));
      decoded_ += bad;
      bad_ = true;
      return {};
    }
    text_.append(whole);
    decoded_ += whole.size();
    raw_.assign(raw.substr(cut));
    if (decoded_ > kMaxBytes)
      return too_large("the file is larger than " + std::to_string(kMaxBytes) + " bytes");
    return {};
  }
  // GB18030 (a superset of GBK and GB2312) → UTF-16 → UTF-8; the converter keeps a character
  // split across pieces; an ill-formed sequence stops.
  UErrorCode status = U_ZERO_ERROR;
  if (!conv_) {
    conv_ = std::make_unique<Converter>();
    conv_->conv.reset(ucnv_open("gb18030", &status));
    if (U_FAILURE(status)) return make_error(Errc::kInternal, "GB18030 converter unavailable");
    ucnv_setToUCallBack(conv_->conv.get(), UCNV_TO_U_CALLBACK_STOP, nullptr, nullptr, nullptr,
                        &status);
  }
  auto& u16 = conv_->utf16;
  u16.resize(raw.size() + 16);
  UChar* target = reinterpret_cast<UChar*>(u16.data());
  UChar* const target_start = target;
  const char* src = raw.data();
  ucnv_toUnicode(conv_->conv.get(), &target, target_start + u16.size(), &src,
                 raw.data() + raw.size(), nullptr, last, &status);
  // An ill-formed sequence: the text before it is kept (read before the error is given), as
  // for UTF-8, so that what is read first does not depend on where the pieces end.
  const bool ill_formed = U_FAILURE(status);
  raw_.clear();
  const auto n16 = static_cast<int32_t>(target - target_start);
  int32_t n8 = 0;
  status = U_ZERO_ERROR;
  u_strToUTF8(nullptr, 0, &n8, target_start, n16, &status);
  const std::size_t at = text_.size();
  text_.resize(at + static_cast<std::size_t>(n8));
  status = U_ZERO_ERROR;
  u_strToUTF8(text_.data() + at, n8, &n8, target_start, n16, &status);
  if (U_FAILURE(status)) {
    text_.resize(at);
    bad_ = true;
    return {};
  }
  if (!bom_checked_ && n8 > 0) {
    bom_checked_ = true;
    if (std::string_view(text_).substr(at, 3) == "\xEF\xBB\xBF") text_.erase(at, 3);
  }
  decoded_ += text_.size() - at;
  if (decoded_ > kMaxBytes)
    return too_large("the file is larger than " + std::to_string(kMaxBytes) + " bytes as UTF-8");
  if (ill_formed) bad_ = true;
  return {};
}

Status StreamReader::fill() {
  if (pos_ > 0) {  // drop what has been read
    text_.erase(0, pos_);
    pos_ = 0;
  }
  // A record longer than a piece (a long quoted field) is parsed again after each read: read
  // at least as much as it holds so far, so the work stays linear in its length.
  const std::size_t want = std::max(piece_bytes_, text_.size());
  std::string piece(raw_);
  const std::size_t had = piece.size();
  piece.resize(had + want);
  RP_ASSIGN(std::size_t n, source_(piece.data() + had, want));
  piece.resize(had + n);
  const bool last = n == 0;
  std::string_view raw = piece;
  if (cs_ == Charset::kUtf8 && !bom_checked_) {
    if (raw.size() < 3 && !last) {  // too short to tell a BOM yet
      raw_.assign(raw);
      return {};
    }
    bom_checked_ = true;
    if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  }
  RP_TRY(decode(raw, last));
  if (last && !bad_) {
    if (!raw_.empty()) {  // a character cut off by the end of the file
      bad_ = true;
      raw_.clear();
    } else {
      end_ = true;
    }
  }
  return {};
}

Result<bool> StreamReader::next(std::vector<std::string>& fields) {
  fields.clear();
  if (delim_ == 0) {  // detect from the first line
    while (!end_ && !bad_ && text_.find_first_of("\r\n") == std::string::npos) RP_TRY(fill());
    delim_ = detect_delimiter(text_);
  }
  for (;;) {
    if (pos_ >= text_.size() && end_) return false;
    if (pos_ < text_.size()) {
      std::size_t p = pos_;
      RP_ASSIGN(Step step, parse_record(text_, p, delim_, end_, record_ + 1, fields));
      if (step == Step::kRecord) {
        if (record_ >= kMaxRecords)
          return too_large("the file has more than " + std::to_string(kMaxRecords - 1) + " rows");
        ++record_;
        pos_ = p;
        return true;
      }
    }
    if (bad_) return bad_encoding();
    RP_TRY(fill());
  }
}

Result<bool> StreamReader::next_line(std::string& line) {
  line.clear();
  for (;;) {
    const std::size_t nl = text_.find('\n', pos_);
    if (nl != std::string::npos || (end_ && pos_ < text_.size())) {
      const std::size_t stop = nl == std::string::npos ? text_.size() : nl;
      line.assign(text_, pos_, stop - pos_);
      pos_ = nl == std::string::npos ? stop : stop + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      ++record_;
      return true;
    }
    if (end_) return false;
    if (bad_) return bad_encoding();
    RP_TRY(fill());
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
