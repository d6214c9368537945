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
#include "api/openapi_api.h"
#include "api/v1_api.h"
#include "engine/engine.h"
#include "http/router.h"

namespace acceptd {

class ServerRoutes {
 public:
  // `engine` and `api` must outlive this object (the APIs keep references).
  ServerRoutes(Engine& engine, const api::ApiOptions& api, api::CompatOptions compat);
  // Adds every route to `router`. Once, before serving; this object must
  // outlive the router's use (the handlers call into it).
  void Register(http::Router& router);

 private:
  api::V1Api v1_;
  api::CompatApi compat_;
  api::LeaseApi lease_;
  api::OpenApiApi openapi_;
};

}  // namespace acceptd
