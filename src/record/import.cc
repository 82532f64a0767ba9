// CSV / vCard import through the record pipeline (see import.h).
#include "record/import.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include <unistd.h>

#include "base/heap.h"
#include "core/parallel.h"
#include "core/text.h"
#include "core/vcard.h"
#include "record/duplicates.h"
#include "record/small_document.h"
#include "record/table.h"

namespace rapport::record {

using access::FieldAccess;
using access::Principal;
using schema::Entity;
using schema::Field;
using schema::FieldType;
using storage::SqlValue;

namespace {

struct RowError {
  std::size_t row = 0;
  std::string field, code, message;
};

// One data row on its way in: the request-body-like input object and the errors its cells gave.
struct Row {
  std::size_t number = 0;  // record number in the file (header = 1) or vCard number
  SmallDocument input;     // a batch holds thousands: small pool chunks
  std::string key;         // upsert key value ("" when none)
  std::vector<RowError> errors;
  std::string org;  // a vCard's ORG company name (trimmed), linked to an account per batch
  // its insert_many work done ahead (RecordService::prepare_inserts): an index into the batch's
  // prepared inputs, or kNone
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t prepared = kNone;
};

// Likely duplicates of a record an import created (Deduper::on_import).
struct RowDuplicates {
  std::size_t row = 0;
  std::int64_t id = 0;
  std::vector<DuplicateCandidate> candidates;
  std::vector<std::size_t> candidate_rows;  // row in the file of a candidate created by the same
                                            // batch, else 0
};
// Candidates kept per row in the answer and the stored run.
constexpr size_t kMaxImportCandidates = 5;
// Records whose duplicate-matching facts an import keeps from batch to batch (a few hundred
// bytes each).
constexpr size_t kMaxImportFactsCache = 100000;
// An import hands its free heap back to the system after a batch only above this resident size
// (see release_free_memory).
constexpr std::size_t kImportTrimAboveBytes = std::size_t{512} << 20;

// Resident set size of the process (0 when /proc is not there).
std::size_t resident_bytes() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// A batch's rows, JSON documents and statements are allocated on the worker pool and freed on
// the writer (and the other way round): the allocator keeps such memory in its per-thread arenas
// or caches, so a long import's RSS grows batch by batch. Handing the free pages back keeps it
// flat, but every page handed back is faulted in (and zeroed by the kernel) again by the next
// batch: trimmed after every batch, that was half of an import's page faults (550,000 per 100,000
// rows, each a zeroed 4 KiB page). So the free pages are handed back only once the process holds
// more than kImportTrimAboveBytes.
// Above it, the heap is handed back again only once the process has grown by
// kImportTrimSlackBytes since the last time (`floor`: its resident size after that): trimmed after
// every batch, an import whose two batches in flight (the next one prepared beside the writer)
// keep it above the bound faulted in ~2.7 million pages at 1,000,000 rows (session 19).
constexpr std::size_t kImportTrimSlackBytes = std::size_t{64} << 20;
void release_free_memory(std::size_t& floor) {
  const std::size_t resident = resident_bytes();
  if (resident <= kImportTrimAboveBytes || resident <= floor + kImportTrimSlackBytes) return;
  heap::release_free_memory();
  floor = resident_bytes();
}

std::string score_text(double score) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.3f", score);
  return buf;
}

void write_duplicates(json::Writer& w, const std::vector<RowDuplicates>& dupes, bool with_ids) {
  w.StartArray();
  for (const auto& d : dupes) {
    w.StartObject();
    w.Key("row");
    w.Uint64(d.row);
    if (with_ids) {
      w.Key("id");
      w.String(std::to_string(d.id));
    }
    w.Key("candidates");
    w.StartArray();
    for (size_t k = 0; k < d.candidates.size(); ++k) {
      const auto& c = d.candidates[k];
      const std::size_t row = k < d.candidate_rows.size() ? d.candidate_rows[k] : 0;
      w.StartObject();
      if (row) {  // another row of the file (a dry run has no ids for it)
        w.Key("row");
        w.Uint64(row);
      }
      if (with_ids || !row) {
        w.Key("id");
        w.String(std::to_string(c.id));
      }
      w.Key("title");
      w.String(c.title);
      w.Key("score");
      w.Double(std::round(c.score * 1000) / 1000);
      w.Key("reason");
      w.String(c.reason);
      w.Key("field");
      w.String(c.field);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

// Where a column goes: a field, and for money/address a part ("currency", "city", …).
struct Target {
  const Field* field = nullptr;
  std::string part;
};

std::string_view trim(std::string_view s) {
  auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && sp(s.front())) s.remove_prefix(1);
  while (!s.empty() && sp(s.back())) s.remove_suffix(1);
  // U+3000 ideographic space, common in Chinese spreadsheets
  while (s.size() >= 3 && s.substr(0, 3) == "\xE3\x80\x80") s.remove_prefix(3);
  while (s.size() >= 3 && s.substr(s.size() - 3) == "\xE3\x80\x80") s.remove_suffix(3);
  return s;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// List cells: `;` (also the full-width `；`) or line breaks separate entries.
std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    auto t = trim(cur);
    if (!t.empty()) out.emplace_back(t);
    cur.clear();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ';' || s[i] == '\n' || s[i] == '\r') {
      flush();
    } else if (s.substr(i, 3) == "\xEF\xBC\x9B") {  // ；
      flush();
      i += 2;
    } else {
      cur += s[i];
    }
  }
  flush();
  return out;
}

std::optional<bool> parse_bool(std::string_view s) {
  std::string l = lower_ascii(s);
  if (l == "true" || l == "1" || l == "yes" || l == "y" || l == "t" || s == "是" || s == "对" ||
      s == "√")
    return true;
  if (l == "false" || l == "0" || l == "no" || l == "n" || l == "f" || s == "否" || s == "不是" ||
      s == "×")
    return false;
  return std::nullopt;
}

// 2024/3/5, 2024.03.05, 2024-3-5, 2024年3月5日 → 2024-03-05; anything else unchanged.
std::string normalise_date(std::string_view s) {
  int parts[3] = {0, 0, 0};
  size_t idx = 0, digits = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      if (idx > 2) return std::string(s);
      parts[idx] = parts[idx] * 10 + (c - '0');
      if (++digits > (idx == 0 ? 4u : 2u)) return std::string(s);
      continue;
    }
    size_t skip = 0;
    if (c == '/' || c == '.' || c == '-')
      skip = 1;
    else if (s.substr(i, 3) == "年" || s.substr(i, 3) == "月")
      skip = 3;
    else if (s.substr(i, 3) == "日" && i + 3 == s.size() && idx == 2)
      break;
    else
      return std::string(s);
    if (digits == 0 || idx >= 2) return std::string(s);
    ++idx;
    digits = 0;
    i += skip - 1;
  }
  if (idx != 2 || digits == 0 || parts[0] < 1000) return std::string(s);
  char buf[40];  // room for any int, so the compiler sees no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", parts[0], parts[1], parts[2]);
  return buf;
}

// ISO 4217 minor-unit exponent (DOMAIN §11): 0 for JPY, KRW…, 3 for BHD, KWD…, else 2.
int currency_exponent(std::string_view cur) {
  static const std::set<std::string_view> zero = {"JPY", "KRW", "VND", "CLP", "ISK", "UGX",
                                                  "XAF", "XOF", "PYG", "RWF", "KMF", "GNF",
                                                  "VUV", "XPF", "DJF", "BIF"};
  static const std::set<std::string_view> three = {"BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"};
  if (zero.count(cur)) return 0;
  if (three.count(cur)) return 3;
  return 2;
}

// "1,234.50" → 123450 at exponent 2; nullopt when it is not a plain decimal number or has more
// decimals than the currency allows.
std::optional<std::int64_t> minor_units(std::string_view s, int exponent) {
  std::string digits;
  bool neg = false, seen_point = false, any = false;
  int decimals = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      if (seen_point) ++decimals;
      digits += c;
      any = true;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else if ((c == ',' || c == ' ' || c == '\'' || c == '_') && !seen_point) {
      continue;  // thousands separators
    } else if (c == '-' && !any && !neg) {
      neg = true;
    } else {
      return std::nullopt;
    }
  }
  while (decimals > exponent && !digits.empty() && digits.back() == '0') {
    digits.pop_back();
    --decimals;
  }
  if (!any || decimals > exponent || digits.size() > 17) return std::nullopt;
  for (int i = decimals; i < exponent; ++i) digits += '0';
  std::int64_t v = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), v);
  return neg ? -v : v;
}

// Splits "1,234.50 CNY", "CNY 1234.5", "¥1,234.50" into amount text and currency ("" if none).
std::pair<std::string, std::string> split_money(std::string_view s) {
  std::string cur;
  std::string rest(s);
  static const std::pair<std::string_view, std::string_view> symbols[] = {
      {"¥", "CNY"}, {"￥", "CNY"}, {"RMB", "CNY"}, {"$", "USD"}, {"€", "EUR"}, {"£", "GBP"}};
  for (const auto& [sym, code] : symbols) {
    if (auto at = rest.find(sym); at != std::string::npos) {
      cur = code;
      rest.erase(at, sym.size());
      break;
    }
  }
  if (cur.empty()) {
    // three ASCII capitals at the start or the end
    auto t = std::string(trim(rest));
    auto is_code = [](std::string_view c) {
      return c.size() == 3 && std::all_of(c.begin(), c.end(), [](char x) {
               return (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z');
             });
    };
    if (t.size() > 3 && is_code(std::string_view(t).substr(t.size() - 3))) {
      cur = t.substr(t.size() - 3);
      rest = t.substr(0, t.size() - 3);
    } else if (t.size() > 3 && is_code(std::string_view(t).substr(0, 3))) {
      cur = t.substr(0, 3);
      rest = t.substr(3);
    }
    for (char& c : cur)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return {std::string(trim(rest)), cur};
}

// Enum option by value, or by its en / zh-CN label (case-insensitively); the input otherwise.
std::string enum_value(const Field& f, std::string_view s) {
  for (const auto& o : f.options)
    if (o.value == s) return o.value;
  std::string folded = text::fold(s);
  for (const auto& o : f.options)
    if (text::fold(o.value) == folded || text::fold(o.label.en) == folded ||
        (!o.label.zh.empty() && text::fold(o.label.zh) == folded))
      return o.value;
  return std::string(s);
}

bool parse_int(std::string_view s, std::int64_t& out) {
  std::string d;
  for (char c : s)
    if (c != ',' && c != ' ' && c != '_') d += c;
  auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), out);
  return ec == std::errc() && ptr == d.data() + d.size() && !d.empty();
}

