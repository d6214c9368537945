// MetricsApi: GET /metrics, the Prometheus text format (version 0.0.4):
// what the engine counted (engine_metrics.h), the store's job counts and
// oldest ready job per queue, the router's per-route requests and durations,
// the server's open connections, the engine's long-poll waiters and event
// streams, and the process (memory, CPU, file descriptors).
// docs/operations.md, "Metrics", lists every metric.
//
// With API keys, the route needs the `metrics` scope (or `admin`), and a key
// with a tenant is refused: the figures cover every tenant's jobs.
//
// A scrape costs two store reads (the counts table, and an index scan of the
// ready jobs for their age) on a read thread, never on the event loop, and
// touches no lock of the hot paths: counters are read as they run.
#pragma once

#include <functional>

#include "engine/engine.h"
#include "http/router.h"

namespace acceptd::api {

class MetricsApi {
 public:
  // Adds what only the caller can see (the server's connections), written
  // after the rest of each scrape. Before serving.
  using Extra = std::function<void(metrics::MetricsText&)>;
  MetricsApi(Engine& engine, const http::Router& router) : engine_(engine), router_(router) {}
  void SetExtra(Extra extra) { extra_ = std::move(extra); }
  void Register(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> Metrics(http::Request& req, const http::PathParams& p);

  Engine& engine_;
  const http::Router& router_;
  Extra extra_;
};

// Writes the process_* metrics of this process (what Prometheus client
// libraries export): resident and virtual memory, CPU seconds, open and
// maximum file descriptors, start time. Reads /proc/self.
void WriteProcessMetrics(metrics::MetricsText& out);

}  // namespace acceptd::api
