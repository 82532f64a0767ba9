// A JSON document for the many small documents an import batch holds at once.
#pragma once

#include <memory>

#include "core/json.h"

namespace rapport::record {

// An object document whose pool grows in 1 KiB chunks instead of RapidJSON's 64 KiB: an import
// batch holds thousands of small documents at once (two per row), each of which took a 64 KiB
// chunk of heap with the default (about 600 MB of allocations for a 5,000-row batch).
class SmallDocument : private std::unique_ptr<json::Allocator>, public json::Document {
 public:
  static constexpr std::size_t kChunk = 1024;
  SmallDocument()
      : std::unique_ptr<json::Allocator>(std::make_unique<json::Allocator>(kChunk)),
        json::Document(rapidjson::kObjectType, std::unique_ptr<json::Allocator>::get()) {}
  SmallDocument(SmallDocument&&) = default;
  SmallDocument& operator=(SmallDocument&&) = default;
};

}  // namespace rapport::record
