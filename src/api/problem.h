// The one mapping from Error to HTTP: status codes and RFC 9457 problem+json bodies.
#pragma once

#include "base/error.h"
#include "http/types.h"

namespace rapport::api {

int http_status(Errc code);
http::Response problem(const Error& e);
http::Response json_response(int status, std::string body);

}  // namespace rapport::api
