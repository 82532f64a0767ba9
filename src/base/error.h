// Error and Result<T>: how every expected failure (bad input, not found, conflict, forbidden, busy
// database) travels up the layers. api/problem.cc is the one place that maps codes to HTTP.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace rapport {

// Stable error codes. A new failure kind is a new value here plus one line in api/problem.cc.
enum class Errc {
  kBadRequest,          // malformed input that is not about one field (bad JSON, bad query string)
  kValidation,          // a field's value breaks a rule; Error::field names it
  kUnknownField,        // a field that the entity does not declare
  kBadFilter,           // filter expression cannot be parsed or names an unusable field
  kUnauthenticated,     // no or invalid credentials
  kInvalidCredentials,  // login with a wrong user name or password
  kCsrf,                // session request without the matching X-CSRF-Token
  kForbidden,           // authenticated but not allowed
  kNotFound,            // no such record / route / entity
  kConflict,            // stale ETag, unique-value clash, idempotency key reuse with another body
  kDuplicate,           // unique field already taken
  kPreconditionRequired,  // If-Match missing where required
  kTooLarge,              // body or import over the limit
  kRateLimited,           // too many attempts (login throttling)
  kRuleViolation,         // a business rule refuses the change (422)
  kStorage,               // the database failed for a reason that is not the caller's
  kBusy,                  // database busy beyond the timeout
  kInternal,              // programming error caught at a boundary
};

const char* errc_name(Errc code);  // stable snake_case name used as problem+json "code"

struct Error {
  Errc code = Errc::kInternal;
  std::string message;
  std::string field;  // offending field, empty when not about one field
};

inline Error make_error(Errc code, std::string message, std::string field = {}) {
  return Error{code, std::move(message), std::move(field)};
}

// Result<T>: a value or an Error. Deliberately small; no exceptions on the data path.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error)
      : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace rapport

// Propagate an error from an expression returning Result<...>.
#define RP_TRY(expr)                                          \
  do {                                                        \
    auto rp_try_r_ = (expr);                                  \
    if (!rp_try_r_.ok()) return std::move(rp_try_r_).error(); \
  } while (0)

#define RP_CONCAT_INNER(a, b) a##b
#define RP_CONCAT(a, b) RP_CONCAT_INNER(a, b)
// Assign the value of a Result to `lhs` or return its error.
#define RP_ASSIGN(lhs, expr) RP_ASSIGN_IMPL(RP_CONCAT(rp_res_, __LINE__), lhs, expr)
#define RP_ASSIGN_IMPL(tmp, lhs, expr)          \
  auto tmp = (expr);                            \
  if (!tmp.ok()) return std::move(tmp).error(); \
  lhs = std::move(tmp).value()
