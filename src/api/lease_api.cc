#include "api/lease_api.h"

#include <charconv>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "api/await_engine.h"
#include "api/job_document.h"
#include "api/request_options.h"
#include "http/problem.h"

namespace acceptd::api {

namespace json = boost::json;
using boost::asio::awaitable;
using http::Field;
using http::JsonResponse;
using http::Request;
using http::Response;

std::string FormatLeaseId(const LeaseRef& lease) {
  return lease.id.ToHex() + "." + std::to_string(lease.lease_token);
}

std::optional<LeaseRef> ParseLeaseId(std::string_view text) {
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto id = JobId::Parse(text.substr(0, dot));
  auto token = ParseInt(text.substr(dot + 1));
  if (!id || !token || *token <= 0) return std::nullopt;
  return LeaseRef{*id, *token};
}

namespace {

Response BadOption(std::string_view name, std::string_view why) {
  return http::Problem(http::Status::bad_request,
                       fmt::format("invalid query option '{}': {}", name, why),
                       json::object{{"option", name}});
}

// A lease-fenced call that found the job moved on: one answer for a stale
// token, a finished or removed job and an id that never was.
Response LeaseProblem(const Error& error) {
  if (error.code == ErrorCode::kStaleLease || error.code == ErrorCode::kNotFound ||
      error.code == ErrorCode::kGone) {
    return http::Problem(
        http::Status::conflict,
        "this lease is no longer valid: its job finished, was canceled or deleted, or the lease "
        "expired and the job was handed out again; stop working on it",
        json::object{{"code", "stale_lease"}});
  }
  return http::Problem(error);
}

Response UnknownLease() { return LeaseProblem(Error::StaleLease("malformed lease id")); }

// Seconds ?name= in [min, max] ms; `out` keeps its value when absent.
std::optional<Response> SecondsOption(const QueryParamList& params, std::string_view name,
                                      Millis min, Millis max, Millis& out) {
  for (const auto& [k, v] : params) {
    if (k != name) continue;
    auto n = ParseInt(v);
    if (!n || *n * 1000 < min || *n * 1000 > max) {
      return BadOption(name,
                       fmt::format("must be whole seconds from {} to {}", min / 1000, max / 1000));
    }
    out = *n * 1000;
  }
  return std::nullopt;
}

// Only the named options may appear.
std::optional<Response> OnlyOptions(const QueryParamList& params,
                                    std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : params) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return BadOption(k, "unknown option");
    }
  }
  return std::nullopt;
}

std::optional<LeaseRef> LeaseOf(const http::PathParams& p) { return ParseLeaseId(p.Get("lease")); }

