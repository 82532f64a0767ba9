#include "record/row_json.h"

#include <rapidjson/internal/dtoa.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
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

// Inlined into both writers (a call per field costs RecordJson::append about a fifth).
[[gnu::always_inline]] inline void append_value(std::string& out, const schema::Field& f,
                                                std::span<const SqlView> row, size_t col) {
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

CachedRecord RecordJson::whole(std::span<const SqlView> row, std::int64_t version) const {
  CachedRecord r;
  r.version = version;
  r.start.reserve(parts_.size() + 1);
  r.text.reserve(1024);
  for (const Part& p : parts_) {
    if (!r.start.empty()) r.text.push_back(',');
    r.start.push_back(static_cast<std::uint32_t>(r.text.size()));
    r.text.append(p.key);
    append_value(r.text, *p.field, row, p.col);
  }
  r.start.push_back(static_cast<std::uint32_t>(r.text.size() + 1));
  if (row[internal_col_].index() != 0) {
    r.tail.append("\"deleted_at\":");
    append_text(r.tail, row[internal_col_], true);
  }
  if (row[internal_col_ + 1].index() != 0) {
    if (!r.tail.empty()) r.tail.push_back(',');
    r.tail.append("\"merged_into\":\"");
    append_int(r.tail, view_int(row[internal_col_ + 1]));
    r.tail.push_back('"');
  }
  r.text.shrink_to_fit();
  return r;
}

CachedRecordJson::CachedRecordJson(const std::vector<char>& shown) {
  for (std::uint32_t i = 0; i < shown.size(); ++i) {
    if (!shown[i]) continue;
    if (!runs_.empty() && runs_.back().second + 1 == i)
      runs_.back().second = i;
    else
      runs_.emplace_back(i, i);
  }
}

void CachedRecordJson::append(std::string& out, const CachedRecord& r) const {
  out.push_back('{');
  bool any = false;
  for (const auto& [first, last] : runs_) {
    if (any) out.push_back(',');
    any = true;
    const std::uint32_t from = r.start[first];
    out.append(r.text, from, r.start[last + 1] - 1 - from);
  }
  if (!r.tail.empty()) {
    if (any) out.push_back(',');
    out.append(r.tail);
  }
  out.push_back('}');
}

RowJsonCache::RowJsonCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

void RowJsonCache::count_page(std::uint32_t slot, Path path, std::size_t hits, std::size_t misses) {
  if (slot >= kMaxSlots || hits + misses == 0) return;
  auto& share = miss_permille_[static_cast<int>(path)][slot];
  const auto sample = static_cast<std::int64_t>(misses * 1000 / (hits + misses));
  const auto old = static_cast<std::int64_t>(share.load(std::memory_order_relaxed));
  share.store(static_cast<std::uint32_t>(old + (sample - old) / 4), std::memory_order_relaxed);
}

bool RowJsonCache::mostly_missed(std::uint32_t slot, Path path) const {
  return slot < kMaxSlots &&
         miss_permille_[static_cast<int>(path)][slot].load(std::memory_order_relaxed) > 500;
}

std::uint32_t RowJsonCache::slot(std::string_view name) const {
  std::lock_guard lock(slots_mu_);
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i] == name) return i;
  slots_.emplace_back(name);
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

std::shared_ptr<const CachedRecord> RowJsonCache::find(std::uint32_t slot, std::int64_t id,
                                                       std::int64_t version, std::size_t fields,
                                                       Path path) {
  const Key key{slot, id};
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end() || it->second->version != version || it->second->fields != fields) {
    ++s.misses;
    return nullptr;
  }
  ++s.hits;
  Node& n = *it->second;
  if (n.listed) {
    s.listed.splice(s.listed.begin(), s.listed, it->second);
  } else if (path == Path::kList) {
    // A record a list page shows is one of its records from now on.
    n.listed = true;
    s.listed_bytes += n.bytes;
    s.listed.splice(s.listed.begin(), s.read, it->second);
  } else {
    s.read.splice(s.read.begin(), s.read, it->second);
  }
  return n.record;
}

void RowJsonCache::drop(Shard& s, std::list<Node>::iterator it) {
  s.bytes -= it->bytes;
  if (it->listed) s.listed_bytes -= it->bytes;
  s.index.erase(it->key);
  (it->listed ? s.listed : s.read).erase(it);
}

void RowJsonCache::put(std::uint32_t slot, std::int64_t id, std::shared_ptr<const CachedRecord> r,
                       Path path) {
  if (max_bytes_ == 0) return;
  const Key key{slot, id};
  // The text, offsets and tail, the record and the list node, and the index entry.
  const std::size_t bytes = r->text.capacity() + r->tail.capacity() +
                            r->start.capacity() * sizeof(std::uint32_t) + sizeof(CachedRecord) +
                            sizeof(Node) + 64;
  Shard& s = shard(key);
  const std::size_t budget = max_bytes_ / kShards;
  if (bytes > budget) return;
  bool listed = path == Path::kList;
  std::lock_guard lock(s.mu);
  if (auto it = s.index.find(key); it != s.index.end()) {
    // A reader of an older snapshot does not push out the later version another one cached.
    if (it->second->version > r->version && it->second->fields >= r->fields()) return;
    listed = listed || it->second->listed;
    drop(s, it->second);
  }
  // List pages' records go first while they hold more than their share (or nothing else is
  // left), else the records only reads by id put: reads by id never push a list page's records
  // below kListShare of the bytes.
  while (s.bytes + bytes > budget) {
    const bool from_listed = s.read.empty() || s.listed_bytes > budget / kListShare;
    auto& victims = from_listed ? s.listed : s.read;
    if (victims.empty()) break;
    drop(s, std::prev(victims.end()));
  }
  const std::int64_t version = r->version;
  const std::size_t fields = r->fields();
  auto& into = listed ? s.listed : s.read;
  into.push_front(Node{key, version, fields, std::move(r), bytes, listed});
  s.index.emplace(key, into.begin());
  s.bytes += bytes;
  if (listed) s.listed_bytes += bytes;
}

template <typename T>
T RowJsonCache::sum(T Shard::*member) const {
  T n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.*member;
  }
  return n;
}

std::size_t RowJsonCache::bytes() const { return sum(&Shard::bytes); }
std::size_t RowJsonCache::list_bytes() const { return sum(&Shard::listed_bytes); }
std::uint64_t RowJsonCache::hits() const { return sum(&Shard::hits); }
std::uint64_t RowJsonCache::misses() const { return sum(&Shard::misses); }

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
