// Phone lookup and customer 360 (see actions.h). Both are read-only compositions of the generic
// record service, so scopes and field permissions apply exactly as on the generic endpoints.
#include "modules/accounts/actions.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "core/json_escape.h"

namespace rapport::modules::accounts {

namespace {

using record::ActionRequest;
using record::RecordService;

Result<std::int64_t> parse_id(std::string_view s, std::string_view what) {
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || ptr != s.data() + s.size() || id <= 0)
    return make_error(Errc::kNotFound, "no " + std::string(what) + " with id " + std::string(s));
  return id;
}

Status only_params(const ActionRequest& r, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : r.query) {
    bool known = false;
    for (auto a : allowed) known = known || k == a;
    if (!known) return make_error(Errc::kBadRequest, "unknown query parameter " + k, k);
  }
  return {};
}

// The account members the screen pop copies from the account's record text (DOMAIN §7).
constexpr std::string_view kPopMembers[] = {"name", "relationship_level", "credit_class",
                                            "key_account"};

// The answer is written with appends (json::append_string escapes as rapidjson's Writer does):
// its keys are constants and the account's members JSON text already, which rapidjson would
// re-encode a character at a time — most of the module's own work per lookup.
void append_int(std::string& out, std::int64_t n) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

// The member `key` (`,"name":`, a constant) and a value's text as written in the record (no
// DOM is built), or null when absent: hidden from the caller, or no such record.
void append_raw(std::string& out, std::string_view key, const std::optional<std::string_view>& v) {
  out.append(key);
  out.append(v ? *v : std::string_view("null"));
}

// Open items of a customer for the screen pop. For now the communication records: all of them
// and those marked for follow-up; cases and orders join when their modules exist. Left out
// (an empty object) when the caller may not count them.
void append_open_items(std::string& out, RecordService& records, const access::Principal& p,
                       const schema::Entity* interaction, std::string_view field, std::int64_t id) {
  out.push_back('{');
  if (interaction) {
    static const std::string follow_up[] = {R"({"field":"outcome","op":"=","value":"follow_up"})"};
    auto n = records.counts_of(p, *interaction, field, id, follow_up);
    if (n.ok()) {
      out.append("\"interactions\":");
      append_int(out, (*n)[0]);
      out.append(",\"follow_up\":");
      append_int(out, (*n)[1]);
    }
  }
  out.push_back('}');
}

// The fields of a phone match (and of its account) that the screen pop shows.
constexpr std::string_view kPopFields =
    "account_id,name,relationship_level,credit_class,key_account";

