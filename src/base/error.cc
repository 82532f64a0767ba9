// Stable names of error codes, as they appear in problem+json "code".
#include "base/error.h"

namespace rapport {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::kBadRequest:
      return "bad_request";
    case Errc::kValidation:
      return "validation_failed";
    case Errc::kUnknownField:
      return "unknown_field";
    case Errc::kBadFilter:
      return "bad_filter";
    case Errc::kUnauthenticated:
      return "unauthenticated";
    case Errc::kInvalidCredentials:
      return "invalid_credentials";
    case Errc::kCsrf:
      return "csrf";
    case Errc::kForbidden:
      return "forbidden";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kConflict:
      return "conflict";
    case Errc::kDuplicate:
      return "duplicate";
    case Errc::kPreconditionRequired:
      return "precondition_required";
    case Errc::kTooLarge:
      return "too_large";
    case Errc::kRateLimited:
      return "rate_limited";
    case Errc::kRuleViolation:
      return "rule_violation";
    case Errc::kStorage:
      return "storage_error";
    case Errc::kBusy:
      return "busy";
    case Errc::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace rapport
