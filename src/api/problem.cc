// Error → HTTP status and problem+json. A new Errc gets its status here and nowhere else.
#include "api/problem.h"

#include "core/json.h"

namespace rapport::api {

int http_status(Errc code) {
  switch (code) {
    case Errc::kBadRequest:
    case Errc::kUnknownField:
    case Errc::kBadFilter:
      return 400;
    case Errc::kValidation:
    case Errc::kRuleViolation:
      return 422;
    case Errc::kUnauthenticated:
    case Errc::kInvalidCredentials:
      return 401;
    case Errc::kForbidden:
    case Errc::kCsrf:
      return 403;
    case Errc::kNotFound:
      return 404;
    case Errc::kConflict:
    case Errc::kDuplicate:
      return 409;
    case Errc::kPreconditionRequired:
      return 428;
    case Errc::kTooLarge:
      return 413;
    case Errc::kRateLimited:
      return 429;
    case Errc::kBusy:
      return 503;
    case Errc::kStorage:
    case Errc::kInternal:
      return 500;
  }
  return 500;
}

namespace {
const char* title(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}
}  // namespace

http::Response problem(const Error& e) {
  int status = http_status(e.code);
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String(std::string("https://rapport.dev/problems/") + errc_name(e.code));
  w.Key("title");
  w.String(title(status));
  w.Key("status");
  w.Int(status);
  w.Key("code");
  w.String(errc_name(e.code));
  w.Key("detail");
  // Storage failures are logged in full by the caller; the client gets no SQL text.
  w.String(status >= 500 && e.code != Errc::kBusy
               ? std::string("the server could not complete the request")
               : e.message);
  if (!e.field.empty()) {
    w.Key("field");
    w.String(e.field);
  }
  w.EndObject();
  http::Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body.assign(buf.GetString(), buf.GetSize());
  if (status == 429) r.set_header("Retry-After", "900");
  return r;
}

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace rapport::api
