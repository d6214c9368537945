#include "api/compat_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/await_engine.h"
#include "api/job_document.h"
#include "http/problem.h"
#include "webhooks/http_post.h"
#include "webhooks/resolver.h"

namespace acceptd::api {

namespace json = boost::json;
using boost::asio::awaitable;
using http::Field;
using http::JsonResponse;
using http::Request;
using http::Response;

namespace {

// The request body as a JSON object, or a 400 problem.
std::optional<json::object> BodyObject(const Request& req, Response& error) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec || !v.is_object()) {
    error = http::Problem(http::Status::bad_request, "the body must be a JSON object");
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// redirect_location's URL, "" if absent; nullopt (and `error`) if malformed.
std::optional<std::string> RedirectUrl(const json::object& body, Response& error) {
  const json::value* loc = body.if_contains("redirect_location");
  if (!loc || loc->is_null()) return std::string();
  const json::value* url = loc->is_object() ? loc->as_object().if_contains("url") : nullptr;
  if (!url || !url->is_string()) {
    error = http::Problem(http::Status::bad_request,
                          "redirect_location must be {\"url\": \"...\", \"method\": \"POST\"}");
    return std::nullopt;
  }
  if (const json::value* method = loc->as_object().if_contains("method")) {
    if (!method->is_string() || !boost::beast::iequals(method->as_string(), "POST")) {
      error = http::Problem(http::Status::bad_request,
                            "redirect_location.method must be POST (the only method supported)");
      return std::nullopt;
    }
  }
  return std::string(url->as_string());
}

// The job's result as the original producer reported it: the greeting's
// "result" member when the result is such an object, else the whole result.
json::value ResultValue(const StoredResult& result) {
  boost::system::error_code ec;
  json::value v = json::parse(result.body, ec);
  if (ec) return json::value(json::string(result.body));
  if (v.is_object()) {
    if (const json::value* r = v.as_object().if_contains("result")) return *r;
  }
  return v;
}

}  // namespace

void CompatApi::Register(http::Router& r) {
  // A submit, and a status poll (whose redirect POST is the result's delivery).
  r.Add(http::Verb::post, "/v1/submit-job", http::Access::Need(http::Scope::kSubmit),
        [this](Request& req, const http::PathParams& p) { return SubmitJob(req, p); });
  r.Add(http::Verb::post, "/v1/pool-job", http::Access::Need(http::Scope::kRead),
        [this](Request& req, const http::PathParams& p) { return PoolJob(req, p); });
}

awaitable<Response> CompatApi::SubmitJob(Request& req, const http::PathParams& p) {
  Response error;
  auto body = BodyObject(req, error);
  if (!body) co_return error;
  auto url = RedirectUrl(*body, error);
  if (!url) co_return error;
  if (!url->empty()) {
    auto target = webhooks::ParseCallbackUrl(*url);
    if (!target) {
      co_return http::Problem(http::Status::bad_request,
                              "redirect_location.url: " + target.error().detail);
    }
    auto allowed =
        co_await webhooks::ResolveAllowed(*target, api_.callback_policy, api_.resolve_timeout);
    if (!allowed) {
      co_return http::Problem(http::Status::bad_request,
                              "redirect_location.url: " + allowed.error().detail);
    }
  }
  SubmitRequest s;
  s.queue = options_.queue;
  if (p.principal) s.tenant = p.principal->tenant;
  s.payload = std::move(req.body());  // kept verbatim: pool-job sends it back with the result
  s.content_type = "application/json";
  auto job = co_await AwaitEngine<Job>(
      [&](Engine::Callback<Job> cb) { engine_.Submit(std::move(s), std::move(cb)); });
  if (!job) co_return http::Problem(job.error());
  Response res =
      JsonResponse(http::Status::accepted, json::object{{"message_token", job->id.ToHex()}});
  res.set(Field::location, StatusUrl(job->id));
  co_return res;
}

awaitable<Response> CompatApi::PoolJob(Request& req, const http::PathParams& p) {
  Response error;
  auto body = BodyObject(req, error);
  if (!body) co_return error;
  const json::value* token = body->if_contains("massage_token");
  if (!token) token = body->if_contains("message_token");
  if (!token || !token->is_string()) {
    co_return http::Problem(http::Status::bad_request,
                            "the body needs \"massage_token\" (or \"message_token\")");
  }
  auto id = JobId::Parse(token->as_string());
  if (!id) co_return http::Problem(NoSuchJob());
  auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
  if (!job) co_return http::Problem(job.error());
  if (!IsTerminal(job->state)) {
    co_return JsonResponse(http::Status::accepted, json::object{{"message_token", id->ToHex()},
                                                                {"state", ToString(job->state)}});
  }
  if (job->state != JobState::kSucceeded) {
    co_return http::Problem(http::Status::conflict,
                            fmt::format("the job ended {} without a result", ToString(job->state)),
                            json::object{{"state", ToString(job->state)}});
  }
  auto payload = co_await ReadPayload(engine_, *id);
  auto result = co_await ReadResult(engine_, *id);
  if (!payload) co_return http::Problem(VisibleError(payload.error(), p.principal));
  if (!result) co_return http::Problem(VisibleError(result.error(), p.principal));

  // The job data as the original producer sent it: the submitted fields plus
  // the token, the status and the result.
  boost::system::error_code ec;
  json::value submitted = json::parse(payload->body, ec);
  json::object data =
      !ec && submitted.is_object() ? std::move(submitted.as_object()) : json::object();
  data["message_token"] = id->ToHex();
  data["status"] = "complete";
  data["result"] = ResultValue(*result);

  auto url = RedirectUrl(data, error);
  if (url && !url->empty()) {
    struct InFlight {
      std::atomic<int>& n;
      ~InFlight() { --n; }
    } in_flight{redirects_in_flight_};
    if (++redirects_in_flight_ > kMaxRedirectsInFlight) {
      Response busy =
          http::Problem(http::Status::service_unavailable, "too many redirects in progress");
      busy.set(Field::retry_after, "1");
      co_return busy;
    }
    webhooks::OutgoingPost post;
    post.url = *url;
    post.body = json::serialize(data);
    post.timeout = options_.redirect_timeout;
    const CallbackResponse sent = co_await webhooks::PostJson(post, api_.callback_policy);
    if (!sent.http_status || *sent.http_status < 200 || *sent.http_status >= 300) {
      // As the original producer did: not delivered, so "still accepted";
      // the client's poller asks again and the delivery is retried then.
      const std::string why =
          sent.http_status ? fmt::format("status {}", *sent.http_status) : sent.error;
      spdlog::warn("job={} pool-job: redirect to {} failed: {}", id->ToHex(), *url, why);
      co_return JsonResponse(http::Status::accepted, json::object{{"message_token", id->ToHex()},
                                                                  {"state", "succeeded"},
                                                                  {"redirect_error", why}});
    }
  }
  Response res = JsonResponse(http::Status::found, data);
  res.set(Field::location, ResultUrl(*id));
  co_return res;
}

}  // namespace acceptd::api
