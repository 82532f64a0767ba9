// vCard files read card by card (see vcard.h).
#include "core/vcard.h"

#include <algorithm>

namespace rapport::vcard {

namespace {

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out += (n == 'n' || n == 'N') ? '\n' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back() += s[i];
      out.back() += s[++i];
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back() += s[i];
    }
  }
  for (auto& part : out) part = unescape(part);
  return out;
}

StreamReader::StreamReader(csv::StreamReader::Source source, csv::Charset cs,
                           std::size_t piece_bytes)
    : lines_(std::move(source), cs, ',', piece_bytes) {}

// Unfolding: a physical line that begins with a space or tab continues the one before it.
// Empty logical lines are skipped.
Result<bool> StreamReader::logical_line(std::string& line) {
  for (;;) {
    if (!has_pending_) {
      if (at_end_) return false;
      RP_ASSIGN(bool more, lines_.next_line(pending_));
      if (!more) return false;
      has_pending_ = true;
    }
    line = std::move(pending_);
    has_pending_ = false;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t'))
      line.erase(0, 1);  // a continuation with nothing before it
    for (;;) {
      std::string next;
      RP_ASSIGN(bool more, lines_.next_line(next));
      if (!more) {
        at_end_ = true;
        break;
      }
      if (!next.empty() && (next[0] == ' ' || next[0] == '\t')) {
        line.append(next, 1);
      } else {
        pending_ = std::move(next);
        has_pending_ = true;
        break;
      }
    }
    if (!line.empty()) return true;
  }
}

Result<bool> StreamReader::next(Card& card) {
  card.clear();
  std::string line;
  for (;;) {
    RP_ASSIGN(bool more, logical_line(line));
    if (!more) break;
    size_t colon = std::string::npos;
    bool quoted = false;
    for (size_t k = 0; k < line.size(); ++k) {
      if (line[k] == '"') quoted = !quoted;
      if (line[k] == ':' && !quoted) {
        colon = k;
        break;
      }
    }
    if (colon == std::string::npos) {
      if (trim_ws(line).empty()) continue;
      return make_error(Errc::kBadRequest,
                        "vCard " + std::to_string(begun_ + !open_) +
                            ": a line without a colon: " + line.substr(0, 60),
                        "file");
    }
    Property prop;
    prop.value = line.substr(colon + 1);
    auto parts = split(std::string_view(line).substr(0, colon), ';');
    prop.name = parts[0];
    if (auto dot = prop.name.find('.'); dot != std::string::npos) prop.name.erase(0, dot + 1);
    for (char& c : prop.name)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    for (size_t k = 1; k < parts.size(); ++k) {
      auto eq = parts[k].find('=');
      std::string pn = lower(parts[k].substr(0, eq));
      std::string pv = eq == std::string::npos ? parts[k] : parts[k].substr(eq + 1);
      pv.erase(std::remove(pv.begin(), pv.end(), '"'), pv.end());
      if (eq == std::string::npos) pn = "type";  // vCard 2.1 bare types: TEL;CELL
      auto& slot = prop.params[pn];
      slot += slot.empty() ? pv : "," + pv;
    }
    if (prop.name == "BEGIN" && lower(trim_ws(prop.value)) == "vcard") {
      if (open_)
        return make_error(Errc::kBadRequest,
                          "vCard " + std::to_string(begun_) + " has no END:VCARD", "file");
      if (begun_ >= kMaxCards)
        return make_error(Errc::kTooLarge,
                          "the file has more than " + std::to_string(kMaxCards) + " vCards",
                          "file");
      ++begun_;
      open_ = true;
      card.clear();
    } else if (prop.name == "END") {
      if (open_) {
        open_ = false;
        return true;
      }
    } else if (open_) {
      card.push_back(std::move(prop));
    }
  }
  if (open_)
    return make_error(Errc::kBadRequest, "vCard " + std::to_string(begun_) + " has no END:VCARD",
                      "file");
  if (begun_ == 0) return make_error(Errc::kBadRequest, "the file holds no BEGIN:VCARD", "file");
  return false;
}

Status read_all(std::string_view text, csv::Charset cs, std::size_t piece,
                const std::function<void(Card&)>& on_card) {
  std::size_t at = 0;
  StreamReader reader(
      [&](char* buf, std::size_t cap) -> Result<std::size_t> {
        const std::size_t n = std::min({cap, piece, text.size() - at});
        std::copy_n(text.data() + at, n, buf);
        at += n;
        return n;
      },
      cs, piece);
  Card card;
  for (;;) {
    RP_ASSIGN(bool more, reader.next(card));
    if (!more) return {};
    on_card(card);
  }
}

Result<std::vector<Card>> parse(std::string_view text, csv::Charset cs, std::size_t piece) {
  std::vector<Card> cards;
  RP_TRY(read_all(text, cs, piece, [&](Card& card) { cards.push_back(std::move(card)); }));
  return cards;
}

}  // namespace rapport::vcard
