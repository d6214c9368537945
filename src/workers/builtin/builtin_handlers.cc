#include "workers/builtin/builtin_handlers.h"

#include <algorithm>

#include <boost/json.hpp>

namespace acceptd {
namespace json = boost::json;

namespace {

constexpr int64_t kMaxSleepMs = 24LL * 3600 * 1000;
constexpr int kSleepProgressSteps = 10;

// The payload as a JSON object, or a non-retryable failure naming `what`.
std::variant<json::object, HandlerFailure> ParseObject(std::string_view payload,
                                                       std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) {
    return HandlerFailure{std::string("payload must be a JSON object ") + std::string(what), false,
                          "invalid_payload"};
  }
  return std::move(v.as_object());
}

}  // namespace

HandlerOutcome GreetingHandler::Run(std::string_view payload, std::string_view, JobContext&) {
  auto parsed = ParseObject(payload, "like {\"name\": \"...\"}");
  if (auto* f = std::get_if<HandlerFailure>(&parsed)) return *f;
  auto& obj = std::get<json::object>(parsed);
  const json::value* name = obj.if_contains("name");
  if (!name || !name->is_string()) {
    return HandlerFailure{"payload needs a string \"name\"", false, "invalid_payload"};
  }
  json::object out;
  out["result"] = "Hello " + std::string(name->as_string()) + "...!";
  return HandlerSuccess{json::serialize(out), "application/json"};
}

HandlerOutcome EchoHandler::Run(std::string_view payload, std::string_view content_type,
                                JobContext&) {
  return HandlerSuccess{std::string(payload), std::string(content_type)};
}

HandlerOutcome SleepHandler::Run(std::string_view payload, std::string_view, JobContext& ctx) {
  auto parsed = ParseObject(payload, "like {\"ms\": 1000}");
  if (auto* f = std::get_if<HandlerFailure>(&parsed)) return *f;
  auto& obj = std::get<json::object>(parsed);
  const json::value* ms_value = obj.if_contains("ms");
  if (!ms_value || !ms_value->is_number()) {
    return HandlerFailure{"payload needs a number \"ms\"", false, "invalid_payload"};
  }
  boost::system::error_code ec;
  const auto ms = static_cast<int64_t>(ms_value->to_number<double>(ec));
  if (ec || ms < 0 || ms > kMaxSleepMs) {
    return HandlerFailure{"\"ms\" must be between 0 and 86400000", false, "invalid_payload"};
  }
  const int64_t step = std::max<int64_t>(ms / kSleepProgressSteps, 1);
  int64_t slept = 0;
  while (slept < ms) {
    const int64_t chunk = std::min(step, ms - slept);
    if (!ctx.WaitFor(std::chrono::milliseconds(chunk))) {
      return HandlerFailure{"sleep interrupted", false, "canceled"};
    }
    slept += chunk;
    ctx.ReportProgress(static_cast<int>(slept * 100 / ms),
                       "slept " + std::to_string(slept) + " of " + std::to_string(ms) + " ms");
  }
  json::object out;
  out["slept_ms"] = ms;
  return HandlerSuccess{json::serialize(out), "application/json"};
}

HandlerOutcome FailHandler::Run(std::string_view payload, std::string_view, JobContext&) {
  std::string message = "failed on purpose";
  bool retryable = true;
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (!ec && v.is_object()) {
    if (auto* m = v.as_object().if_contains("message"); m && m->is_string()) {
      message = std::string(m->as_string());
    }
    if (auto* r = v.as_object().if_contains("retryable"); r && r->is_bool()) {
      retryable = r->as_bool();
    }
  }
  return HandlerFailure{std::move(message), retryable, "handler_error"};
}

}  // namespace acceptd
