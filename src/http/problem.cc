#include "http/problem.h"

#include <cctype>
#include <string>

#include <boost/json/serialize.hpp>

namespace acceptd::http {

Status StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return Status::bad_request;
    case ErrorCode::kNotFound:
      return Status::not_found;
    case ErrorCode::kGone:
      return Status::gone;
    case ErrorCode::kConflict:
      return Status::conflict;
    case ErrorCode::kQueueFull:
      return Status::service_unavailable;
    case ErrorCode::kPayloadTooLarge:
      return Status::payload_too_large;
    case ErrorCode::kIdempotencyMismatch:
      return Status::unprocessable_entity;
    case ErrorCode::kStaleLease:
      return Status::conflict;
    case ErrorCode::kUnavailable:
      return Status::service_unavailable;
    case ErrorCode::kInternal:
      return Status::internal_server_error;
  }
  return Status::internal_server_error;
}

namespace {

// The stable `code` of a problem made from a status alone: the ErrorCode slug
// where one maps to the status, else the reason phrase in snake_case.
std::string CodeFor(Status status) {
  switch (status) {
    case Status::bad_request:
      return std::string(ToString(ErrorCode::kInvalidArgument));
    case Status::not_found:
      return std::string(ToString(ErrorCode::kNotFound));
    case Status::conflict:
      return std::string(ToString(ErrorCode::kConflict));
    case Status::payload_too_large:
      return std::string(ToString(ErrorCode::kPayloadTooLarge));
    case Status::service_unavailable:
      return std::string(ToString(ErrorCode::kUnavailable));
    case Status::internal_server_error:
      return std::string(ToString(ErrorCode::kInternal));
    default:
      break;
  }
  std::string code(beast_http::obsolete_reason(status));
  for (char& c : code) c = c == ' ' || c == '-' ? '_' : static_cast<char>(std::tolower(c));
  return code;
}

}  // namespace

Response Problem(Status status, std::string_view detail, boost::json::object extra) {
  boost::json::object doc;
  doc["type"] = "about:blank";
  doc["title"] = std::string_view(beast_http::obsolete_reason(status));
  doc["status"] = static_cast<int>(status);
  doc["detail"] = detail;
  doc["code"] = CodeFor(status);
  for (auto& kv : extra) doc[kv.key()] = kv.value();
  Response res{status, 11};
  res.set(Field::content_type, "application/problem+json");
  res.body() = boost::json::serialize(doc);
  return res;
}

Response Problem(const Error& error, boost::json::object extra) {
  extra.emplace("code", ToString(error.code));
  return Problem(StatusFor(error.code), error.detail, std::move(extra));
}

Response JsonResponse(Status status, std::string body) {
  Response res{status, 11};
  res.set(Field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response JsonResponse(Status status, const boost::json::value& body) {
  return JsonResponse(status, boost::json::serialize(body));
}

}  // namespace acceptd::http