bool parse_double(std::string_view s, double& out) {
  std::string d;
  for (char c : s)
    if (c != ',' && c != ' ' && c != '_') d += c;
  auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), out);
  return ec == std::errc() && ptr == d.data() + d.size() && !d.empty() && std::isfinite(out);
}

void set_member(json::Value& obj, const std::string& name, json::Value v, json::Allocator& a) {
  if (auto it = obj.FindMember(name.c_str()); it != obj.MemberEnd())
    it->value = v;
  else
    obj.AddMember(json::str(name, a), v, a);
}

std::string error_code(Errc c) { return errc_name(c); }

bool is_row_error(Errc c) {
  switch (c) {
    case Errc::kBadRequest:
    case Errc::kValidation:
    case Errc::kUnknownField:
    case Errc::kForbidden:
    case Errc::kNotFound:
    case Errc::kConflict:
    case Errc::kDuplicate:
    case Errc::kRuleViolation:
    case Errc::kTooLarge:
      return true;
    default:
      return false;
  }
}

// ---- vCard 4 (RFC 6350) -------------------------------------------------------------------

std::string vcard_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == ',' || c == ';') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c != '\r') {
      out += c;
    }
  }
  return out;
}

// Folds content lines at 75 octets without splitting a UTF-8 sequence (RFC 6350 §3.2).
void vcard_line(std::string& out, std::string_view line) {
  size_t col = 0;
  for (size_t i = 0; i < line.size();) {
    size_t len = 1;
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c >= 0xF0)
      len = 4;
    else if (c >= 0xE0)
      len = 3;
    else if (c >= 0xC0)
      len = 2;
    if (col + len > 75) {
      out += "\r\n ";
      col = 1;
    }
    out.append(line.substr(i, len));
    col += len;
    i += len;
  }
  out += "\r\n";
}

const Field* first_of_type(const Entity& e, FieldType t) {
  for (const auto& f : e.fields)
    if (f.type == t) return &f;
  return nullptr;
}

const Field* named(const Entity& e, std::initializer_list<std::string_view> names, FieldType t) {
  for (auto n : names)
    if (const Field* f = e.field(n);
        f && (f->type == t || (t == FieldType::kText && f->type == FieldType::kLongText)))
      return f;
  return nullptr;
}

std::string phone_type_to_label(std::string_view type) {
  std::string t = lower_ascii(type);
  if (t.find("cell") != std::string::npos) return "mobile";
  if (t.find("fax") != std::string::npos) return "fax";
  if (t.find("work") != std::string::npos) return "office";
  if (t.find("home") != std::string::npos) return "home";
  return {};
}

std::string label_to_vcard_type(std::string_view label) {
  std::string l = lower_ascii(label);
  if (l == "mobile" || l == "cell") return "cell";
  if (l == "office" || l == "work") return "work";
  if (l == "fax") return "fax";
  if (l == "home") return "home";
  return {};
}

// One card → a record input for `e`.
void card_to_row(const Entity& e, const vcard::Card& card, Row& row) {
  auto& a = row.input.GetAllocator();
  const Field* title = e.field(e.title_field);
  const Field* phones = first_of_type(e, FieldType::kPhoneList);
  const Field* emails = first_of_type(e, FieldType::kEmailList);
  const Field* job = named(e, {"title", "job_title"}, FieldType::kText);
  const Field* dept = named(e, {"department"}, FieldType::kText);
  const Field* bday = named(e, {"birthday"}, FieldType::kDate);
  const Field* note = named(e, {"notes", "description"}, FieldType::kText);
  // What vcard_of writes for an account: its address (ADR), website (URL), kind (KIND:org).
  const Field* address = named(e, {"address"}, FieldType::kAddress);
  const Field* website = named(e, {"website"}, FieldType::kText);
  const Field* kind = named(e, {"kind"}, FieldType::kEnum);
  json::Value tels(rapidjson::kArrayType), mails(rapidjson::kArrayType);
  std::string fn, n_name;
  bool have_address = false;
  for (const auto& p : card) {
    auto type = p.params.count("type") ? p.params.at("type") : std::string();
    if (p.name == "FN") {
      fn = vcard::unescape(p.value);
    } else if (p.name == "N") {
      auto parts = vcard::split(p.value, ';');
      // family; given; additional — Chinese order when the family name is Han
      std::string family = parts.size() > 0 ? parts[0] : "",
                  given = parts.size() > 1 ? parts[1] : "";
      n_name = text::has_han(family)
                   ? family + given
                   : given + (given.empty() || family.empty() ? "" : " ") + family;
    } else if (p.name == "TEL" && phones) {
      std::string v = vcard::unescape(p.value);
      if (v.rfind("tel:", 0) == 0) v = v.substr(4);
      if (trim(v).empty()) continue;
      json::Value entry(rapidjson::kObjectType);
      entry.AddMember("value", json::str(trim(v), a), a);
      if (auto l = phone_type_to_label(type); !l.empty())
        entry.AddMember("label", json::str(l, a), a);
      tels.PushBack(entry, a);
    } else if (p.name == "EMAIL" && emails) {
      std::string v = vcard::unescape(p.value);
      if (v.rfind("mailto:", 0) == 0) v = v.substr(7);
      if (trim(v).empty()) continue;
      json::Value entry(rapidjson::kObjectType);
      entry.AddMember("value", json::str(trim(v), a), a);
      std::string l = lower_ascii(type);
      if (l.find("work") != std::string::npos)
        entry.AddMember("label", "work", a);
      else if (l.find("home") != std::string::npos)
        entry.AddMember("label", "home", a);
      mails.PushBack(entry, a);
    } else if (p.name == "TITLE" && job) {
      set_member(row.input, job->name, json::str(vcard::unescape(p.value), a), a);
    } else if (p.name == "ORG") {
      // organization name; unit: the name is linked to an account (Importer::run, per batch)
      auto parts = vcard::split(p.value, ';');
      if (!parts.empty() && row.org.empty()) row.org = std::string(trim(parts[0]));
      if (dept && parts.size() > 1 && !parts[1].empty())
        set_member(row.input, dept->name, json::str(parts[1], a), a);
    } else if (p.name == "BDAY" && bday) {
      std::string v = vcard::unescape(p.value);
      if (v.size() == 8 && std::all_of(v.begin(), v.end(), ::isdigit))
        v = v.substr(0, 4) + "-" + v.substr(4, 2) + "-" + v.substr(6, 2);
      set_member(row.input, bday->name, json::str(v.substr(0, 10), a), a);
    } else if (p.name == "NOTE" && note) {
      set_member(row.input, note->name, json::str(vcard::unescape(p.value), a), a);
    } else if (p.name == "ADR" && address && !have_address) {
      // post office box; extended address; street; locality; region; postal code; country —
      // the first ADR of the card (a work address before others as vcard_of writes it)
      auto parts = vcard::split(p.value, ';');
      json::Value adr(rapidjson::kObjectType);
      const char* keys[] = {"street", "city", "region", "postal_code", "country"};
      for (size_t k = 0; k < 5; ++k)
        if (k + 2 < parts.size() && !trim(parts[k + 2]).empty())
          adr.AddMember(json::Value(keys[k], a), json::str(trim(parts[k + 2]), a), a);
      if (!adr.ObjectEmpty()) {
        set_member(row.input, address->name, std::move(adr), a);
        have_address = true;
      }
    } else if (p.name == "URL" && website) {
      const std::string v = vcard::unescape(p.value);
      if (!trim(v).empty()) set_member(row.input, website->name, json::str(trim(v), a), a);
    } else if (p.name == "KIND" && kind) {
      std::string k = lower_ascii(trim(vcard::unescape(p.value)));
      if (k == "org" || k == "individual")
        set_member(row.input, kind->name, json::str(k == "org" ? "company" : "individual", a), a);
    }
  }
  if (fn.empty()) fn = n_name;
  if (title && !trim(fn).empty()) set_member(row.input, title->name, json::str(trim(fn), a), a);
  if (phones && !tels.Empty()) set_member(row.input, phones->name, std::move(tels), a);
  if (emails && !mails.Empty()) set_member(row.input, emails->name, std::move(mails), a);
}

}  // namespace

