// Which account and contact fields play which part in matching and merging (see dedupe.h).
#include "modules/accounts/dedupe.h"

namespace rapport::modules::accounts {

void register_dedupe(record::HookRegistry& hooks) {
  using record::dedupe::Profile;
  Profile contact;
  contact.kind = Profile::Kind::kPerson;
  contact.name_field = "full_name";
  contact.company_field = "account_id";
  // Consent: the most restrictive value survives a merge (denied > unknown > granted).
  contact.merge_rank["consent"] = {"granted", "unknown", "denied"};
  hooks.set_dedupe("contact", std::move(contact));

  Profile account;
  account.kind = Profile::Kind::kOrganisation;
  account.name_field = "name";
  account.tax_id_field = "tax_id";
  account.website_field = "website";
  account.city_field = "city";
  account.address_field = "address";
  // Kotler's relationship levels, lowest first: a merge keeps the highest.
  account.merge_rank["relationship_level"] = {"basic", "reactive", "accountable", "proactive",
                                              "partnership"};
  hooks.set_dedupe("account", std::move(account));
}

}  // namespace rapport::modules::accounts