Result<std::string> lookup_phone(const ActionRequest& r, RecordService& records,
                                 const schema::Registry& registry) {
  RP_TRY(only_params(r, {"number"}));
  std::string_view number = r.query_param("number");
  // Only what the answer shows: the account reference and the pop's account fields, each
  // match's as the texts of those fields (kPopFields' order), not as a record text to parse.
  RP_ASSIGN(record::PhoneLookup found,
            records.lookup_phone_values(r.principal, number, kPopFields));
  // Looked up once a match needs them (most numbers match one account, or nothing).
  std::shared_ptr<const schema::Entity> account, interaction;
  std::string out;
  out.reserve(512);
  out.append("{\"number\":");
  json::append_string(out, number);
  // E.164 is '+' and digits: nothing to escape.
  out.append(",\"e164\":\"").append(found.e164).push_back('"');
  out.append(",\"matches\":[");
  bool first = true;
  for (const auto& m : found.matches) {
    // The account behind the match: the match itself, or the record's account_id reference
    // (read in the request's read transaction: a GET's reads share one snapshot).
    std::optional<std::int64_t> account_id;
    std::string acc_text;
    std::string_view acc;  // the account's text (kPopFields), empty when unknown or unreadable
    std::optional<std::string_view> pop[std::size(kPopMembers)];
    if (m.entity->name == "account") {
      account_id = m.id;
      // The match's own values: kPopFields after account_id are kPopMembers.
      for (std::size_t k = 0; k < std::size(pop) && k + 1 < m.values.size(); ++k)
        pop[k] = m.values[k + 1];
    } else if (auto a = m.values.empty() ? std::nullopt : m.values[0];
               a && a->size() >= 2 && a->front() == '"') {
      // A reference's text is its id as a JSON string of digits (no escapes).
      auto id = parse_id(a->substr(1, a->size() - 2), "account");
      if (id.ok()) account_id = *id;
      if (account_id && !account) account = registry.get("account");
      if (account_id && account) {
        auto got = records.get(r.principal, *account, *account_id, kPopFields);
        if (got.ok()) acc = acc_text = std::move(got->body);
      }
    }
    out.append(first ? "{\"entity\":" : ",{\"entity\":");
    first = false;
    json::append_string(out, m.entity->name);
    out.append(",\"plural\":");
    json::append_string(out, m.entity->plural);
    char digits[24];  // the match's id, written once (an account's is its account_id too)
    const std::string_view id(digits, std::to_chars(digits, digits + sizeof digits, m.id).ptr);
    out.append(",\"id\":\"").append(id);
    out.append("\",\"title\":");
    json::append_string(out, m.title);
    out.append(",\"account_id\":");
    if (account_id) {
      out.push_back('"');
      if (*account_id == m.id)
        out.append(id);
      else
        append_int(out, *account_id);
      out.push_back('"');
    } else {
      out.append("null");
    }
    if (!acc.empty()) json::member_texts(acc, kPopMembers, pop);
    append_raw(out,
               ",\"account_title\":", pop[0] && pop[0]->front() == '"' ? pop[0] : std::nullopt);
    // What the pop shows besides the name; null when unknown or not readable.
    append_raw(out, ",\"relationship_level\":", pop[1]);
    append_raw(out, ",\"credit_class\":", pop[2]);
    append_raw(out, ",\"key_account\":", pop[3]);
    out.append(",\"open_items\":");
    if (!interaction && (m.entity->name == "account" || m.entity->name == "contact"))
      interaction = registry.get("interaction");
    if (m.entity->name == "account")
      append_open_items(out, records, r.principal, interaction.get(), "account_id", m.id);
    else if (m.entity->name == "contact")
      append_open_items(out, records, r.principal, interaction.get(), "contact_id", m.id);
    else
      append_open_items(out, records, r.principal, nullptr, {}, 0);
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

// A list section of the 360 answer appended to `out` after its key: the list JSON
// ({"items","next_cursor"}), or null when the caller may not read that entity at all.
Status append_section(std::string& out, std::string_view key, Result<std::string> list) {
  out.push_back(',');
  record::append_json_string(out, key);
  out.push_back(':');
  if (!list.ok()) {
    if (list.error().code != Errc::kForbidden) return std::move(list).error();
    out.append("null");
    return {};
  }
  out.append(*list);
  return {};
}

Result<std::string> customer_360(const ActionRequest& r, RecordService& records,
                                 const schema::Registry& registry) {
  RP_TRY(only_params(r, {"channel", "limit"}));
  auto account = registry.get("account");
  auto contact = registry.get("contact");
  auto profile = registry.get("account_profile");
  auto interaction = registry.get("interaction");
  if (!account || !contact || !profile || !interaction)
    return make_error(Errc::kInternal, "the accounts module's entities are not registered");
  RP_ASSIGN(std::int64_t id, parse_id(r.param("id"), "account"));
  int limit = kTimelinePage;
  if (std::string_view l = r.query_param("limit"); !l.empty()) {
    auto [ptr, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || ptr != l.data() + l.size() || limit < 1 ||
        limit > record::kMaxPageSize)
      return make_error(Errc::kBadRequest, "limit must be an integer between 1 and 500", "limit");
  }
  // ?channel=phone,visit narrows the timeline; each value must be one of the channel options.
  std::string channel_filter;
  if (std::string_view c = r.query_param("channel"); !c.empty()) {
    const schema::Field* f = interaction->field("channel");
    json::Buffer buf;
    json::Writer w(buf);
    w.StartArray();
    while (!c.empty()) {
      size_t comma = c.find(',');
      std::string_view v = c.substr(0, comma);
      bool ok = f && std::any_of(f->options.begin(), f->options.end(),
                                 [&](const schema::EnumOption& o) { return o.value == v; });
      if (!ok)
        return make_error(
            Errc::kBadRequest,
            "channel " + std::string(v) + " is not one of the channels of a communication record",
            "channel");
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
      c = comma == std::string_view::npos ? std::string_view{} : c.substr(comma + 1);
    }
    w.EndArray();
    channel_filter = R"({"field":"channel","op":"in","value":)" +
                     std::string(buf.GetString(), buf.GetSize()) + "}";
  }

  // The account first: its scope decides (403 out of scope, 404 unknown or deleted).
  RP_ASSIGN(record::RecordResult acc, records.get(r.principal, *account, id));
  std::string own = record::equals_filter("account_id", std::to_string(id));
  // Parsed once for the three lists (ListParams::parsed_filter), not once per list.
  RP_ASSIGN(json::Document own_doc, json::parse(own));

  // The answer is written as text: each section is already JSON (the records' text from the
  // record text cache), copied once, never parsed or re-written.
  std::string out;
  out.reserve(acc.body.size() + 8192);
  out.append("{\"account\":");
  out.append(acc.body);

  record::ListParams contacts;
  contacts.filter = own;
  contacts.parsed_filter = &own_doc;
  // Each list's condition compiled once per role and kept, the id bound (not compiled per
  // request); a compile error is left to the list, which answers it as before.
  auto contacts_cond = records.compile_equality(r.principal, *contact, "account_id", id);
  if (contacts_cond.ok()) contacts.compiled_filter = &*contacts_cond;
  contacts.sort = "full_name";
  contacts.limit = kMaxContacts360;
  RP_TRY(append_section(out, "contacts", records.list(r.principal, *contact, contacts)));

  record::ListParams entries;
  entries.filter = own;
  entries.parsed_filter = &own_doc;
  auto entries_cond = records.compile_equality(r.principal, *profile, "account_id", id);
  if (entries_cond.ok()) entries.compiled_filter = &*entries_cond;
  entries.sort = "-recorded_on";
  entries.limit = kMaxProfile360;
  RP_TRY(append_section(out, "profile", records.list(r.principal, *profile, entries)));

  record::ListParams timeline;
  timeline.filter =
      channel_filter.empty() ? own : R"({"and":[)" + own + "," + channel_filter + "]}";
  Result<record::CompiledCondition> timeline_cond = record::CompiledCondition{};
  if (channel_filter.empty()) {
    timeline.parsed_filter = &own_doc;
    timeline_cond = records.compile_equality(r.principal, *interaction, "account_id", id);
    if (timeline_cond.ok()) timeline.compiled_filter = &*timeline_cond;
  }
  timeline.sort = "-occurred_at";
  timeline.limit = limit;
  RP_TRY(append_section(out, "timeline", records.list(r.principal, *interaction, timeline)));
  // How to page the timeline further: the same query on the generic list endpoint.
  out.append(",\"timeline_query\":{\"filter\":");
  record::append_json_string(out, timeline.filter);
  out.append(",\"sort\":");
  record::append_json_string(out, timeline.sort);
  out.append("}}");
  return out;
}

}  // namespace

void register_actions(record::ActionRegistry& actions, RecordService& records,
                      const schema::Registry& registry) {
  record::Action lookup{
      "GET", "/lookup/phone",
      "Customers (accounts, contacts, …) with this phone number, in any written form",
      [&records, &registry](const ActionRequest& r) { return lookup_phone(r, records, registry); }};
  lookup.query = {{"number", "the number in any written form (010-6253 1234, +86 10 62531234)",
                   "string", true}};
  lookup.response_schema =
      R"({"type":"object","required":["e164","matches"],"properties":{"number":{"type":"string"},)"
      R"("e164":{"type":"string"},"matches":{"type":"array","items":{"type":"object","properties":)"
      R"({"entity":{"type":"string"},"plural":{"type":"string"},"id":{"type":"string"},)"
      R"("title":{"type":"string"},"account_id":{"type":["string","null"]},)"
      R"("open_items":{"type":"object"}}}}}})";
  lookup.quick = true;
  actions.add(std::move(lookup));
  record::Action c360{
      "GET", "/accounts/{id}/360",
      "Customer 360: account, contacts, dated profile and communication timeline",
      [&records, &registry](const ActionRequest& r) { return customer_360(r, records, registry); }};
  c360.entity = "account";
  // Not `quick`: 5–8 queries per page. Tried on the I/O threads it measured slower under a
  // loaded machine (server p99 and req/s), so it stays on the workers.
  // The contacts section holds the first kMaxContacts360 by name; `contacts.next_cursor` pages
  // on through GET /contacts with filter account_id = the account and sort full_name.
  c360.query = {{"channel", "comma list of channels the timeline is narrowed to (phone,visit)"},
                {"limit", "timeline entries per page (1–500, default 50)", "integer"}};
  const char* section =
      R"({"type":["object","null"],"properties":{"items":{"type":"array","items":{"type":"object"}},)"
      R"("next_cursor":{"type":["string","null"]}}})";
  c360.response_schema = std::string(R"({"type":"object","required":["account"],"properties":{)") +
                         R"("account":{"type":"object"},"contacts":)" + section + R"(,"profile":)" +
                         section + R"(,"timeline":)" + section +
                         R"(,"timeline_query":{"type":"object"}}})";
  actions.add(std::move(c360));
}

}  // namespace rapport::modules::accounts