std::string vcard_of(const Entity& e, const json::Value& record) {
  std::string out;
  vcard_line(out, "BEGIN:VCARD");
  vcard_line(out, "VERSION:4.0");
  auto text_of = [&](const Field* f) -> std::string {
    if (!f) return {};
    const json::Value* v = json::member(record, f->name);
    return v && v->IsString() ? v->GetString() : std::string();
  };
  std::string fn = text_of(e.field(e.title_field));
  // A company (an account of kind "company") is a card of KIND:org with its name as ORG (RFC 6350
  // §6.1.4, §6.6.4), so that address books do not file it as a person with a family name; an
  // individual says KIND:individual, so that an import of the card keeps the kind.
  const std::string kind = text_of(named(e, {"kind"}, FieldType::kEnum));
  const bool org = kind == "company";
  if (org)
    vcard_line(out, "KIND:org");
  else if (kind == "individual")
    vcard_line(out, "KIND:individual");
  vcard_line(out, "FN:" + vcard_escape(fn));
  if (org)
    vcard_line(out, "ORG:" + vcard_escape(fn));
  else if (text::has_han(fn) && fn.size() > 3)
    vcard_line(out,
               "N:" + vcard_escape(fn.substr(0, 3)) + ";" + vcard_escape(fn.substr(3)) + ";;;");
  auto list = [&](const Field* f, const char* prop, bool phone) {
    if (!f) return;
    const json::Value* v = json::member(record, f->name);
    if (!v || !v->IsArray()) return;
    for (const auto& entry : v->GetArray()) {
      const json::Value* value = entry.IsObject() ? json::member(entry, "value") : &entry;
      const json::Value* label = entry.IsObject() ? json::member(entry, "label") : nullptr;
      if (!value || !value->IsString()) continue;
      std::string line = prop;
      std::string type = label && label->IsString() ? label_to_vcard_type(label->GetString()) : "";
      if (phone && type.empty()) type = "voice";
      if (!type.empty()) line += ";TYPE=" + type;
      line += ":" + vcard_escape(value->GetString());
      vcard_line(out, line);
    }
  };
  list(first_of_type(e, FieldType::kPhoneList), "TEL", true);
  list(first_of_type(e, FieldType::kEmailList), "EMAIL", false);
  if (auto t = text_of(named(e, {"title", "job_title"}, FieldType::kText)); !t.empty())
    vcard_line(out, "TITLE:" + vcard_escape(t));
  if (auto d = text_of(named(e, {"department"}, FieldType::kText)); !d.empty() && !org)
    vcard_line(out, "ORG:;" + vcard_escape(d));
  // The postal address (ADR: post office box; extended; street; locality; region; code; country)
  // and the website (URL).
  if (const Field* f = named(e, {"address"}, FieldType::kAddress)) {
    const json::Value* v = json::member(record, f->name);
    if (v && v->IsObject()) {
      std::string adr = "ADR;TYPE=work:;";
      bool any = false;
      for (const char* part : {"street", "city", "region", "postal_code", "country"}) {
        const json::Value* pv = json::member(*v, part);
        const std::string_view text = pv && pv->IsString() ? pv->GetString() : "";
        any = any || !text.empty();
        adr += ";" + vcard_escape(text);
      }
      if (any) vcard_line(out, adr);
    }
  }
  if (auto w = text_of(named(e, {"website"}, FieldType::kText)); !w.empty())
    vcard_line(out, "URL:" + vcard_escape(w));
  if (auto b = text_of(named(e, {"birthday"}, FieldType::kDate)); b.size() == 10)
    vcard_line(out, "BDAY:" + b.substr(0, 4) + b.substr(5, 2) + b.substr(8, 2));
  if (auto n = text_of(named(e, {"notes", "description"}, FieldType::kText)); !n.empty())
    vcard_line(out, "NOTE:" + vcard_escape(n));
  if (const json::Value* id = json::member(record, "id"); id && id->IsString())
    vcard_line(out, "UID:urn:rapport:" + e.name + ":" + id->GetString());
  if (auto rev = text_of(e.field("updated_at")); !rev.empty()) {
    std::string basic;
    for (char c : rev)
      if (c != '-' && c != ':') basic += c;
    if (auto dot = basic.find('.'); dot != std::string::npos) basic = basic.substr(0, dot) + "Z";
    vcard_line(out, "REV:" + basic);
  }
  vcard_line(out, "END:VCARD");
  return out;
}

