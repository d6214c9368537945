// LeaseApi: the external-worker lease protocol over HTTP (docs/workers.md).
//
//   POST /v1/queues/{queue}/leases?wait=S&lease=S  a job of an external queue, or 204
//   POST /v1/leases/{lease}/heartbeat?lease=S      extend; progress; "cancel_requested"
//   POST /v1/leases/{lease}/complete               the result bytes -> succeeded
//   POST /v1/leases/{lease}/fail                   a problem document with "retryable"
//   POST /v1/leases/{lease}/release                back to the queue, attempt not spent
//
// A lease is named by "<job id>.<lease token>": the job id (128 random bits)
// makes it unguessable, the token fences it (every call after the lease is
// refused with 409 once the job moved on). Every route needs the `worker`
// scope (without keys: loopback peers only, see http/router.h). A key with
// a tenant may not lease: a queue's workers see every tenant's payloads.
//
// Like V1Api, handlers are pure functions of a parsed request and the
// engine, testable through the router.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/v1_api.h"
#include "engine/engine.h"
#include "http/router.h"

namespace acceptd::api {

inline constexpr Millis kDefaultLeaseWait = 30'000;
inline constexpr Millis kMaxLeaseWait = 60'000;
inline constexpr Millis kMinLease = 1'000;
inline constexpr Millis kMaxLease = 3'600'000;
inline constexpr size_t kMaxFailureDetail = 4096;

// "<32 hex>.<token>" <-> LeaseRef. nullopt if malformed.
std::string FormatLeaseId(const LeaseRef& lease);
std::optional<LeaseRef> ParseLeaseId(std::string_view text);

class LeaseApi {
 public:
  explicit LeaseApi(Engine& engine) : engine_(engine) {}
  void Register(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> Lease(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Heartbeat(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Complete(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Fail(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Release(http::Request& req, const http::PathParams& p);

  Engine& engine_;
};

}  // namespace acceptd::api
