// ServerRoutes: every API of `acceptd serve`, registered on one router. This
// is the one list of what the server answers: serve.cc serves it, and
// tests/cli/openapi_routes_test.cc compares the router it fills with
// docs/openapi.json (both ways: every route documented, every documented
// operation routed, with the same scope).
//
// To add an API: construct it here and register it in Register(), then
// describe its routes in docs/openapi.json; the test fails until they are.
#pragma once

#include "api/compat_api.h"
#include "api/lease_api.h"
#include "api/metrics_api.h"
#include "api/openapi_api.h"
#include "api/schedules_api.h"
#include "api/ui_api.h"
#include "api/v1_api.h"
#include "engine/engine.h"
#include "http/router.h"

namespace acceptd {

class ServerRoutes {
 public:
  // `engine`, `router` and `api` must outlive this object (the APIs keep
  // references; GET /metrics reports the router's counts). Before
  // engine.Start() (the dashboard's event hub observes the engine).
  ServerRoutes(Engine& engine, const http::Router& router, const api::ApiOptions& api,
               api::CompatOptions compat);
  // Adds every route to `router`. Once, before serving; this object must
  // outlive the router's use (the handlers call into it).
  void Register(http::Router& router);
  // GET /metrics, to add what only serve.cc sees (MetricsApi::SetExtra).
  api::MetricsApi& metrics() { return metrics_; }

 private:
  api::StreamSlots event_streams_;  // of v1_ and ui_: one cap (max_event_streams)
  api::V1Api v1_;
  api::CompatApi compat_;
  api::LeaseApi lease_;
  api::MetricsApi metrics_;
  api::OpenApiApi openapi_;
  api::UiApi ui_;  // the dashboard and GET /v1/events
  api::SchedulesApi schedules_;
};

}  // namespace acceptd
