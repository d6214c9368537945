#include "cli/server_routes.h"

namespace acceptd {

ServerRoutes::ServerRoutes(Engine& engine, const http::Router& router, const api::ApiOptions& api,
                           api::CompatOptions compat)
    : v1_(engine, api, event_streams_),
      compat_(engine, api, std::move(compat)),
      lease_(engine),
      metrics_(engine, router),
      ui_(engine, api, event_streams_),
      schedules_(engine) {}

void ServerRoutes::Register(http::Router& router) {
  v1_.Register(router);
  compat_.Register(router);
  lease_.Register(router);
  metrics_.Register(router);
  openapi_.Register(router);
  ui_.Register(router);
  schedules_.Register(router);
}

}  // namespace acceptd
