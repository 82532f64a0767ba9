// Helpers shared by the http library's sources and its unit tests; not part of the layer's API
// (api/ and app/ include only types.h, router.h and server.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/types.h"

namespace rapport::http::detail {

// Percent-decodes `in`. nullopt when a '%' is not followed by two hex digits or the result
// holds a NUL byte (no legitimate path or query needs one, and C APIs would truncate at it).
std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space);

// An RFC 9457 problem response; `code` is the stable machine-readable error code.
Response problem(int status, std::string_view title, std::string_view code);

// The access log line of one answered request, without the logger's prefix:
// "access ID METHOD PATH STATUS 1.234ms" (`micros`: the time from its first byte to the answer
// written, in microseconds).
std::string access_line(std::string_view request_id, std::string_view method, std::string_view path,
                        int status, std::int64_t micros);

}  // namespace rapport::http::detail
