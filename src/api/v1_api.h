// V1Api: the v1 HTTP routes (docs/api.md), mapping requests to the Engine.
//
// Handlers are pure functions of a parsed request and the engine: no sockets,
// so they are unit-testable by calling the router directly. Errors become
// RFC 9457 problem documents through http/problem.h.
//
// Each route declares its scope in Register() (the one table; docs/api.md,
// "Authentication"). Tenancy: a job belongs to the tenant of the key that
// submitted it. A key with a tenant sees only that tenant's jobs; any other
// job, and an id that never existed, get the same 404 (NoSuchJob(), after
// the same store read), for every route that takes a job id. A key without
// a tenant (and every request when authentication is off) sees all jobs.
#pragma once

#include <atomic>
#include <memory>

#include <boost/asio/awaitable.hpp>

#include "api/events.h"
#include "api/stream_slots.h"
#include "engine/engine.h"
#include "http/router.h"
#include "webhooks/address_policy.h"

namespace acceptd::api {

inline constexpr Millis kDefaultMaxWait = 60'000;
inline constexpr Millis kDefaultResolveTimeout = 5'000;
inline constexpr int64_t kDefaultMaxEventStreams = 10'000;
// GET /v1/stats: the window (seconds) and its bounds, in buckets of a minute.
inline constexpr int64_t kDefaultStatsWindow = 3600;
inline constexpr int64_t kMinStatsWindow = 60;
inline constexpr int64_t kMaxStatsWindow = 86'400;
inline constexpr Millis kStatsStep = 60'000;

struct ApiOptions {
  Millis max_wait = kDefaultMaxWait;                  // cap on a long-poll's ?wait= / Prefer: wait=
  Millis events_heartbeat = kDefaultEventsHeartbeat;  // comment interval of an event stream
  int64_t max_event_streams = kDefaultMaxEventStreams;  // open at once; 503 beyond
  // Submits may name a `callback` URL only when a signing secret is set;
  // its addresses must pass the SSRF guard.
  bool callbacks_enabled = false;
  webhooks::AddressPolicy callback_policy;
  Millis resolve_timeout = kDefaultResolveTimeout;  // the DNS lookup of a callback's host
  // [ui]: the dashboard under /ui/ (api/ui_api.h). `ui_open`: without API
  // keys, serve it to every client, not only loopback ones.
  bool ui_enabled = true;
  bool ui_open = false;
  // API keys are configured (the router authenticates): set by serve.cc.
  bool keys_enabled = false;
};

// The error of a job the caller may not see: an unknown id, or (for a
// tenant's key) a job of another tenant, purged or not. One value, so that
// both answers are byte-identical.
Error NoSuchJob();
// `error` as `caller` may see it: for a tenant's key, kNotFound and kGone
// become NoSuchJob() (tombstones do not record the tenant, so a purged job
// cannot be told apart from another tenant's). `caller` null: no keys.
Error VisibleError(Error error, const http::Principal* caller);
// The job `id` if `caller` may see it, else VisibleError's answer. One store
// read whether the job exists, belongs to another tenant, or not (off the
// event loop when the store is remote; see ReadJob).
boost::asio::awaitable<Result<Job>> ReadVisibleJob(Engine& engine, JobId id,
                                                   const http::Principal* caller);

class V1Api {
 public:
  // `streams` (shared with the dashboard's GET /v1/events) must outlive this.
  V1Api(Engine& engine, ApiOptions options, StreamSlots& streams)
      : engine_(engine), options_(options), streams_(streams) {}
  void Register(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> Submit(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Status(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Result(http::Request& req, const http::PathParams& p);
  // GET /v1/jobs/{id}/payload: the submitted body, with its Content-Type.
  boost::asio::awaitable<http::Response> Payload(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Cancel(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Delete(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> List(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Queues(http::Request& req, const http::PathParams& p);
  // GET /v1/jobs/{id}/attempts: the job's attempt history (JobStore::GetAttempts).
  boost::asio::awaitable<http::Response> Attempts(http::Request& req, const http::PathParams& p);
  // GET /v1/stats?window=: finished jobs per queue and minute.
  boost::asio::awaitable<http::Response> Stats(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Nodes(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Pause(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Retry(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Purge(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Resume(http::Request& req, const http::PathParams& p);
  // The answer to a Cancel, Retry or Delete the engine refused (see v1_api.cc).
  boost::asio::awaitable<http::Response> ChangeRefused(JobId id, Error error,
                                                       const http::Principal* caller);
  boost::asio::awaitable<http::Response> SetPaused(std::string queue, bool paused,
                                                   const http::Principal* caller);
  boost::asio::awaitable<http::Response> Health(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Ready(http::Request& req, const http::PathParams& p);
  // GET /v1/jobs/{id}/events: Server-Sent Events (see api/events.h).
  boost::asio::awaitable<http::Response> Events(http::Request& req, const http::PathParams& p);

  // The status monitor's answer for `job`; a succeeded job redirects to its
  // result with `succeeded_status` (302 on GET, 303 after a POST).
  http::Response StatusResponse(const Job& job, http::Status succeeded_status) const;
  // Seconds a client should wait before polling `job` again.
  int64_t RetryAfterSeconds(const Job& job) const;

  // Suspends (no thread, no store polling) until the job is terminal or gone,
  // or `wait` ms passed.
  boost::asio::awaitable<void> WaitForTerminal(const JobId& id, Millis wait);

  Engine& engine_;
  ApiOptions options_;
  StreamSlots& streams_;
};

}  // namespace acceptd::api