// Seconds with millisecond precision ("30", "0.5", "29.998"): whole seconds
// would turn a 0.5 s timeout into "0", which reads as none.
std::string Seconds(Millis ms) {
  ms = std::max<Millis>(0, ms);
  std::string out = std::to_string(ms / 1000);
  if (const Millis frac = ms % 1000; frac != 0) {
    std::string digits = fmt::format("{:03d}", frac);
    while (digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

}  // namespace

void LeaseApi::Register(http::Router& r) {
  using http::Access;
  using http::Scope;
  using http::Verb;
  auto bind = [this](auto method) {
    return
        [this, method](Request& req, const http::PathParams& p) { return (this->*method)(req, p); };
  };
  const Access worker = Access::Need(Scope::kWorker);
  r.Add(Verb::post, "/v1/queues/{queue}/leases", worker, bind(&LeaseApi::Lease));
  r.Add(Verb::post, "/v1/leases/{lease}/heartbeat", worker, bind(&LeaseApi::Heartbeat));
  r.Add(Verb::post, "/v1/leases/{lease}/complete", worker, bind(&LeaseApi::Complete));
  r.Add(Verb::post, "/v1/leases/{lease}/fail", worker, bind(&LeaseApi::Fail));
  r.Add(Verb::post, "/v1/leases/{lease}/release", worker, bind(&LeaseApi::Release));
}

awaitable<Response> LeaseApi::Lease(Request& req, const http::PathParams& p) {
  if (p.principal && !p.principal->tenant.empty()) {
    co_return http::Problem(http::Status::forbidden,
                            "a key with a tenant may not lease jobs: a queue's workers see the "
                            "payloads of every tenant; use a worker key without a tenant");
  }
  const std::string queue(p.Get("queue"));
  const QueueConfig* config = engine_.FindQueue(queue);
  if (!config) co_return http::Problem(Error::NotFound(fmt::format("no queue named '{}'", queue)));
  auto params = QueryParams(req.target());
  if (!params) co_return http::Problem(http::Status::bad_request, "malformed request target");
  LeaseRequest lr;
  lr.queue = queue;
  lr.wait = kDefaultLeaseWait;
  lr.lease = engine_.LeaseDuration(*config);
  if (auto bad = OnlyOptions(*params, {"wait", "lease"})) co_return std::move(*bad);
  if (auto bad = SecondsOption(*params, "wait", 0, kMaxLeaseWait, lr.wait)) {
    co_return std::move(*bad);
  }
  if (auto bad = SecondsOption(*params, "lease", kMinLease, kMaxLease, lr.lease)) {
    co_return std::move(*bad);
  }
  lr.owner = p.principal ? "worker:" + p.principal->name : std::string("worker:local");
  auto leased = co_await AwaitEngine<std::optional<Job>>(
      [this, &lr](Engine::Callback<std::optional<Job>> cb) {
        engine_.Lease(std::move(lr), std::move(cb));
      });
  if (!leased) {
    Response res = http::Problem(leased.error());
    if (leased.error().code == ErrorCode::kUnavailable) res.set(Field::retry_after, "1");
    co_return res;
  }
  if (!*leased) {
    Response none{http::Status::no_content, req.version()};
    co_return none;
  }
  Job& job = **leased;
  const std::string lease_id = FormatLeaseId(LeaseRef{job.id, job.lease_token});
  Response res{http::Status::ok, req.version()};
  res.set(Field::content_type, job.content_type);
  res.set(Field::location, "/v1/leases/" + lease_id);
  res.set("Acceptd-Lease", lease_id);
  res.set("Acceptd-Job-Id", job.id.ToHex());
  res.set("Acceptd-Attempt", std::to_string(job.attempts));
  res.set("Acceptd-Max-Attempts", std::to_string(job.max_attempts));
  res.set("Acceptd-Lease-Seconds", Seconds(job.lease_expires_at - engine_.clock().Now()));
  if (job.timeout > 0) res.set("Acceptd-Timeout-Seconds", Seconds(job.timeout));
  res.body() = std::move(job.payload);
  res.prepare_payload();
  co_return res;
}

awaitable<Response> LeaseApi::Heartbeat(Request& req, const http::PathParams& p) {
  auto lease = LeaseOf(p);
  if (!lease) co_return UnknownLease();
  auto params = QueryParams(req.target());
  if (!params) co_return http::Problem(http::Status::bad_request, "malformed request target");
  if (auto bad = OnlyOptions(*params, {"lease"})) co_return std::move(*bad);
  // The lease's own duration is not stored: without ?lease= a heartbeat
  // extends by the queue's default.
  auto job = co_await ReadJob(engine_, lease->id);
  if (!job) co_return LeaseProblem(job.error());
  const QueueConfig* config = engine_.FindQueue(job->queue);
  if (!config) co_return LeaseProblem(Error::StaleLease("queue no longer configured"));
  Millis duration = engine_.LeaseDuration(*config);
  if (auto bad = SecondsOption(*params, "lease", kMinLease, kMaxLease, duration)) {
    co_return std::move(*bad);
  }
  std::optional<Progress> progress;
  if (!req.body().empty()) {
    boost::system::error_code ec;
    json::value doc = json::parse(req.body(), ec);
    const json::object* o = ec ? nullptr : doc.if_object();
    if (!o) {
      co_return http::Problem(http::Status::bad_request,
                              "a heartbeat's body is empty or a JSON object like "
                              "{\"percent\": 40, \"message\": \"resizing\"}");
    }
    Progress pr;
    if (const json::value* v = o->if_contains("percent")) {
      if (!v->is_number()) {
        co_return http::Problem(http::Status::bad_request, "\"percent\" must be a number 0..100");
      }
      pr.percent = static_cast<int>(std::clamp(v->to_number<double>(), 0.0, 100.0));
    }
    if (const json::value* v = o->if_contains("message")) {
      if (!v->is_string() || v->as_string().size() > kMaxFailureDetail) {
        co_return http::Problem(http::Status::bad_request,
                                "\"message\" must be a string of at most 4096 bytes");
      }
      pr.message = std::string(v->as_string());
    }
    progress = std::move(pr);
  }
  auto r = co_await AwaitEngine<HeartbeatResult>(
      [this, &lease, duration, &progress](Engine::Callback<HeartbeatResult> cb) {
        engine_.Heartbeat(*lease, duration, std::move(progress), std::move(cb));
      });
  if (!r) co_return LeaseProblem(r.error());
  const UnixMillis now = engine_.clock().Now();
  json::object body{
      {"cancel_requested", r->cancel_requested},
      {"lease_seconds", static_cast<double>(std::max<Millis>(0, r->lease_expires_at - now)) / 1000},
      {"lease_expires_at", FormatRfc3339(r->lease_expires_at)}};
  co_return JsonResponse(http::Status::ok, json::value(std::move(body)));
}

awaitable<Response> LeaseApi::Complete(Request& req, const http::PathParams& p) {
  auto lease = LeaseOf(p);
  if (!lease) co_return UnknownLease();
  auto ct = req[Field::content_type];
  std::string content_type = ct.empty() ? "application/octet-stream" : std::string(ct);
  std::string body = std::move(req.body());
  auto r =
      co_await AwaitEngine<Job>([this, &lease, &body, &content_type](Engine::Callback<Job> cb) {
        engine_.CompleteLease(*lease, std::move(body), std::move(content_type), std::move(cb));
      });
  if (!r) co_return LeaseProblem(r.error());
  co_return JsonResponse(http::Status::ok, JobDocument(*r));
}

awaitable<Response> LeaseApi::Fail(Request& req, const http::PathParams& p) {
  auto lease = LeaseOf(p);
  if (!lease) co_return UnknownLease();
  boost::system::error_code ec;
  json::value doc = json::parse(req.body(), ec);
  const json::object* o = ec ? nullptr : doc.if_object();
  if (!o) {
    co_return http::Problem(http::Status::bad_request,
                            "a failure is a JSON problem document like {\"detail\": \"what went "
                            "wrong\", \"retryable\": true}");
  }
  WorkerFailure failure;
  failure.error.type = "worker_error";
  for (const char* key : {"title", "detail"}) {
    if (const json::value* v = o->if_contains(key)) {
      if (!v->is_string()) {
        co_return http::Problem(http::Status::bad_request,
                                fmt::format("\"{}\" must be a string", key));
      }
      failure.error.message = std::string(v->as_string());  // detail wins over title
    }
  }
  if (failure.error.message.size() > kMaxFailureDetail) {
    failure.error.message.resize(kMaxFailureDetail);
  }
  if (const json::value* v = o->if_contains("code")) {
    const json::string* code = v->if_string();
    if (!code || code->empty() || code->size() > 64 ||
        !std::all_of(code->begin(), code->end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      co_return http::Problem(http::Status::bad_request,
                              "\"code\" must be a short snake_case slug like \"bad_image\"");
    }
    failure.error.type = std::string(*code);
  }
  if (const json::value* v = o->if_contains("retryable")) {
    if (!v->is_bool()) {
      co_return http::Problem(http::Status::bad_request, "\"retryable\" must be true or false");
    }
    failure.retryable = v->as_bool();
  }
  if (const json::value* v = o->if_contains("retry_after")) {
    // Seconds, like the Retry-After header a backend would send.
    if (!v->is_number() || v->to_number<double>() < 0 || v->to_number<double>() > 1e9) {
      co_return http::Problem(http::Status::bad_request,
                              "\"retry_after\" must be a non-negative number of seconds");
    }
    failure.retry_after = static_cast<Millis>(v->to_number<double>() * 1000);
  }
  auto r = co_await AwaitEngine<Job>([this, &lease, &failure](Engine::Callback<Job> cb) {
    engine_.FailLease(*lease, std::move(failure), std::move(cb));
  });
  if (!r) co_return LeaseProblem(r.error());
  co_return JsonResponse(http::Status::ok, JobDocument(*r));
}

awaitable<Response> LeaseApi::Release(Request&, const http::PathParams& p) {
  auto lease = LeaseOf(p);
  if (!lease) co_return UnknownLease();
  auto r = co_await AwaitEngine<Job>(
      [this, &lease](Engine::Callback<Job> cb) { engine_.ReleaseLease(*lease, std::move(cb)); });
  if (!r) co_return LeaseProblem(r.error());
  co_return JsonResponse(http::Status::ok, JobDocument(*r));
}

}  // namespace acceptd::api
