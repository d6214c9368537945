// Request ids (X-Request-Id): every answer carries one, the client's own if
// it sent a valid one, else a new one. The router sets it on routed answers
// (router.h); the server on the answers it gives before routing (refusals of
// malformed or oversized requests, server.cc).
#pragma once

#include <string>
#include <string_view>

namespace acceptd::http {

inline constexpr std::string_view kRequestIdField = "X-Request-Id";

// 1-128 characters of [A-Za-z0-9] and -_.:/+=@: safe in logs and headers.
bool IsValidRequestId(std::string_view id);

// 16 hex digits, unique enough to find one request in the logs.
std::string NewRequestId();

// The client's id if valid, else a new one.
std::string RequestIdFor(std::string_view given);

}  // namespace acceptd::http
