// Router: maps (method, path) to a handler. Patterns are literal segments and
// `{name}` captures ("/v1/jobs/{id}/result"). An unknown path gets a 404
// problem; a known path with another method gets 405 with `Allow`.
// Routes are added before serving; Route() is then thread-safe (read-only).
//
// Each route declares its Access (http/auth.h). With an Authenticator that
// has keys, Route() authenticates every request before dispatch: 401 without
// a valid key (also for unknown paths, so that the route table is not
// probed anonymously), 403 when the key lacks the route's scope; public
// routes are served without looking at credentials. The handler then finds
// the caller in PathParams::principal. Without keys, nothing is checked and
// `principal` is null.
//
// Every routed request gets a request id: the client's X-Request-Id if it
// is a plausible one (1 to 128 of A-Z a-z 0-9 and -_.:/+=@), else a
// generated one (16 hex digits); the response echoes it. Route() also counts
// each request (by method, route pattern and status class) and its duration
// for GET /metrics (WriteMetrics), and hands it to the access log if one is
// set. Both name the route's pattern, never the path: a job's id in a path
// is a capability, and does not belong in logs or metric labels.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "http/auth.h"
#include "http/types.h"

namespace acceptd::http {

// One routed request, as the access log sees it.
struct AccessRecord {
  std::string_view method;
  std::string_view route;  // the matched pattern ("/v1/jobs/{id}"), or "-"
  unsigned status = 0;
  std::chrono::nanoseconds duration{0};  // from routing to the response (not its writing)
  std::optional<size_t> bytes;           // the response body; unset for a streamed body
  std::string_view request_id;
  std::string_view key;  // the API key's name; empty without keys or on a public route
};
using AccessLog = std::function<void(const AccessRecord&)>;

// What the router learned about a request: the path's captures, and who sent it.
struct PathParams {
  std::vector<std::pair<std::string, std::string>> values;
  // The authenticated caller; null when authentication is off (no keys) or
  // the route is public.
  const Principal* principal = nullptr;
  // The connection's peer (for routes whose answer depends on where the
  // request comes from, such as the dashboard's loopback-only default).
  Peer peer;
  std::string_view Get(std::string_view name) const;
};

using RouteHandler = std::function<boost::asio::awaitable<Response>(Request&, const PathParams&)>;

// One route of a router's table (Router::Routes()).
struct RouteInfo {
  Verb method;
  std::string pattern;  // as added: "/v1/jobs/{id}"
  Access access;
};

class Router {
 public:
  void Add(Verb method, std::string_view pattern, Access access, RouteHandler handler);
  // A route that does not declare its access is for admin keys only.
  void Add(Verb method, std::string_view pattern, RouteHandler handler) {
    Add(method, pattern, Access::Need(Scope::kAdmin), std::move(handler));
  }
  // Checks requests against `auth` (must outlive the router). Before serving.
  void SetAuthenticator(const Authenticator* auth) { auth_ = auth; }
  // The Retry-After (rounded up to whole seconds, at least 1; default 1 s)
  // of a 503 that a route answers without one. Before serving.
  void SetUnavailableRetryAfter(Millis retry_after);
  // Called with every routed request once its response is ready (on the
  // connection's thread; it must be quick). Before serving.
  void SetAccessLog(AccessLog log) { access_log_ = std::move(log); }
  // acceptd_http_requests_total and acceptd_http_request_duration_seconds,
  // per route and method (requests that matched no route: route="unmatched").
  void WriteMetrics(metrics::MetricsText& out) const;
  // Dispatches a request (the path is the target without its query).
  // Without keys, routes that need the `worker` scope answer only loopback
  // peers (403 otherwise): handing out other people's jobs is not for
  // whoever can reach the port.
  boost::asio::awaitable<Response> Route(Request& req, Peer peer = {}) const;
  // Every route added: one entry per method of each pattern, patterns in
  // the order first added (for the test that compares the route table with
  // docs/openapi.json).
  std::vector<RouteInfo> Routes() const;

 private:
  // Requests of one route and method, or of none (unmatched_).
  struct Stats {
    Stats() : duration(metrics::RequestDurationBuckets()) {}
    metrics::Counter by_class[5];  // 1xx .. 5xx
    metrics::Histogram duration;   // seconds
  };
  struct RouteEntry {
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" captures
    struct Method {
      Verb verb;
      Access access;
      RouteHandler handler;
      std::unique_ptr<Stats> stats;
    };
    std::vector<Method> methods;
  };
  // What Dispatch found, for the counting and logging in Route.
  struct Dispatched {
    const RouteEntry* route = nullptr;
    const RouteEntry::Method* method = nullptr;
    std::string key;  // the caller's key name, if authenticated
  };
  boost::asio::awaitable<Response> Dispatch(Request& req, Peer peer, Dispatched& out) const;
  static bool Match(const RouteEntry& r, const std::vector<std::string_view>& parts,
                    PathParams* params);
  std::vector<RouteEntry> routes_;
  const Authenticator* auth_ = nullptr;
  std::string unavailable_retry_after_ = "1";
  AccessLog access_log_;
  std::unique_ptr<Stats> unmatched_ = std::make_unique<Stats>();
};

// Splits "/a/b" into {"a", "b"}; the query, if any, is ignored.
std::vector<std::string_view> SplitPath(std::string_view target);

}  // namespace acceptd::http
