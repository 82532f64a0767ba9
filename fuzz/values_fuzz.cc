// Fuzz target: request bodies — JSON parsing (UTF-8 validated) and validation of every field type.
#include <cstdint>
#include <string>

#include "common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rapport;
  auto doc = json::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc.ok()) return 0;
  for (const auto& f : fuzz::entity().fields) {
    json::Document out_doc;
    json::Value out;
    auto st = schema::validate_value(f, *doc, out, out_doc.GetAllocator());
    if (st.ok()) {
      // A normalised value validates again to itself.
      json::Value again;
      if (!schema::validate_value(f, out, again, out_doc.GetAllocator()).ok()) __builtin_trap();
    } else if (st.error().field != f.name) {
      __builtin_trap();
    }
  }
  return 0;
}
