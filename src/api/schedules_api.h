// SchedulesApi: GET /v1/schedules (scope read), the configured schedules
// (`[[schedules]]`, engine/schedule_runner.h) with their next tick and the
// last tick fired and its job (the store's ScheduleState, shared by every
// node sharing the store). Schedules are not a tenant's: every key with the
// read scope sees them all (the jobs they make belong to no tenant).
//
// Thread safety: the handler may run on any event loop; the engine's
// schedule list is immutable once it started.
#pragma once

#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include "engine/engine.h"
#include "http/router.h"

namespace acceptd::api {

// The document of GET /v1/schedules (docs/api.md): each of `schedules` in
// configuration order, with its next tick after `now` (null: never again)
// and its state from `states` (null fields: it never fired).
boost::json::value SchedulesDocument(const std::vector<ScheduleConfig>& schedules,
                                     const std::vector<ScheduleState>& states, UnixMillis now);

class SchedulesApi {
 public:
  explicit SchedulesApi(Engine& engine) : engine_(engine) {}
  void Register(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> List(http::Request& req, const http::PathParams& p);

  Engine& engine_;
};

}  // namespace acceptd::api
