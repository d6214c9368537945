// CompatApi: the routes of the original two-service Flask demo's producer,
// so that a client written for it works against acceptd unchanged
// (docs/api.md, "Compatibility routes").
//
//   POST /v1/submit-job  {"service_name", "name", "redirect_location": {"url", "method"}}
//        -> 202 {"message_token": id}; the job runs on the configured queue
//   POST /v1/pool-job    {"service_name", "massage_token" (sic) or "message_token"}
//        -> 202 while pending; once succeeded, POSTs the job data with its
//           result to redirect_location and answers 302; unknown -> 404
//
// redirect_location passes the same SSRF guard as callbacks.
#pragma once

#include <atomic>
#include <string>

#include "api/v1_api.h"
#include "engine/engine.h"
#include "http/router.h"

namespace acceptd::api {

inline constexpr char kDefaultCompatQueue[] = "greeting";
inline constexpr int kMaxRedirectsInFlight = 32;

struct CompatOptions {
  std::string queue = kDefaultCompatQueue;  // where /v1/submit-job puts its jobs
  Millis redirect_timeout = 10'000;         // the POST to redirect_location
};

class CompatApi {
 public:
  // `api` supplies the SSRF guard (callback_policy); both must outlive this.
  CompatApi(Engine& engine, const ApiOptions& api, CompatOptions options)
      : engine_(engine), api_(api), options_(std::move(options)) {}
  void Register(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> SubmitJob(http::Request& req, const http::PathParams&);
  boost::asio::awaitable<http::Response> PoolJob(http::Request& req, const http::PathParams&);

  Engine& engine_;
  const ApiOptions& api_;
  CompatOptions options_;
  // Redirect POSTs in progress: each holds a request and an outgoing
  // connection, so they are capped (503 beyond).
  std::atomic<int> redirects_in_flight_{0};
};

}  // namespace acceptd::api
