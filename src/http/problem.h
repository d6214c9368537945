// RFC 9457 problem documents (application/problem+json): the body of every
// error response, and the single table from ErrorCode to HTTP status. Also
// the plain JSON response every successful answer uses.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/error.h"
#include "http/types.h"

namespace acceptd::http {

// The HTTP status for an error code (the one mapping; see docs/api.md).
Status StatusFor(ErrorCode code);

// A problem response: `type` is "about:blank", `title` the status' reason
// phrase, `detail` the client-safe text, `code` a stable snake_case slug
// (the ErrorCode's, or derived from the status). `extra` members are added to
// the document (e.g. "state", "option") and may override `code`.
Response Problem(Status status, std::string_view detail, boost::json::object extra = {});
// The problem for an Error, using only its client-safe detail.
Response Problem(const Error& error, boost::json::object extra = {});

// An application/json response with `body` (already serialized, or a value).
Response JsonResponse(Status status, std::string body);
Response JsonResponse(Status status, const boost::json::value& body);

}  // namespace acceptd::http
