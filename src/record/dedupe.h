// Duplicate detection, the pure part (DOMAIN §9): normalisers for emails, company domains, names,
// tax ids and addresses; Jaro–Winkler; name similarity that also compares Chinese names by
// pinyin; and the match rules that score a pair of records 0–1 with a human-readable reason.
// No I/O and no state: the index, candidate search, review queue and merge are in duplicates.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "schema/schema.h"

namespace rapport::record::dedupe {

// A pair scoring at least kDuplicateScore is a duplicate (reported on create, blocks with
// ?dedupe=block); from kReviewScore up to it, a candidate for the review queue.
constexpr double kDuplicateScore = 0.90;
constexpr double kReviewScore = 0.75;

// Trimmed and lower-cased; for gmail.com (and googlemail.com) dots and a +tag of the local part
// removed: " Zhang.San+crm@GMail.com " → "zhangsan@gmail.com". Empty when it is no address.
std::string canonical_email(std::string_view raw);
// Whether the domain belongs to a free-mail provider (gmail.com, qq.com, 163.com, …) or is
// reserved for examples and tests (example.com, *.test, …): never a company's domain.
bool is_free_mail(std::string_view domain);
// Host of a website without scheme, port, path and "www.": "https://www.Acme.com/x" → "acme.com".
std::string website_host(std::string_view website);
// The company domain of a website or email address; empty for free-mail providers.
std::string company_domain(std::string_view website_or_email);
// NFKC + case folded, legal-form suffixes (Ltd, GmbH, 有限公司, …) and punctuation removed,
// whitespace collapsed to single spaces: "ACME Co., Ltd." → "acme", "张 三" → "张 三".
std::string name_key(std::string_view name);
// Letters and digits only, upper case: "9111 0108-MA01" → "91110108MA01".
std::string tax_id_key(std::string_view raw);
// City without the administrative suffix 市 and punctuation, folded: "北京市" → "北京".
std::string city_key(std::string_view city);
// A street compared as written differently: NFKC + case folded, punctuation and spaces removed,
// street words abbreviated the usual way ("Road" = "Rd.", "Avenue" = "Ave", "12th Floor" =
// "12/F"), "No." dropped, 號 = 号, and a leading city (with or without 市) dropped for Chinese
// streets in that city: ("8 Harbour Road", "Hong Kong") = ("No. 8 Harbour Rd.", "Hong Kong").
std::string street_key(std::string_view street, std::string_view city);
// Two-letter country for the usual spellings ("China", "中国", "PRC", "cn" → "cn"); other values
// folded.
std::string country_key(std::string_view country);

// Jaro–Winkler similarity of two strings compared by code point (prefix scale 0.1, at most 4,
// applied when the Jaro similarity exceeds 0.7). 1 for two empty strings.
double jaro_winkler(std::string_view a, std::string_view b);

struct NameSimilarity {
  double score = 0;
  bool by_pinyin = false;  // the best comparison was of the pinyin of a Chinese name
};

// The comparison forms of a name key, computed once per record (pinyin is the costly part).
struct NameForms {
  std::string key;
  std::string plain, sorted;                         // without spaces; words sorted and joined
  bool han = false;                                  // has Chinese characters
  std::vector<std::string> latin;                    // Chinese as pinyin, in both word orders
  std::string first, last, first_latin, last_latin;  // person: given and family name
};
NameForms name_forms(std::string_view key);
NameSimilarity name_similarity(const NameForms& a, const NameForms& b);
double first_last_similarity(const NameForms& a, const NameForms& b);
// Similarity of two name keys: the best Jaro–Winkler of the keys without spaces, of their
// latin forms (Chinese characters as pinyin) and of their words in sorted order.
NameSimilarity name_similarity(std::string_view a, std::string_view b);
// Similarity of a person's first and last names, each compared as above (in either order, so
// "San Zhang" = "张三"); the lower of the two. Single-word names compare as the last name.
double first_last_similarity(std::string_view a, std::string_view b);

// Which fields of an entity play which part in matching; empty when the entity has none.
// Phones and emails are every phone_list and email_list field.
struct Profile {
  enum class Kind { kPerson, kOrganisation };
  Kind kind = Kind::kPerson;
  std::string name_field;     // the person's full name / the organisation's name
  std::string company_field;  // person: reference to the organisation
  std::string tax_id_field;
  std::string website_field;
  std::string city_field;
  std::string address_field;  // address type: street, city, country
  // Merge: enum fields whose winner is the value ranked last among the merged records' values
  // ("consent": granted < unknown < denied = most restrictive; "relationship_level": maximum)
  // instead of the survivor's.
  std::map<std::string, std::vector<std::string>> merge_rank;
};

// What matching looks at, normalised once per record.
struct Facts {
  std::int64_t id = 0;
  std::string title;                      // the name as written
  std::string name;                       // name_key
  std::vector<std::string> phones;        // E.164, sorted, unique
  std::vector<std::string> emails;        // canonical, sorted, unique
  std::string web_domain;                 // company domain of the website
  std::vector<std::string> mail_domains;  // company domains of the emails, sorted, unique
  std::string tax_id, company, address, city, country;
  NameForms forms;  // of `name`
};

// Facts of a record given as a JSON object of field values (the API's shape, as stored values
// are written out or as validated input). Numbers that do not normalise are left out.
// `e164`: the record's numbers already normalised (as the phone index holds them): its phone
// fields are then not parsed again.
Facts facts_of(const Profile& profile, const schema::Entity& e, const json::Value& record,
               std::string_view phone_region, const std::vector<std::string>* e164 = nullptr);

// Keys under which a record is found by candidate search ("email:…", "domain:…" for
// organisations, "tax:…", "addr:…"); phones are found through the phone index.
std::vector<std::string> index_keys(const Profile& profile, const Facts& f);

struct Match {
  double score = 0;
  std::string reason;  // "same phone +8613812345678 and name similarity 0.93"
  std::string field;   // the field that matched, for a 409 duplicate
};

// The best-scoring rule for the pair, or nothing when no rule applies (DOMAIN §9):
// person — same email; or same phone and name similarity ≥ 0.88; or similar first and last
// names (≥ 0.90) and same company or address. Organisation — same tax id; or same company
// domain; or name similarity ≥ 0.92 in the same country with the same address or the same city
// and a shared phone (a shared phone and such a name where a city is unknown: at most 0.85, the
// review queue). A rule met scores ≥ kDuplicateScore; an anchor with a name a little short
// of the threshold scores proportionally below it (review queue from kReviewScore).
std::optional<Match> match(const Profile& profile, const Facts& a, const Facts& b);

}  // namespace rapport::record::dedupe
