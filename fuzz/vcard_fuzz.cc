// Fuzz target: vCard imports — the card-by-card reader (core/vcard.h) over both charsets. The
// cards (or the error) must not depend on the size of the pieces the file arrives in.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/vcard.h"

namespace {

using namespace rapport;

// Every card flattened, or the error's message.
std::string read(std::string_view text, std::size_t piece, csv::Charset cs) {
  std::string out;
  auto done = vcard::read_all(text, cs, piece, [&](const vcard::Card& card) {
    out += "card\n";
    for (const auto& p : card) {
      if (p.name.find_first_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos)
        __builtin_trap();  // names are upper case
      out += p.name + ":" + p.value + "\n";
      for (const auto& [k, v] : p.params) out += k + "=" + v + "\n";
    }
  });
  return done.ok() ? out : out + "error: " + done.error().message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto cs : {csv::Charset::kUtf8, csv::Charset::kGb18030}) {
    const std::string whole = read(text, size + 1, cs);
    for (std::size_t piece : {1, 2, 3, 7, 64})
      if (read(text, piece, cs) != whole) __builtin_trap();
  }
  return 0;
}
