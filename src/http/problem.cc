#include "http/problem.h"

#include <boost/json/serialize.hpp>

namespace acceptd::http {

Status StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return Status::bad_request;
    case ErrorCode::kNotFound:
      return Status::not_found;
    case ErrorCode::kConflict:
      return Status::conflict;
    case ErrorCode::kQueueFull:
      return Status::service_unavailable;
    case ErrorCode::kPayloadTooLarge:
      return Status::payload_too_large;
    case ErrorCode::kStaleLease:
      return Status::conflict;
    case ErrorCode::kUnavailable:
      return Status::service_unavailable;
    case ErrorCode::kInternal:
      return Status::internal_server_error;
  }
  return Status::internal_server_error;
}

Response Problem(Status status, std::string_view detail, boost::json::object extra) {
  boost::json::object doc;
  doc["type"] = "about:blank";
  doc["title"] = std::string_view(beast_http::obsolete_reason(status));
  doc["status"] = static_cast<int>(status);
  doc["detail"] = detail;
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

}  // namespace acceptd::http
