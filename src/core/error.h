// Error and Result<T>: how every module below the HTTP edge reports failure.
//
// An Error carries a code (mapped to an HTTP status in exactly one table, see
// src/http/problem.h), an internal message for logs (may name ids, SQL
// state, peers) and a public detail that is safe to show to a client. Never put
// backend text into `detail`.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace acceptd {

enum class ErrorCode {
  kInvalidArgument,      // the caller sent something malformed or out of range
  kNotFound,             // no such job / queue / route
  kGone,                 // the job existed and was purged after its retention
  kConflict,             // the target is in a state that forbids the operation
  kQueueFull,            // load leveling: the queue is at max_depth
  kPayloadTooLarge,      // a size limit was exceeded
  kStaleLease,           // a lease-fenced write came with an outdated token
  kIdempotencyMismatch,  // an Idempotency-Key reused for a different request
  kUnavailable,          // shutting down, or the store is temporarily unusable
  kInternal,             // a bug or an unexpected backend failure
};

std::string_view ToString(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // internal: logged, never sent to clients
  std::string detail;   // external: safe for a problem document's `detail`

  static Error InvalidArgument(std::string detail) {
    return {ErrorCode::kInvalidArgument, detail, std::move(detail)};
  }
  static Error NotFound(std::string detail) {
    return {ErrorCode::kNotFound, detail, std::move(detail)};
  }
  static Error Gone(std::string detail) { return {ErrorCode::kGone, detail, std::move(detail)}; }
  static Error Conflict(std::string detail) {
    return {ErrorCode::kConflict, detail, std::move(detail)};
  }
  static Error QueueFull(std::string detail) {
    return {ErrorCode::kQueueFull, detail, std::move(detail)};
  }
  static Error IdempotencyMismatch(std::string detail) {
    return {ErrorCode::kIdempotencyMismatch, detail, std::move(detail)};
  }
  static Error StaleLease(std::string message) {
    return {ErrorCode::kStaleLease, std::move(message), "the job's lease has moved on"};
  }
  static Error Unavailable(std::string message, std::string detail = "service unavailable") {
    return {ErrorCode::kUnavailable, std::move(message), std::move(detail)};
  }
  static Error Internal(std::string message) {
    return {ErrorCode::kInternal, std::move(message), "internal error"};
  }
};

// Result<T> holds either a T or an Error. Accessing the wrong alternative is a
// programming error (std::bad_variant_access).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

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
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace acceptd
