// vCard (RFC 6350; 3.0 and 2.1 bare types read too) files read card by card.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "core/csv.h"

namespace rapport::vcard {

constexpr std::size_t kMaxCards = 1'000'000;

struct Property {
  std::string name;                           // upper case, group removed
  std::map<std::string, std::string> params;  // lower-case names; repeated ones joined by ','
  std::string value;                          // as written (escapes kept)
};
using Card = std::vector<Property>;

// `s` with the vCard escapes (\n \, \; \\) resolved.
std::string unescape(std::string_view s);
// A structured value split on unescaped `sep`, each part unescaped.
std::vector<std::string> split(std::string_view s, char sep);

// Reads the cards of a file that arrives in pieces (an import body spooled to a file), decoded
// as csv::StreamReader decodes CSV (UTF-8 validated or GB18030 converted per piece; a character
// split across pieces read whole); folded lines (CRLF or LF, then a space or tab) are unfolded
// across pieces. Holds one piece and the card being read, never the whole file. Errors
// (kBadRequest naming the card, kTooLarge) are those of parse over the whole text; an encoding
// error names the line.
class StreamReader {
 public:
  StreamReader(csv::StreamReader::Source source, csv::Charset cs,
               std::size_t piece_bytes = csv::StreamReader::kPieceBytes);
  // The next card's properties between BEGIN:VCARD and END:VCARD; false after the last one.
  Result<bool> next(Card& card);
  // Cards begun so far.
  std::size_t cards() const { return begun_; }

 private:
  Result<bool> logical_line(std::string& line);  // the next unfolded line; false at the end

  csv::StreamReader lines_;
  std::string pending_;  // the physical line read ahead (not a continuation)
  bool has_pending_ = false;
  bool at_end_ = false;
  std::size_t begun_ = 0;
  bool open_ = false;
};

// Reads a whole text in pieces of at most `piece` bytes, as StreamReader reads a spooled file,
// handing each card to `on_card`; the first error ends it (cards before it were handed on).
Status read_all(std::string_view text, csv::Charset cs, std::size_t piece,
                const std::function<void(Card&)>& on_card);
// Every card of a whole text (tests, fuzzing): what StreamReader gives.
Result<std::vector<Card>> parse(std::string_view text, csv::Charset cs = csv::Charset::kUtf8,
                                std::size_t piece = csv::StreamReader::kPieceBytes);

}  // namespace rapport::vcard
