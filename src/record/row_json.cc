#include "record/row_json.h"

#include <rapidjson/internal/dtoa.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <variant>

#include "record/table.h"

namespace rapport::record {

using schema::FieldType;
using storage::SqlView;

namespace {

// 0: written as it is; 'u': \u00XX; else the letter after the backslash (as rapidjson's Writer).
constexpr char kEscape(unsigned char c) {
  switch (c) {
    case '"':
      return '"';
    case '\\':
      return '\\';
    case '\b':
      return 'b';
    case '\f':
      return 'f';
    case '\n':
      return 'n';
    case '\r':
      return 'r';
    case '\t':
      return 't';
    default:
      return c < 0x20 ? 'u' : 0;
  }
}

struct EscapeTable {
  char e[256];
  constexpr EscapeTable() : e() {
    for (int c = 0; c < 256; ++c) e[c] = kEscape(static_cast<unsigned char>(c));
  }
};
constexpr EscapeTable kTable;

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end - buf : 0);
}

std::int64_t view_int(const SqlView& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
  return 0;
}

// As as_text: text as it is, an integer in decimal, anything else empty.
void append_text(std::string& out, const SqlView& v, bool quoted) {
  if (const auto* t = std::get_if<std::string_view>(&v)) {
    if (quoted)
      append_json_string(out, *t);
    else
      out.append(*t);
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    if (quoted) out.push_back('"');
    append_int(out, *i);
    if (quoted) out.push_back('"');
  } else if (quoted) {
    out.append("\"\"");
  }
}

void append_value(std::string& out, const schema::Field& f, std::span<const SqlView> row,
                  size_t col) {
  const SqlView& v = row[col];
  const bool null = v.index() == 0;
  if (f.type == FieldType::kMoney) {
    if (null) {
      out.append("null");
    } else {
      out.append("{\"amount\":");
      append_int(out, view_int(v));
      out.append(",\"currency\":");
      append_text(out, row[col + 1], true);
      out.push_back('}');
    }
    return;
  }
  if (null) {
    out.append("null");
    return;
  }
  switch (f.type) {
    case FieldType::kInteger:
      append_int(out, view_int(v));
      break;
    case FieldType::kDecimal: {
      const double d = std::holds_alternative<double>(v) ? std::get<double>(v)
                                                         : static_cast<double>(view_int(v));
      if (!std::isfinite(d)) {  // rapidjson's Writer refuses these; JSON has no such number
        out.append("null");
        break;
      }
      char buf[32];
      char* end = rapidjson::internal::dtoa(d, buf);
      out.append(buf, end - buf);
      break;
    }
    case FieldType::kBoolean:
      out.append(view_int(v) != 0 ? "true" : "false");
      break;
    case FieldType::kReference:
      out.push_back('"');
      append_int(out, view_int(v));
      out.push_back('"');
      break;
    case FieldType::kMultiEnum:
    case FieldType::kPhoneList:
    case FieldType::kEmailList:
    case FieldType::kAddress:
    case FieldType::kJson:
      append_text(out, v, false);  // stored as JSON text
      break;
    default:
      append_text(out, v, true);
  }
}

// Whether any of the 8 bytes of `x` is below 0x20, '"' or '\\' (exact for the word as a whole:
// the borrows of the subtraction only ever set flags above a byte that is itself flagged).
bool any_to_escape(std::uint64_t x) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const auto zero_in = [&](std::uint64_t y) { return (y - kOnes) & ~y & kHigh; };
  const std::uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
  return (below_space | zero_in(x ^ (kOnes * '"')) | zero_in(x ^ (kOnes * '\\'))) != 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('"');
  size_t run = 0;  // start of the bytes not yet appended
  size_t i = 0;
  for (;;) {
    // Eight bytes at a time while none of them needs escaping (most text).
    while (i + 8 <= s.size()) {
      std::uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (any_to_escape(word)) break;
      i += 8;
    }
    const size_t stop = std::min(s.size(), i + 8);
    for (; i < stop; ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      const char e = kTable.e[c];
      if (e == 0) continue;
      out.append(s.data() + run, i - run);
      run = i + 1;
      out.push_back('\\');
      out.push_back(e);
      if (e == 'u') {
        out.append("00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
      }
    }
    if (i >= s.size()) break;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

RecordJson::RecordJson(const schema::Entity& e, const std::vector<char>& shown) {
  size_t col = 0;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    const schema::Field& f = e.fields[i];
    if (shown[i]) {
      std::string key;
      append_json_string(key, f.name);
      key.push_back(':');
      parts_.push_back(Part{&f, col, std::move(key)});
    }
    col += column_count(f);
  }
  internal_col_ = col;
}

void RecordJson::append(std::string& out, std::span<const SqlView> row) const {
  char sep = '{';
  for (const Part& p : parts_) {
    out.push_back(sep);
    sep = ',';
    out.append(p.key);
    append_value(out, *p.field, row, p.col);
  }
  if (row[internal_col_].index() != 0) {
    out.push_back(sep);
    sep = ',';
    out.append("\"deleted_at\":");
    append_text(out, row[internal_col_], true);
  }
  if (row[internal_col_ + 1].index() != 0) {
    out.push_back(sep);
    sep = ',';
    out.append("\"merged_into\":\"");
    append_int(out, view_int(row[internal_col_ + 1]));
    out.push_back('"');
  }
  if (sep == '{') out.push_back('{');
  out.push_back('}');
}

void write_record(json::Writer& w, const schema::Entity& e, const std::vector<char>& shown,
                  const std::vector<storage::SqlValue>& row) {
  w.StartObject();
  size_t col = 0;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    const schema::Field& f = e.fields[i];
    if (shown[i]) {
      w.Key(f.name.c_str(), static_cast<rapidjson::SizeType>(f.name.size()));
      write_json(w, f, row, col);
    }
    col += column_count(f);
  }
  if (!storage::is_null(row[col])) {
    w.Key("deleted_at");
    w.String(as_text(row[col]));
  }
  if (!storage::is_null(row[col + 1])) {
    w.Key("merged_into");
    w.String(std::to_string(as_int(row[col + 1])));
  }
  w.EndObject();
}

}  // namespace rapport::record