Result<std::string> Importer::run(const Principal& p, const Entity& e, const ImportRequest& req) {
  const bool may_update = !req.upsert.empty() &&
                          access::scope_for(p, e.name, access::Op::kUpdate) != access::Scope::kNone;
  if (!access::can_create(p, e.name) && !may_update)
    return make_error(Errc::kForbidden, "you may not create " + e.plural);
  auto run_entity = records_.registry_.get("import_run");
  if (!run_entity) return make_error(Errc::kInternal, "import_run is not declared");

  // ---- the upsert key
  const Field* key_field = nullptr;
  bool key_is_email = false;
  if (!req.upsert.empty()) {
    if (req.upsert == "email") {
      key_field = first_of_type(e, FieldType::kEmailList);
      key_is_email = true;
    } else {
      key_field = e.field(req.upsert);
      if (key_field && (key_field->type != FieldType::kText || !key_field->unique))
        return make_error(Errc::kBadRequest,
                          "upsert takes a unique text field or email; " + req.upsert + " is not",
                          "upsert");
    }
    if (!key_field || access::field_access(p, e, *key_field) == FieldAccess::kHidden)
      return make_error(Errc::kBadRequest,
                        e.plural + " have no field " + req.upsert + " to upsert on", "upsert");
  }

  // ---- the mapping: saved template, then the explicit one on top
  std::map<std::string, std::string> mapping;
  auto add_mapping = [&](std::string_view text, const char* what) -> Status {
    auto doc = json::parse(text);
    if (!doc.ok() || !doc->IsObject())
      return make_error(Errc::kBadRequest,
                        std::string(what) + " must be a JSON object {\"CSV header\": \"field\"}",
                        "mapping");
    for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
      if (!it->value.IsString() && !it->value.IsNull())
        return make_error(Errc::kBadRequest,
                          std::string(what) + ": the target of " + it->name.GetString() +
                              " must be a field name (or \"\" to skip the column)",
                          "mapping");
      mapping[std::string(trim(it->name.GetString()))] =
          it->value.IsString() ? it->value.GetString() : "";
    }
    return {};
  };
  if (!req.template_name.empty()) {
    RP_ASSIGN(auto tx, records_.store_.read());
    SqlValue key[] = {req.template_name};
    RP_ASSIGN(auto rows, tx->query("SELECT \"entity\", \"mapping\" FROM \"import_template\" WHERE "
                                   "\"name\" = ? AND deleted_at IS NULL",
                                   key));
    if (rows.rows.empty())
      return make_error(Errc::kBadRequest, "no import template named " + req.template_name,
                        "template");
    if (as_text(rows.rows[0][0]) != e.name)
      return make_error(Errc::kBadRequest,
                        "import template " + req.template_name + " is for " +
                            as_text(rows.rows[0][0]) + ", not " + e.name,
                        "template");
    RP_TRY(add_mapping(as_text(rows.rows[0][1]), "the template's mapping"));
  }
  if (!req.mapping_json.empty()) RP_TRY(add_mapping(req.mapping_json, "mapping"));

  // ---- the rows' source: a body in memory or spooled to a file, read piece by piece
  auto source = [&req, at = std::size_t{0}](char* buf,
                                            std::size_t cap) mutable -> Result<std::size_t> {
    if (req.body_file) {
      std::size_t n = std::fread(buf, 1, cap, req.body_file);
      if (n == 0 && std::ferror(req.body_file))
        return make_error(Errc::kInternal, "the uploaded file could not be read back");
      return n;
    }
    std::size_t n = std::min(cap, req.body.size() - at);
    std::copy_n(req.body.data() + at, n, buf);
    at += n;
    return n;
  };
  // Each reader takes its own copy of `source`: an in-memory body starts at 0 in each; a file
  // is shared and rewound.
  auto rewind_source = [&req] {
    if (req.body_file) std::rewind(req.body_file);
  };
  std::unique_ptr<csv::StreamReader> reader;
  std::unique_ptr<vcard::StreamReader> cards;  // a vCard body, card by card
  std::vector<std::string> header;
  if (req.format == ImportFormat::kCsv) {
    reader = std::make_unique<csv::StreamReader>(source, req.charset);
    RP_ASSIGN(bool any, reader->next(header));
    if (!any || (header.size() == 1 && trim(header[0]).empty()))
      return make_error(Errc::kBadRequest, "the file is empty: the first row must name the columns",
                        "file");
  } else {
    // The whole file is read once before anything is written (its encoding and structure
    // checked, nothing kept), then again card by card as the rows are written.
    rewind_source();
    vcard::StreamReader check(source, req.charset);
    vcard::Card card;
    for (;;) {
      RP_ASSIGN(bool more, check.next(card));
      if (!more) break;
    }
    rewind_source();
    cards = std::make_unique<vcard::StreamReader>(source, req.charset);
  }

  // ---- columns → fields
  std::vector<Target> targets(header.size());
  json::Buffer colbuf;
  json::Writer colw(colbuf);
  colw.StartArray();
  json::Buffer ignbuf;
  json::Writer ignw(ignbuf);
  ignw.StartArray();
  auto ignore = [&](const std::string& col, const char* reason) {
    ignw.StartObject();
    ignw.Key("column");
    ignw.String(col);
    ignw.Key("reason");
    ignw.String(reason);
    ignw.EndObject();
  };
  std::set<std::string> seen_targets, seen_headers;
  std::map<std::string, int>
      mapped_fields;  // fields the file writes (the import event's "changed")
  std::map<std::string, const Field*> by_label;
  for (const auto& f : e.fields) {
    by_label.emplace(text::fold(f.name), &f);
    if (!f.label.en.empty()) by_label.emplace(text::fold(f.label.en), &f);
    if (!f.label.zh.empty()) by_label.emplace(text::fold(f.label.zh), &f);
  }
  bool key_mapped = false;
  for (size_t c = 0; c < header.size(); ++c) {
    std::string col(trim(header[c]));
    if (col.empty()) col = "column " + std::to_string(c + 1);
    if (!seen_headers.insert(col).second)
      return make_error(Errc::kBadRequest, "the header names column " + col + " twice", col);
    auto m = mapping.find(col);
    bool explicit_map = m != mapping.end();
    std::string target_name;
    if (explicit_map) {
      target_name = m->second;
      if (target_name.empty()) {
        ignore(col, "skipped");
        continue;
      }
    } else {
      target_name = col;
    }
    Target t;
    std::string fname = target_name, part;
    if (auto dot = target_name.find('.'); dot != std::string::npos) {
      fname = target_name.substr(0, dot);
      part = target_name.substr(dot + 1);
    }
    t.field = e.field(fname);
    if (!t.field && !explicit_map) {
      auto it = by_label.find(text::fold(target_name));
      if (it != by_label.end()) {
        t.field = it->second;
        part.clear();
      }
    }
    bool hidden = t.field && access::field_access(p, e, *t.field) == FieldAccess::kHidden;
    if (!t.field || hidden) {
      if (explicit_map)
        return make_error(Errc::kUnknownField,
                          "column " + col + " maps to " + target_name + ", but " + e.name +
                              " has no field " + fname,
                          fname);
      ignore(col, "unknown");
      continue;
    }
    const bool part_ok =
        part.empty() ||
        (t.field->type == FieldType::kMoney && (part == "amount" || part == "currency")) ||
        (t.field->type == FieldType::kAddress &&
         (part == "street" || part == "city" || part == "region" || part == "postal_code" ||
          part == "country"));
    if (!part_ok) {
      if (explicit_map)
        return make_error(
            Errc::kUnknownField,
            "column " + col + " maps to " + target_name + ": " + fname + " has no part " + part,
            fname);
      ignore(col, "unknown");
      continue;
    }
    if (t.field->readonly || access::field_access(p, e, *t.field) != FieldAccess::kWrite) {
      if (explicit_map)
        return make_error(Errc::kForbidden,
                          "column " + col + " maps to " + t.field->name + ", which you may not set",
                          t.field->name);
      ignore(col, "read-only");
      continue;
    }
    t.part = part;
    std::string full = t.field->name + (part.empty() ? "" : "." + part);
    if (!seen_targets.insert(full).second)
      return make_error(Errc::kBadRequest, "two columns map to " + full, t.field->name);
    if (key_field && t.field == key_field) key_mapped = true;
    mapped_fields.emplace(t.field->name, 0);
    targets[c] = t;
    colw.StartObject();
    colw.Key("column");
    colw.String(col);
    colw.Key("field");
    colw.String(full);
    colw.EndObject();
  }
  colw.EndArray();
  ignw.EndArray();
  if (req.format == ImportFormat::kCsv) {
    if (seen_targets.empty())
      return make_error(Errc::kBadRequest,
                        "no column maps to a field of " + e.name +
                            "; name the columns after fields or their labels, or send a mapping",
                        "mapping");
    if (key_field && !key_mapped)
      return make_error(Errc::kBadRequest,
                        "upsert on " + req.upsert + " needs a column mapped to " + key_field->name,
                        "upsert");
  } else if (key_field && !key_is_email) {
    return make_error(Errc::kBadRequest, "vCard imports upsert on email only", "upsert");
  }

  std::size_t file_rows = 0;  // of a CSV body, blank lines included (the whole-file check)
  if (req.format == ImportFormat::kCsv) {
    // The whole file is read once before anything is written, so an encoding, quoting or size
    // error fails the call and changes nothing; then again from the first row, batch by batch.
    rewind_source();
    {
      csv::StreamReader check(source, req.charset);
      std::vector<std::string> fields;
      for (;;) {
        RP_ASSIGN(bool more, check.next(fields));
        if (!more) break;
        ++file_rows;
      }
      if (file_rows) --file_rows;  // the header
    }
    rewind_source();
    reader = std::make_unique<csv::StreamReader>(source, req.charset);
    RP_ASSIGN(bool any, reader->next(header));
    if (!any) return make_error(Errc::kInternal, "the uploaded file changed while it was read");
  }

  // ---- the import_run record
  Principal runner = p;
  auto admin_role = std::make_shared<access::Role>();
  admin_role->name = "import";
  admin_role->is_admin = true;
  runner.role = admin_role;
  runner.channel = "import";
  Principal ip = p;
  ip.channel = "import";
  const std::string started = format_iso8601(records_.clock_.now_ms());
  std::int64_t run_id = 0;
  {
    json::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    body.AddMember("entity", json::str(e.name, a), a);
    body.AddMember("mode", json::str(req.dry_run ? "dry_run" : "commit", a), a);
    body.AddMember("status", "running", a);
    body.AddMember("format", json::str(req.format == ImportFormat::kCsv ? "csv" : "vcard", a), a);
    if (!req.file_name.empty())
      body.AddMember("file_name", json::str(req.file_name.substr(0, 255), a), a);
    if (!req.upsert.empty()) body.AddMember("upsert", json::str(req.upsert, a), a);
    body.AddMember("started_at", json::str(started, a), a);
    RP_ASSIGN(auto created, records_.create(runner, *run_entity, json::stringify(body)));
    run_id = created.id;
  }

  // ---- rows, in batches
  // The batches are large write transactions back to back: the store may defer its upkeep
  // between them (SQLite: the WAL checkpoint) to the end of the import (this scope's).
  std::unique_ptr<storage::Store::BulkWrites> bulk_writes;
  if (!req.dry_run) bulk_writes = records_.store_.bulk_writes();
  // A load into a nearly empty table (moving to Rapport): its non-unique indexes are dropped
  // and built once after the last batch (each in a write transaction of its own), instead of
  // taking every row one by one. Unique indexes stay (they enforce the keys as ever); reads
  // meanwhile are correct, without those indexes slower; creates, updates and deletes beside
  // the import write the table as ever. A server killed meanwhile re-creates them at start-up
  // (sync_table's statements). Only with a store that has a bulk mode (SQLite; measured there).
  std::vector<IndexDdl> deferred;
  // Of such a load of at least RecordOptions::import_terms_after_rows rows: the records' term
  // lists only, their term rows built after the last batch in key order (storage/term_build.h;
  // each batch also writes the entity's term_build row, so start-up builds what a killed server
  // left). Search meanwhile says index_pending; writes beside the load and the build are noted
  // by the store and the build takes those records' lists again.
  bool terms_after = false;
  // Not while the entity's term rows are pending (a build of an earlier import, or of one a
  // killed server left, runs in the background and creates these indexes): this one then takes
  // the ordinary path (its term rows written with its records).
  if (bulk_writes && file_rows >= static_cast<std::size_t>(kImportDeferIndexesMinRows) &&
      !records_.store_.pending_terms().pending(e.name)) {
    const auto limit = static_cast<std::int64_t>(file_rows / kImportDeferIndexesShare);
    const SqlValue bound[] = {limit};
    RP_ASSIGN(auto tx, records_.store_.write());
    RP_ASSIGN(
        auto had,
        tx->query("SELECT count(*) FROM (SELECT 1 FROM " + quote(e.name) + " LIMIT ?)", bound));
    if (!had.rows.empty() && as_int(had.rows[0][0]) < limit) {
      deferred = deferrable_indexes(e, records_.store_.dialect());
      for (const auto& ix : deferred) RP_TRY(tx->exec("DROP INDEX IF EXISTS " + quote(ix.name)));
      RP_TRY(tx->commit());
      const std::size_t terms_min = records_.options_.import_terms_after_rows;
      terms_after = terms_min > 0 && file_rows >= terms_min && e.has_searchable() &&
                    records_.store_.pending_terms().begin(e.name);
      spdlog::info("import {}: {} rows into {} (fewer than {} before): {} indexes{} built after it",
                   run_id, file_rows, e.name, limit, deferred.size(),
                   terms_after ? " and the term rows" : "");
    }
  }
  // Builds the dropped indexes (and the term rows) now; on every way out of the import (a
  // failed one too) unless a committed one handed them to the background (below).
  auto build_deferred = [&]() -> Status {
    auto indexes = std::move(deferred);
    deferred.clear();
    const bool terms = terms_after;
    terms_after = false;
    return records_.finish_import_build(e, run_id, indexes, terms);
  };
  struct OnExit {
    std::function<void()> fn;
    ~OnExit() { fn(); }
  } build_on_exit{[&] {
    if (auto st = build_deferred(); !st.ok())  // start-up builds what is left
      spdlog::warn("import {}: could not build the indexes of {}: {}", run_id, e.name,
                   st.error().message);
  }};
  std::size_t total = 0, created = 0, updated = 0, error_count = 0;
  std::vector<RowError> errors;
  std::vector<RowDuplicates> duplicates;  // at most kMaxImportErrors rows
  std::size_t duplicate_count = 0;        // rows created with likely duplicates
  const bool dedupe = records_.hooks_.dedupe_for(e.name) != nullptr;
  Deduper::FactsCache facts_cache;  // across batches (Deduper::on_import)
  std::vector<std::size_t> skipped_rows;
  std::set<std::size_t> bad_rows;
  auto note_error = [&](RowError err) {
    ++error_count;
    if (errors.size() < static_cast<size_t>(kMaxImportErrors)) errors.push_back(std::move(err));
  };
  // Rows imported as they are but with something the user should know (a vCard's ORG that
  // names no account, or several, the user may read): in the answer, the run and its report.
  std::vector<RowError> warnings;
  std::size_t warning_count = 0;
  auto note_warning = [&](RowError w) {
    ++warning_count;
    if (warnings.size() < static_cast<size_t>(kMaxImportErrors)) warnings.push_back(std::move(w));
  };
  // email (lower case) → id, for upsert=email; filled on first use
  std::optional<std::unordered_map<std::string, std::int64_t>> email_ids;

  auto convert = [&](const std::vector<std::string>& cells, Row& row) {
    auto& a = row.input.GetAllocator();
    if (cells.size() > header.size()) {
      row.errors.push_back({row.number, "", "bad_request",
                            "the row has " + std::to_string(cells.size()) + " fields, the header " +
                                std::to_string(header.size())});
      return;
    }
    std::map<const Field*, std::pair<std::string, std::string>> money;  // amount, currency
    for (size_t c = 0; c < cells.size(); ++c) {
      const Target& t = targets[c];
      if (!t.field) continue;
      std::string_view cell = trim(cells[c]);
      if (cell.empty()) continue;
      const Field& f = *t.field;
      if (key_field == &f && !key_is_email) row.key = cell;
      json::Value v;
      switch (f.type) {
        case FieldType::kInteger: {
          std::int64_t n;
          if (parse_int(cell, n))
            v.SetInt64(n);
          else
            v = json::str(cell, a);
          break;
        }
        case FieldType::kDecimal: {
          double d;
          if (parse_double(cell, d))
            v.SetDouble(d);
          else
            v = json::str(cell, a);
          break;
        }
        case FieldType::kBoolean: {
          auto b = parse_bool(cell);
          if (b)
            v.SetBool(*b);
          else
            v = json::str(cell, a);
          break;
        }
        case FieldType::kDate:
          v = json::str(normalise_date(cell), a);
          break;
        case FieldType::kEnum:
          v = json::str(enum_value(f, cell), a);
          break;
        case FieldType::kMultiEnum:
        case FieldType::kPhoneList:
        case FieldType::kEmailList: {
          v.SetArray();
          for (const auto& entry : split_list(cell))
            v.PushBack(json::str(f.type == FieldType::kMultiEnum ? enum_value(f, entry) : entry, a),
                       a);
          break;
        }
        case FieldType::kMoney: {
          auto& slot = money[&f];
          if (t.part == "currency") {
            slot.second = cell;
          } else {
            auto [amount, cur] = split_money(cell);
            slot.first = amount;
            if (!cur.empty() && slot.second.empty()) slot.second = cur;
          }
          continue;
        }
        case FieldType::kAddress: {
          json::Value* obj = nullptr;
          if (auto it = row.input.FindMember(f.name.c_str()); it != row.input.MemberEnd())
            obj = &it->value;
          else {
            row.input.AddMember(json::str(f.name, a), json::Value(rapidjson::kObjectType), a);
            obj = &row.input[f.name.c_str()];
          }
          set_member(*obj, t.part.empty() ? "street" : t.part, json::str(cell, a), a);
          continue;
        }
        case FieldType::kJson: {
          auto doc = json::parse(cell);
          if (!doc.ok()) {
            row.errors.push_back(
                {row.number, f.name, "validation_failed", f.name + " is not valid JSON"});
            continue;
          }
          v.CopyFrom(*doc, a);
          break;
        }
        default:  // text, long_text, datetime, reference
          v = json::str(cell, a);
      }
      set_member(row.input, f.name, std::move(v), a);
    }
    for (auto& [f, parts] : money) {
      auto& [amount, cur] = parts;
      if (amount.empty()) continue;
      if (cur.empty()) {
        const json::Value* c = json::member(row.input, "currency");
        cur = c && c->IsString() && c->GetStringLength() == 3 ? c->GetString() : "CNY";
      }
      auto units = minor_units(amount, currency_exponent(cur));
      if (!units) {
        row.errors.push_back({row.number, f->name, "validation_failed",
                              f->name + ": " + amount + " is not an amount in " + cur +
                                  " (at most " + std::to_string(currency_exponent(cur)) +
                                  " decimals)"});
        continue;
      }
      json::Value m(rapidjson::kObjectType);
      m.AddMember("amount", *units, a);
      m.AddMember("currency", json::str(cur, a), a);
      set_member(row.input, f->name, std::move(m), a);
    }
  };

  auto row_email_keys = [&](const Row& row) {
    std::vector<std::string> keys;
    if (!key_is_email) return keys;
    const json::Value* v = json::member(row.input, key_field->name);
    if (!v || !v->IsArray()) return keys;
    for (const auto& entry : v->GetArray()) {
      const json::Value* val = entry.IsObject() ? json::member(entry, "value") : &entry;
      if (val && val->IsString()) keys.push_back(lower_ascii(trim(val->GetString())));
    }
    return keys;
  };

  // The rows of a batch that update a record that existed before it, each the first row of the
  // batch to name its key (or one of its emails) and its record, updated together
  // (RecordService::update_many); a later row naming the same key or record, or one created by
  // the batch, goes row by row after them, so that the file's order still decides.
  struct BulkUpdated {
    std::vector<size_t> rows;  // indexes into the batch
    std::vector<std::int64_t> ids;
    RecordService::BulkUpdate result;
  };
  auto update_existing = [&](storage::Tx& tx, const std::vector<Row>& rows,
                             const std::set<std::size_t>& excluded, const std::vector<char>& done,
                             const std::unordered_map<std::string, std::int64_t>& existing_keys)
      -> Result<BulkUpdated> {
    BulkUpdated up;
    std::vector<const json::Value*> inputs;
    std::set<std::string> named;  // keys and emails named by an earlier row
    std::set<std::int64_t> claimed;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (excluded.count(i)) continue;
      const Row& row = rows[i];
      std::int64_t id = 0;
      bool earlier = false;
      if (key_is_email) {
        for (const auto& k : row_email_keys(row)) {
          earlier = !named.insert(k).second || earlier;
          if (auto it = email_ids->find(k); !id && it != email_ids->end()) id = it->second;
        }
      } else if (!row.key.empty()) {
        earlier = !named.insert(row.key).second;
        if (auto it = existing_keys.find(row.key); it != existing_keys.end()) id = it->second;
      }
      if (done[i] || earlier || !id || !claimed.insert(id).second) continue;
      up.rows.push_back(i);
      up.ids.push_back(id);
      inputs.push_back(&row.input);
    }
    if (up.rows.empty()) return up;
    RP_ASSIGN(up.result, records_.update_many(tx, ip, e, up.ids, inputs));
    return up;
  };

  // index_building: the records' term rows are still being built (the run's index_status)
  auto progress = [&](const char* status, const std::string& message,
                      bool index_building = false) -> Status {
    json::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    body.AddMember("rows", static_cast<std::int64_t>(total), a);
    body.AddMember("created", static_cast<std::int64_t>(created), a);
    body.AddMember("updated", static_cast<std::int64_t>(updated), a);
    body.AddMember("skipped", static_cast<std::int64_t>(bad_rows.size()), a);
    body.AddMember("error_count", static_cast<std::int64_t>(error_count), a);
    body.AddMember("duplicate_count", static_cast<std::int64_t>(duplicate_count), a);
    body.AddMember("status", json::str(status, a), a);
    if (std::string_view(status) != "running") {
      body.AddMember("finished_at", json::str(format_iso8601(records_.clock_.now_ms()), a), a);
      auto row_notes = [&](const std::vector<RowError>& notes) {  // errors, warnings
        json::Value list(rapidjson::kArrayType);
        for (const auto& n : notes) {
          json::Value o(rapidjson::kObjectType);
          o.AddMember("row", static_cast<std::int64_t>(n.row), a);
          o.AddMember("field", json::str(n.field, a), a);
          o.AddMember("code", json::str(n.code, a), a);
          o.AddMember("message", json::str(n.message, a), a);
          list.PushBack(o, a);
        }
        return list;
      };
      body.AddMember("errors", row_notes(errors), a);
      body.AddMember("warnings", row_notes(warnings), a);
      json::Buffer dbuf;
      json::Writer dw(dbuf);
      write_duplicates(dw, duplicates, !req.dry_run);
      auto dupes_doc = json::parse(std::string_view(dbuf.GetString(), dbuf.GetSize()));
      if (dupes_doc.ok()) {
        json::Value dv;
        dv.CopyFrom(*dupes_doc, a);
        body.AddMember("duplicates", dv, a);
      }
      if (!message.empty()) body.AddMember("message", json::str(message, a), a);
      if (index_building) body.AddMember("index_status", "building", a);
    }
    auto r = records_.update(runner, *run_entity, run_id, json::stringify(body));
    if (!r.ok()) return std::move(r).error();
    return {};
  };

  std::size_t batch_created = 0, batch_updated = 0;
  // What a written batch leaves (its rows, prepared inputs, insert_many's buffers) is freed by a
  // parallel::Background job, on a pool thread beside the writer (the last two kept waiting).
  std::vector<std::shared_ptr<void>> spent;
  std::size_t trimmed_to = 0;  // resident size after the last release_free_memory
  std::deque<parallel::Background> disposing;
  auto dispose = [&] {
    while (disposing.size() >= 2) disposing.pop_front();  // waits for it
    disposing.emplace_back([s = std::make_shared<std::vector<std::shared_ptr<void>>>(
                                std::move(spent))] { s->clear(); });
    spent.clear();
  };
  // The batch's inputs prepared ahead (Row::prepared indexes them), CSV only.
  std::vector<RecordService::PreparedInsert> batch_prepared;
  // Entities without hooks take the bulk path first: the rows whose upsert key is new go through
  // RecordService::insert_many (validated together, then multi-row inserts); rows that update
  // (key found, or repeated in the batch) follow one by one in savepoints. Entities with hooks,
  // and a batch whose bulk write the database refused, go row by row.
  const bool hooks = !records_.hooks_.for_entity(e.name).empty();
  // Writes one batch; rows that fail are reported and skipped, never half-written.
  auto write_batch = [&](std::vector<Row>& rows) -> Status {
    std::set<std::size_t> excluded;  // indexes into rows that failed
    std::map<std::size_t, RowError> failures;
    bool bulk = !hooks;
    std::vector<RowDuplicates> kept_dupes;  // of the attempt that committed
    std::size_t batch_dupes_count = 0;
    for (int attempt = 0;; ++attempt) {
      RP_ASSIGN(auto tx, records_.store_.write());
      if (key_is_email && !email_ids) {
        email_ids.emplace();
        RP_ASSIGN(auto found, tx->query("SELECT \"id\", " + quote(key_field->name) + " FROM " +
                                        quote(e.name) + " WHERE deleted_at IS NULL AND " +
                                        quote(key_field->name) + " IS NOT NULL"));
        for (const auto& r : found.rows) {
          auto doc = json::parse(as_text(r[1]));
          if (!doc.ok() || !doc->IsArray()) continue;
          for (const auto& entry : doc->GetArray()) {
            const json::Value* val = entry.IsObject() ? json::member(entry, "value") : &entry;
            if (val && val->IsString())
              email_ids->emplace(lower_ascii(val->GetString()), as_int(r[0]));
          }
        }
      }
      std::unordered_map<std::string, std::int64_t> new_emails;
      std::vector<Event> events;  // per record, for the entity's after_commit hooks
      batch_created = batch_updated = 0;
      bool retry = false;
      std::vector<char> done(rows.size(), 0);
      std::map<std::size_t, RowError> bulk_failures;
      // records created by this batch (row index, id, stored row), for duplicate detection
      std::vector<size_t> created_at;
      std::vector<std::int64_t> created_ids;
      std::vector<std::vector<SqlValue>> created_rows;
      std::vector<std::optional<dedupe::Facts>> created_facts;  // where insert_many has them
      // upsert key → id of the live record that had it before the batch (bulk path)
      std::unordered_map<std::string, std::int64_t> existing_keys;
      // The rows after insert_many run without a savepoint each on the bulk path's first attempt:
      // SQLite's SAVEPOINT/RELEASE inside a transaction that has written many pages cost ~4 ms
      // a row (an upsert ran at ~200 rows per CPU-second). Without hooks a row's update or
      // insert fails before it writes, or in one statement that SQLite undoes alone; a failed
      // row then starts the batch again without it, that attempt with a savepoint per row.
      const bool row_savepoints = !bulk || attempt > 0;
      if (bulk) {
        // rows that create a record: upsert key new to the table and first in the batch
        if (key_field && !key_is_email) {
          std::vector<SqlValue> keys;
          auto flush = [&]() -> Status {
            if (keys.empty()) return {};
            std::string marks;
            for (size_t k = 0; k < keys.size(); ++k) marks += k ? ", ?" : "?";
            RP_ASSIGN(auto found, tx->query("SELECT \"id\", " + quote(key_field->name) + " FROM " +
                                                quote(e.name) + " WHERE deleted_at IS NULL AND " +
                                                quote(key_field->name) + " IN (" + marks + ")",
                                            keys));
            for (const auto& r : found.rows) existing_keys.emplace(as_text(r[1]), as_int(r[0]));
            keys.clear();
            return {};
          };
          // in key order: one sorted pass over the key's index
          std::set<std::string_view> asked;
          for (size_t i = 0; i < rows.size(); ++i)
            if (!excluded.count(i) && !rows[i].key.empty()) asked.insert(rows[i].key);
          for (const auto& key : asked) {
            keys.emplace_back(std::string(key));
            if (keys.size() >= 500) RP_TRY(flush());
          }
          RP_TRY(flush());
        }
        std::vector<const json::Value*> inputs;
        std::vector<RecordService::PreparedInsert*> ready;  // per input: its work done ahead
        std::vector<size_t> which;
        std::set<std::string_view> seen_keys;
        std::set<std::string> seen_emails;
        for (size_t i = 0; i < rows.size(); ++i) {
          if (excluded.count(i)) continue;
          const Row& row = rows[i];
          bool update = false;
          if (key_is_email) {
            for (const auto& k : row_email_keys(row))
              if (email_ids->count(k) || !seen_emails.insert(k).second) update = true;
          } else if (key_field && !row.key.empty()) {
            update = existing_keys.count(row.key) || !seen_keys.insert(row.key).second;
          }
          if (update || !access::can_create(p, e.name)) continue;  // row by row below
          inputs.push_back(&row.input);
          ready.push_back(row.prepared < batch_prepared.size() ? &batch_prepared[row.prepared]
                                                               : nullptr);
          which.push_back(i);
        }
        auto ins = records_.insert_many(*tx, ip, e, inputs, {}, terms_after, ready);
        if (!ins.ok()) {
          // the database refused a statement: the batch again, row by row
          spdlog::info("import {}: bulk write of a batch failed ({}); row by row", run_id,
                       ins.error().message);
          bulk = false;
          continue;
        }
        for (size_t k = 0; k < which.size(); ++k) {
          size_t i = which[k];
          done[i] = 1;
          if (auto& err = ins->errors[k]) {
            if (!is_row_error(err->code)) return *err;
            bulk_failures[i] =
                RowError{rows[i].number, err->field, error_code(err->code), err->message};
            continue;
          }
          ++batch_created;
          for (const auto& key : row_email_keys(rows[i])) new_emails.emplace(key, ins->ids[k]);
          if (dedupe) {
            created_at.push_back(i);
            created_ids.push_back(ins->ids[k]);
            created_rows.push_back(std::move(ins->rows[k]));
            created_facts.push_back(k < ins->facts.size() ? std::move(ins->facts[k])
                                                          : std::nullopt);
          }
        }
        spent.push_back(std::make_shared<RecordService::BulkInsert>(std::move(*ins)));
        // rows that update a record that existed before the batch, each the first row of the
        // batch to name its key and its record: RecordService::update_many; the rest row by row
        if (key_field) {
          RP_ASSIGN(auto up, update_existing(*tx, rows, excluded, done, existing_keys));
          for (size_t k = 0; k < up.rows.size(); ++k) {
            const size_t i = up.rows[k];
            if (auto& err = up.result.errors[k]) {
              if (!is_row_error(err->code)) return *err;
              RowError re{rows[i].number, err->field, error_code(err->code), err->message};
              if (up.result.aborted == k) {  // the transaction holds part of the batch: again
                excluded.insert(i);
                failures[i] = std::move(re);
                retry = true;
                break;
              }
              done[i] = 1;
              bulk_failures[i] = std::move(re);
              continue;
            }
            done[i] = 1;
            ++batch_updated;
            facts_cache.erase(up.ids[k]);
            if (auto& ev = up.result.events[k]) events.push_back(std::move(*ev));
            for (const auto& key : row_email_keys(rows[i])) new_emails.emplace(key, up.ids[k]);
          }
        }
      }
      for (size_t i = 0; i < rows.size() && !retry; ++i) {
        if (excluded.count(i) || done[i]) continue;
        Row& row = rows[i];
        json::Document copy;
        json::Document* input = &row.input;
        if (hooks || attempt > 0) {  // prepare hooks may consume members: keep the original
          copy.CopyFrom(row.input, copy.GetAllocator());
          input = &copy;
        }
        std::int64_t existing = 0;
        if (key_is_email) {
          for (const auto& k : row_email_keys(row)) {
            if (auto it = new_emails.find(k); it != new_emails.end())
              existing = it->second;
            else if (auto it2 = email_ids->find(k); it2 != email_ids->end())
              existing = it2->second;
            if (existing) break;
          }
        } else if (auto known = existing_keys.find(row.key); known != existing_keys.end()) {
          existing = known->second;
        } else if (key_field && !row.key.empty()) {
          SqlValue kp[] = {row.key};
          RP_ASSIGN(auto found,
                    tx->query("SELECT \"id\" FROM " + quote(e.name) + " WHERE " +
                                  quote(key_field->name) + " = ? AND deleted_at IS NULL",
                              kp));
          if (!found.rows.empty()) existing = as_int(found.rows[0][0]);
        }
        if (row_savepoints) RP_TRY(tx->exec("SAVEPOINT import_row"));
        Status st;
        std::int64_t written_id = 0;
        if (existing) {
          facts_cache.erase(existing);
          auto u = records_.update_one(*tx, ip, e, existing, *input, std::nullopt);
          if (u.ok()) {
            ++batch_updated;
            written_id = existing;
            if (u->event) events.push_back(std::move(*u->event));
          } else {
            st = std::move(u).error();
          }
        } else if (!access::can_create(p, e.name)) {
          st = make_error(Errc::kForbidden, "no " + e.name + " with this " + req.upsert +
                                                " to update, and you may not create " + e.plural);
        } else {
          auto ins = records_.insert_one(*tx, ip, e, *input);
          if (ins.ok()) {
            ++batch_created;
            written_id = ins->id;
            if (dedupe) {
              created_at.push_back(i);
              created_ids.push_back(ins->id);
              created_rows.push_back(ins->row);
              created_facts.emplace_back();
            }
            events.push_back(std::move(ins->event));
          } else {
            st = std::move(ins).error();
          }
        }
        if (st.ok()) {
          if (row_savepoints) RP_TRY(tx->exec("RELEASE SAVEPOINT import_row"));
          for (const auto& k : row_email_keys(row)) new_emails.emplace(k, written_id);
          continue;
        }
        Error err = std::move(st).error();
        if (!is_row_error(err.code)) return err;
        excluded.insert(i);
        failures[i] = RowError{row.number, err.field, error_code(err.code), err.message};
        // PostgreSQL refuses everything after a failed statement, savepoints included: start
        // the batch again without this row (so does a row without a savepoint).
        if (!row_savepoints || !tx->exec("ROLLBACK TO SAVEPOINT import_row").ok()) retry = true;
      }
      if (retry) continue;
      // Only rows whose insert succeeded are in created_at (a failed row's savepoint is rolled
      // back before anything of it is noted there).
      std::vector<RowDuplicates> batch_dupes;
      if (dedupe && !created_ids.empty()) {
        std::vector<const std::vector<SqlValue>*> ptrs;
        ptrs.reserve(created_rows.size());
        for (const auto& r : created_rows) ptrs.push_back(&r);
        if (facts_cache.size() > kMaxImportFactsCache) facts_cache.clear();
        RP_ASSIGN(auto found, Deduper(records_).on_import(*tx, p, e, created_ids, ptrs,
                                                          std::move(created_facts), facts_cache));
        std::unordered_map<std::int64_t, std::size_t> row_of_id;
        for (size_t k = 0; k < created_ids.size(); ++k)
          row_of_id.emplace(created_ids[k], rows[created_at[k]].number);
        for (size_t k = 0; k < found.size(); ++k) {
          if (found[k].empty()) continue;
          if (found[k].size() > kMaxImportCandidates) found[k].resize(kMaxImportCandidates);
          RowDuplicates d{rows[created_at[k]].number, created_ids[k], std::move(found[k]), {}};
          for (const auto& c : d.candidates) {
            auto it = row_of_id.find(c.id);
            d.candidate_rows.push_back(it == row_of_id.end() ? 0 : it->second);
          }
          batch_dupes.push_back(std::move(d));
        }
      }
      for (auto& [i, err] : bulk_failures) {
        excluded.insert(i);
        failures[i] = std::move(err);
      }
      batch_dupes_count = batch_dupes.size();
      kept_dupes = std::move(batch_dupes);
      if (!req.dry_run) {
        RP_TRY(tx->commit());
        if (batch_created + batch_updated > 0) {
          // one event for the batch (WebSocket clients refresh lists once, not per row)
          Event summary{e.name, run_id, "imported", {},
                        0,      0,      p.user_id,  format_iso8601(records_.clock_.now_ms())};
          summary.owner_id = p.user_id;
          summary.team_id = p.team_id;
          summary.created = static_cast<std::int64_t>(batch_created);
          summary.updated = static_cast<std::int64_t>(batch_updated);
          for (const auto& [col, t] : mapped_fields) summary.changed.push_back(col);
          records_.publish_summary(e, std::move(events), summary);
        }
        if (key_is_email)
          for (auto& [k, id] : new_emails) email_ids->emplace(k, id);
      }
      spent.push_back(
          std::make_shared<std::vector<std::vector<SqlValue>>>(std::move(created_rows)));
      break;
    }
    duplicate_count += batch_dupes_count;
    for (auto& d : kept_dupes)
      if (duplicates.size() < static_cast<size_t>(kMaxImportErrors))
        duplicates.push_back(std::move(d));
    for (auto& [i, err] : failures) {
      bad_rows.insert(rows[i].number);
      skipped_rows.push_back(rows[i].number);
      note_error(std::move(err));
    }
    created += batch_created;
    updated += batch_updated;
    return {};
  };

  auto process = [&](std::vector<Row>& batch) -> Status {
    // rows whose cells already failed are reported and left out of the write
    std::vector<Row> good;
    good.reserve(batch.size());
    for (auto& row : batch) {
      if (!row.errors.empty()) {
        bad_rows.insert(row.number);
        skipped_rows.push_back(row.number);
        for (auto& err : row.errors) note_error(std::move(err));
      } else {
        good.push_back(std::move(row));
      }
    }
    batch.clear();
    if (!good.empty()) RP_TRY(write_batch(good));
    spent.push_back(std::make_shared<std::vector<Row>>(std::move(good)));
    spent.push_back(
        std::make_shared<std::vector<RecordService::PreparedInsert>>(std::move(batch_prepared)));
    batch_prepared.clear();
    dispose();
    release_free_memory(trimmed_to);
    if (!req.dry_run) RP_TRY(progress("running", ""));
    return {};
  };

  auto fail = [&](Error err) -> Error {
    auto st = progress("failed", err.message);
    if (!st.ok())
      spdlog::warn("import {}: could not record the failure: {}", run_id, st.error().message);
    return err;
  };

  // A vCard's ORG → the record's account (R-IMP-vCard, audit 4.13): a reference field
  // account_id to the account entity, writable by the user and not given by the card, is filled
  // when exactly one live account the user may read has that name, compared folded
  // (text::fold_spaced: case, full/half width, inner whitespace). Looked up per batch for its
  // distinct names (RecordService::ids_by_title: one search-index lookup per name, then the
  // candidates' names in one read).
  const Field* org_ref = e.field("account_id");
  auto account_entity = records_.registry_.get("account");
  if (!org_ref || org_ref->type != FieldType::kReference || org_ref->reference != "account" ||
      !account_entity || access::field_access(p, e, *org_ref) != FieldAccess::kWrite)
    org_ref = nullptr;
  auto link_orgs = [&](std::vector<Row>& rows) -> Status {
    if (!org_ref) return {};
    std::vector<Row*> linking;
    std::set<std::string> names;
    for (auto& row : rows) {
      if (row.org.empty() || !row.errors.empty() || json::member(row.input, org_ref->name))
        continue;
      linking.push_back(&row);
      names.insert(row.org);
    }
    if (names.empty()) return {};
    // name → live accounts of that name (folded: case, width, inner spaces) the user may read
    std::map<std::string, std::vector<std::int64_t>> ids;
    const std::vector<std::string> list(names.begin(), names.end());
    auto found = records_.ids_by_title(p, *account_entity, list);
    if (found.ok())
      ids = std::move(*found);
    else if (found.error().code != Errc::kForbidden)  // may not read accounts: no account
      return std::move(found).error();
    for (Row* row : linking) {
      auto it = ids.find(row->org);
      const std::size_t n = it == ids.end() ? 0 : it->second.size();
      if (n == 1) {
        auto& a = row->input.GetAllocator();
        set_member(row->input, org_ref->name, json::str(std::to_string(it->second[0]), a), a);
        continue;
      }
      note_warning({row->number, org_ref->name, n == 0 ? "org_no_account" : "org_ambiguous",
                    n == 0 ? "ORG " + row->org +
                                 ": no account of that name (that you may read); "
                                 "imported without an account"
                           : "ORG " + row->org + ": " + std::to_string(n) +
                                 " accounts have that name; imported without an account"});
    }
    return {};
  };

  std::vector<Row> batch;
  batch.reserve(kImportBatchRows);
  if (req.format == ImportFormat::kCsv) {
    // A pipeline of two stages: the next batch is read from the file, its cells converted and
    // (on the bulk path) its rows' insert work that needs no database done
    // (RecordService::prepare_inserts) as a parallel::Background job, on another core, while
    // this thread (the writer) writes the current batch. Only the writer reads or writes the
    // database, in the file's order as before, so what a batch sees (keys, duplicates of earlier
    // rows, references) is unchanged; a row whose insert turns out not to be (an update, a
    // refused one, a retried batch) has its prepared work dropped and done again if needed.
    struct Ahead {
      std::vector<Row> rows;
      std::vector<RecordService::PreparedInsert> prepared;
      std::size_t rows_read = 0;   // not blank
      std::optional<Error> error;  // the reader's (the batch is then not written)
      bool end = false;            // the file has no more rows
    };
    // Rows are prepared while most rows of the last batch were created: an upsert of existing
    // records would throw the work away.
    bool prepare_ahead = !hooks && access::can_create(p, e.name);
    auto read_ahead = [&](Ahead& a, bool prepare) {
      std::vector<std::vector<std::string>> cells_of;
      cells_of.reserve(kImportBatchRows);
      a.rows.reserve(kImportBatchRows);
      std::vector<std::string> cells;
      while (a.rows.size() < static_cast<size_t>(kImportBatchRows)) {
        auto more = reader->next(cells);
        if (!more.ok()) {
          a.error = std::move(more).error();
          return;
        }
        if (!*more) {
          a.end = true;
          break;
        }
        if (std::all_of(cells.begin(), cells.end(),
                        [](const std::string& c) { return trim(c).empty(); }))
          continue;  // blank line
        ++a.rows_read;
        Row& row = a.rows.emplace_back();
        row.number = reader->record();
        cells_of.push_back(std::move(cells));
        cells.clear();
      }
      // each row's conversion is its own: cells in, JSON input, key and errors out
      parallel::for_ranges(cells_of.size(), [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) convert(cells_of[i], a.rows[i]);
      });
      if (!prepare) return;
      std::vector<const json::Value*> inputs;
      for (auto& row : a.rows) {
        if (!row.errors.empty()) continue;
        row.prepared = inputs.size();
        inputs.push_back(&row.input);
      }
      a.prepared = records_.prepare_inserts(ip, e, inputs);
    };
    auto next = std::make_unique<Ahead>();
    std::optional<parallel::Background> reading;
    auto start_reading = [&] {
      reading.emplace(
          [&read_ahead, a = next.get(), prepare = prepare_ahead] { read_ahead(*a, prepare); });
    };
    start_reading();
    for (;;) {
      reading->wait();
      reading.reset();
      std::unique_ptr<Ahead> ahead = std::move(next);
      total += ahead->rows_read;
      if (ahead->error) return fail(std::move(*ahead->error));
      const bool last = ahead->end;
      if (!last) {
        next = std::make_unique<Ahead>();
        start_reading();
      }
      batch = std::move(ahead->rows);
      batch_prepared = std::move(ahead->prepared);
      ahead.reset();
      if (last && batch.empty()) break;
      const std::size_t created_before = created;
      const auto good_rows = static_cast<std::size_t>(
          std::count_if(batch.begin(), batch.end(), [](const Row& r) { return r.errors.empty(); }));
      if (auto st = process(batch); !st.ok()) return fail(std::move(st).error());
      batch_prepared.clear();
      if (!hooks && access::can_create(p, e.name) && good_rows > 0)
        prepare_ahead = 2 * (created - created_before) >= good_rows;
      if (last) break;
    }
  } else {
    vcard::Card card;
    for (;;) {
      auto more = cards->next(card);
      if (!more.ok()) return fail(std::move(more).error());
      if (!*more) break;
      ++total;
      Row& row = batch.emplace_back();
      row.number = cards->cards();
      card_to_row(e, card, row);
      if (batch.size() >= static_cast<size_t>(kImportBatchRows)) {
        if (auto st = link_orgs(batch); !st.ok()) return fail(std::move(st).error());
        if (auto st = process(batch); !st.ok()) return fail(std::move(st).error());
      }
    }
    if (auto st = link_orgs(batch); !st.ok()) return fail(std::move(st).error());
  }
  if (!batch.empty() || total == 0)
    if (auto st = process(batch); !st.ok()) return fail(std::move(st).error());
  std::stable_sort(duplicates.begin(), duplicates.end(),
                   [](const RowDuplicates& x, const RowDuplicates& y) { return x.row < y.row; });
  // Every row is committed. The term rows and dropped indexes of a large load are built in the
  // background (serve): the import answers now, with index_pending, and its run says
  // index_status "building" until RecordService::mark_import_runs_indexed. Elsewhere (tools)
  // they are built now; an index that cannot be built now is built at the next start-up.
  const bool background = terms_after && records_.options_.term_builds_in_background;
  if (!background)
    if (auto st = build_deferred(); !st.ok())
      spdlog::warn("import {}: could not build the indexes of {}: {}", run_id, e.name,
                   st.error().message);
  // also an import beside a build of this entity's term rows (the ordinary path): search still
  // says index_pending for the entity until that build ends
  const bool index_pending = !req.dry_run && records_.store_.pending_terms().pending(e.name);
  auto completed = progress("completed", "", index_pending);
  if (background) {
    auto indexes = std::move(deferred);
    deferred.clear();
    terms_after = false;
    spdlog::info(
        "import {}: {} rows of {} committed; term rows and {} indexes built in the "
        "background",
        run_id, created + updated, e.name, indexes.size());
    records_.build_import_in_background(e, run_id, std::move(indexes), true,
                                        std::move(bulk_writes));
  } else if (index_pending && !records_.store_.pending_terms().pending(e.name)) {
    // the build ended between the check and the run's write: its marking may have missed it
    if (auto st = records_.mark_import_runs_indexed(e.name); !st.ok())
      spdlog::warn("import {}: could not mark the run indexed: {}", run_id, st.error().message);
  }
  RP_TRY(completed);

  std::sort(skipped_rows.begin(), skipped_rows.end());
  std::stable_sort(errors.begin(), errors.end(),
                   [](const RowError& x, const RowError& y) { return x.row < y.row; });
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("import_id");
  w.String(std::to_string(run_id));
  w.Key("entity");
  w.String(e.name);
  w.Key("mode");
  w.String(req.dry_run ? "dry_run" : "commit");
  w.Key("rows");
  w.Uint64(total);
  w.Key("valid");
  w.Uint64(total - bad_rows.size());
  w.Key(req.dry_run ? "would_create" : "created");
  w.Uint64(created);
  w.Key(req.dry_run ? "would_update" : "updated");
  w.Uint64(updated);
  w.Key("skipped");
  w.Uint64(bad_rows.size());
  w.Key("skipped_rows");
  w.StartArray();
  for (size_t k = 0; k < skipped_rows.size() && k < static_cast<size_t>(kMaxImportErrors); ++k)
    w.Uint64(skipped_rows[k]);
  w.EndArray();
  // errors and warnings: {row, field (null when none), code, message}
  for (const auto& [key, notes] :
       {std::pair{"errors", &errors}, std::pair{"warnings", &warnings}}) {
    w.Key(key);
    w.StartArray();
    for (const auto& n : *notes) {
      w.StartObject();
      w.Key("row");
      w.Uint64(n.row);
      w.Key("field");
      if (n.field.empty())
        w.Null();
      else
        w.String(n.field);
      w.Key("code");
      w.String(n.code);
      w.Key("message");
      w.String(n.message);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("warning_count");
  w.Uint64(warning_count);
  w.Key("duplicates");
  write_duplicates(w, duplicates, !req.dry_run);
  w.Key("duplicate_count");
  w.Uint64(duplicate_count);
  w.Key("error_count");
  w.Uint64(error_count);
  w.Key("errors_truncated");
  w.Bool(error_count > errors.size());
  w.Key("columns");
  w.RawValue(colbuf.GetString(), colbuf.GetSize(), rapidjson::kArrayType);
  w.Key("ignored_columns");
  w.RawValue(ignbuf.GetString(), ignbuf.GetSize(), rapidjson::kArrayType);
  // the records are durable and readable by id; their search terms (and the table's list
  // indexes) are still being built: search says index_pending, the run's index_status
  // "building" until "complete"
  w.Key("index_pending");
  w.Bool(index_pending);
  w.Key("report");
  w.String("/api/v1/imports/" + std::to_string(run_id) + "/report.csv");
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::string> Importer::report_csv(const Principal& p, std::int64_t run_id) {
  auto run_entity = records_.registry_.get("import_run");
  if (!run_entity) return make_error(Errc::kInternal, "import_run is not declared");
  RP_ASSIGN(auto rec, records_.get(p, *run_entity, run_id));
  RP_ASSIGN(json::Document doc, json::parse(rec.body));
  std::string out = "\xEF\xBB\xBFrow,field,code,message\r\n";
  auto cell = [&](std::string_view s) {
    bool q = s.find_first_of(",\"\r\n;") != std::string_view::npos ||
             (!s.empty() && (s[0] == '=' || s[0] == '@' || s[0] == '+' || s[0] == '-'));
    if (!q) {
      out += s;
      return;
    }
    out += '"';
    if (!s.empty() && (s[0] == '=' || s[0] == '@' || s[0] == '+' || s[0] == '-')) out += '\'';
    for (char c : s) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  };
  // errors, warnings, then likely duplicates (code likely_duplicate, one line per candidate), by
  // row
  struct Line {
    std::int64_t row;
    std::string field, code, message;
  };
  std::vector<Line> lines;
  auto text = [](const json::Value& o, const char* k) {
    const json::Value* v = json::member(o, k);
    return std::string(v && v->IsString() ? v->GetString() : "");
  };
  auto row_of = [](const json::Value& o) -> std::int64_t {
    const json::Value* row = json::member(o, "row");
    return row && row->IsInt64() ? row->GetInt64() : 0;
  };
  if (const json::Value* errs = json::member(doc, "errors"); errs && errs->IsArray())
    for (const auto& err : errs->GetArray())
      lines.push_back({row_of(err), text(err, "field"), text(err, "code"), text(err, "message")});
  if (const json::Value* warns = json::member(doc, "warnings"); warns && warns->IsArray())
    for (const auto& warn : warns->GetArray())
      lines.push_back(
          {row_of(warn), text(warn, "field"), text(warn, "code"), text(warn, "message")});
  if (const json::Value* dupes = json::member(doc, "duplicates"); dupes && dupes->IsArray()) {
    for (const auto& d : dupes->GetArray()) {
      const json::Value* cands = json::member(d, "candidates");
      if (!cands || !cands->IsArray()) continue;
      for (const auto& c : cands->GetArray()) {
        const json::Value* score = json::member(c, "score");
        lines.push_back({row_of(d), text(c, "field"), "likely_duplicate",
                         "likely duplicate of " + text(doc, "entity") + " " + text(c, "id") + " " +
                             text(c, "title") + ": " + text(c, "reason") + " (score " +
                             score_text(score && score->IsNumber() ? score->GetDouble() : 0) +
                             ")"});
      }
    }
  }
  // a large import's search index built after its answer: whether it still is, or since when
  // it is complete (the run's index_status, index_done_at), on a line of its own (no row)
  const std::string index_status = text(doc, "index_status");
  if (index_status == "building")
    lines.push_back({0, "", "search_index_building",
                     "every row is saved; the search index of these records is still being "
                     "built in the background: search may not find them all yet"});
  else if (index_status == "complete")
    lines.push_back(
        {0, "", "search_index_complete",
         "the search index of these records was completed at " + text(doc, "index_done_at")});
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& x, const Line& y) { return x.row < y.row; });
  for (const auto& l : lines) {
    out += l.row ? std::to_string(l.row) : "";
    for (const std::string* v : {&l.field, &l.code, &l.message}) {
      out += ',';
      cell(*v);
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace rapport::record
