#include "api/schedules_api.h"

#include <algorithm>

#include <boost/json.hpp>

#include "api/await_engine.h"
#include "http/problem.h"

namespace acceptd::api {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {
// Not a coroutine (GCC 12: no temporaries inside a co_await expression).
awaitable<Result<std::vector<ScheduleState>>> ReadScheduleStates(Engine& engine) {
  return AwaitRead<std::vector<ScheduleState>>(
      engine, [&engine](Engine::Callback<std::vector<ScheduleState>> cb) {
        engine.ScheduleStates(std::move(cb));
      });
}
}  // namespace

json::value SchedulesDocument(const std::vector<ScheduleConfig>& schedules,
                              const std::vector<ScheduleState>& states, UnixMillis now) {
  json::array out;
  for (const ScheduleConfig& s : schedules) {
    auto state = std::find_if(states.begin(), states.end(),
                              [&](const ScheduleState& st) { return st.schedule == s.name; });
    const auto next = NextTick(s, now);
    json::value last_fire = nullptr, last_job = nullptr;
    if (state != states.end()) {
      last_fire = json::string(FormatRfc3339(state->last_fire_at));
      last_job = json::string(state->last_job_id.ToHex());
    }
    out.push_back(json::object{
        {"name", s.name},
        {"cron", s.cron ? s.cron->ToString() : std::string()},
        {"timezone", s.zone.name()},
        {"queue", s.queue},
        {"content_type", s.content_type},
        {"on_missed", ToString(s.on_missed)},
        {"next_fire_at", next ? json::value(json::string(FormatRfc3339(*next))) : nullptr},
        {"last_fire_at", std::move(last_fire)},
        {"last_job_id", std::move(last_job)},
    });
  }
  return json::object{{"schedules", std::move(out)}};
}

void SchedulesApi::Register(http::Router& r) {
  r.Add(http::Verb::get, "/v1/schedules", http::Access::Need(http::Scope::kRead),
        [this](http::Request& req, const http::PathParams& p) { return List(req, p); });
}

awaitable<http::Response> SchedulesApi::List(http::Request&, const http::PathParams&) {
  auto states = co_await ReadScheduleStates(engine_);
  if (!states) co_return http::Problem(states.error());
  co_return http::JsonResponse(
      http::Status::ok, SchedulesDocument(engine_.schedules(), *states, engine_.clock().Now()));
}

}  // namespace acceptd::api
