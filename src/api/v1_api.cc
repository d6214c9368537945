#include "api/v1_api.h"

#include <cmath>
#include <map>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include "api/await_engine.h"
#include "api/job_document.h"
#include "api/request_options.h"
#include "http/problem.h"
#include "webhooks/resolver.h"

namespace acceptd::api {

namespace json = boost::json;
using boost::asio::awaitable;
using http::Field;
using http::Request;
using http::Response;

using http::JsonResponse;

namespace {

// A node unseen for this many heartbeat intervals is shown as not alive.
constexpr int kNodeMissedBeats = 3;

// Whole seconds as an integer, fractions as a number ("30", not "3E1").
json::value SecondsValue(Millis ms) {
  if (ms % 1000 == 0) return json::value(ms / 1000);
  return json::value(static_cast<double>(ms) / 1000.0);
}

// SHA-256 of what makes a submit the same request: content type, query and body.
std::string RequestDigest(const Request& req) {
  std::string_view target = req.target();
  const auto q = target.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q);
  const std::string_view type = req[Field::content_type];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::string_view part : {type, std::string_view("\n"), query, std::string_view("\n"),
                                std::string_view(req.body())}) {
    EVP_DigestUpdate(ctx, part.data(), part.size());
  }
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<const char*>(md), len);
}

Response BadOption(std::string_view name, std::string_view why) {
  return http::Problem(http::Status::bad_request,
                       fmt::format("invalid query option '{}': {}", name, why),
                       json::object{{"option", name}});
}

// The tenant a caller is confined to; empty: none (sees every job).
std::string_view TenantOf(const http::Principal* caller) {
  return caller ? std::string_view(caller->tenant) : std::string_view();
}

}  // namespace

Error NoSuchJob() { return Error::NotFound("no such job"); }

Error VisibleError(Error error, const http::Principal* caller) {
  if (!TenantOf(caller).empty() &&
      (error.code == ErrorCode::kNotFound || error.code == ErrorCode::kGone)) {
    return NoSuchJob();
  }
  return error;
}

namespace {
// `job` as `caller` may see it (see ReadVisibleJob).
Result<Job> Visible(Result<Job> job, const http::Principal* caller) {
  if (!job) return VisibleError(std::move(job).error(), caller);
  const std::string_view tenant = TenantOf(caller);
  if (!tenant.empty() && job->tenant != tenant) return NoSuchJob();
  return job;
}
}  // namespace

awaitable<Result<Job>> ReadVisibleJob(Engine& engine, JobId id, const http::Principal* caller) {
  // Every status poll comes here: on an embedded store, read right here
  // rather than through one more coroutine (ReadJob).
  if (engine.ReadsInline()) co_return Visible(engine.Get(id), caller);
  // Cached: no hop to a read thread and back.
  if (auto cached = engine.GetCached(id)) co_return Visible(std::move(*cached), caller);
  auto job = co_await ReadJob(engine, id);
  co_return Visible(std::move(job), caller);
}

void V1Api::Register(http::Router& r) {
  using http::Access;
  using http::Scope;
  using http::Verb;
  auto bind = [this](auto method) {
    return
        [this, method](Request& req, const http::PathParams& p) { return (this->*method)(req, p); };
  };
  // The route table, with the scope each route needs when API keys are set.
  r.Add(Verb::post, "/v1/queues/{queue}/jobs", Access::Need(Scope::kSubmit), bind(&V1Api::Submit));
  r.Add(Verb::get, "/v1/jobs/{id}", Access::Need(Scope::kRead), bind(&V1Api::Status));
  r.Add(Verb::delete_, "/v1/jobs/{id}", Access::Need(Scope::kCancel), bind(&V1Api::Delete));
  r.Add(Verb::get, "/v1/jobs/{id}/result", Access::Need(Scope::kRead), bind(&V1Api::Result));
  r.Add(Verb::get, "/v1/jobs/{id}/payload", Access::Need(Scope::kRead), bind(&V1Api::Payload));
  r.Add(Verb::get, "/v1/jobs/{id}/events", Access::Need(Scope::kRead), bind(&V1Api::Events));
  r.Add(Verb::post, "/v1/jobs/{id}/cancel", Access::Need(Scope::kCancel), bind(&V1Api::Cancel));
  r.Add(Verb::post, "/v1/jobs/{id}/retry", Access::Need(Scope::kAdmin), bind(&V1Api::Retry));
  r.Add(Verb::get, "/v1/jobs", Access::Need(Scope::kRead), bind(&V1Api::List));
  r.Add(Verb::get, "/v1/jobs/{id}/attempts", Access::Need(Scope::kRead), bind(&V1Api::Attempts));
  r.Add(Verb::get, "/v1/stats", Access::Need(Scope::kRead), bind(&V1Api::Stats));
  r.Add(Verb::get, "/v1/queues", Access::Need(Scope::kRead), bind(&V1Api::Queues));
  r.Add(Verb::get, "/v1/nodes", Access::Need(Scope::kRead), bind(&V1Api::Nodes));
  // Operator actions: the admin scope (without keys: open, as every route).
  r.Add(Verb::post, "/v1/queues/{queue}/pause", Access::Need(Scope::kAdmin), bind(&V1Api::Pause));
  r.Add(Verb::post, "/v1/queues/{queue}/resume", Access::Need(Scope::kAdmin), bind(&V1Api::Resume));
  r.Add(Verb::post, "/v1/queues/{queue}/purge", Access::Need(Scope::kAdmin), bind(&V1Api::Purge));
  // Liveness stays open to probes; readiness says whether the store answers,
  // which is the operator's business: any valid key.
  r.Add(Verb::get, "/healthz", Access::Public(), bind(&V1Api::Health));
  r.Add(Verb::get, "/readyz", Access::AnyKey(), bind(&V1Api::Ready));
  // Any 503 (a read while the store is down, too) says when to come back.
  r.SetUnavailableRetryAfter(engine_.options().retry_after);
}

int64_t V1Api::RetryAfterSeconds(const Job& job) const {
  return std::max<int64_t>(1, (engine_.RetryAfter(job) + 999) / 1000);
}

awaitable<Response> V1Api::Submit(Request& req, const http::PathParams& p) {
  SubmitRequest s;
  s.queue = std::string(p.Get("queue"));
  s.tenant = std::string(TenantOf(p.principal));
  if (!engine_.FindQueue(s.queue)) {
    co_return http::Problem(http::Status::not_found, fmt::format("no queue named '{}'", s.queue));
  }
  auto params = QueryParams(req.target());
  if (!params) co_return http::Problem(http::Status::bad_request, "malformed query string");
  SubmitOptions options;
  if (auto bad = ParseSubmitOptions(*params, options_.callbacks_enabled, options)) {
    co_return BadOption(bad->option, bad->why);
  }
  s.max_attempts = options.max_attempts;
  s.timeout = options.timeout;
  s.delay = options.delay;
  s.priority = options.priority;
  if (!options.callback_url.empty()) {
    // Checked now so the client hears of a refused address at once; the
    // sender checks again at each delivery (DNS may have changed).
    auto allowed = co_await webhooks::ResolveAllowed(options.callback, options_.callback_policy,
                                                     options_.resolve_timeout);
    if (!allowed && allowed.error().code == ErrorCode::kUnavailable) {
      Response res = http::Problem(allowed.error(), json::object{{"option", "callback"}});
      res.set(Field::retry_after, "5");
      co_return res;
    }
    if (!allowed) co_return BadOption("callback", allowed.error().detail);
    s.callback_url = std::move(options.callback_url);
  }
  auto ct = req[Field::content_type];
  s.content_type = ct.empty() ? "application/octet-stream" : std::string(ct);
  if (auto key = req["Idempotency-Key"]; !key.empty()) {
    auto parsed = ParseIdempotencyKey(key);
    if (!parsed) {
      co_return http::Problem(http::Status::bad_request,
                              "Idempotency-Key must be 1 to 255 visible ASCII characters");
    }
    s.idempotency_key = std::move(*parsed);
    s.request_digest = RequestDigest(req);
  }
  s.payload = std::move(req.body());
  const JobId new_id = JobId::New(engine_.clock().Now());
  s.id = new_id;

  auto job = co_await AwaitEngine<Job>(
      [&](Engine::Callback<Job> cb) { engine_.Submit(std::move(s), std::move(cb)); });
  if (!job) {
    const Error& e = job.error();
    if (e.code == ErrorCode::kInternal) spdlog::error("submit failed: {}", e.message);
    Response res = http::Problem(e);
    if (e.code == ErrorCode::kQueueFull || e.code == ErrorCode::kUnavailable) {
      res.set(Field::retry_after,
              std::to_string(std::max<int64_t>(1, (engine_.options().retry_after + 999) / 1000)));
    }
    co_return res;
  }
  // Prefer: wait=N (RFC 7240): answer synchronously if the job finishes in
  // time, as the status monitor would (but 303, the method changing to GET).
  if (const Millis wait = std::min(PreferredWait(req[Field::prefer]), options_.max_wait);
      wait > 0) {
    const JobId id = job->id;
    co_await WaitForTerminal(id, wait);
    auto now = co_await ReadJob(engine_, id);
    if (now && IsTerminal(now->state)) {
      Response res = StatusResponse(*now, http::Status::see_other);
      res.set(Field::preference_applied, fmt::format("wait={}", (wait + 999) / 1000));
      co_return res;
    }
  }
  Response res = JsonResponse(http::Status::accepted, JobDocument(*job));
  res.set(Field::location, StatusUrl(job->id));
  res.set(Field::retry_after, std::to_string(RetryAfterSeconds(*job)));
  if (job->id != new_id) res.set("Idempotent-Replayed", "true");  // the original job
  co_return res;
}

Response V1Api::StatusResponse(const Job& job, http::Status succeeded_status) const {
  Response res;
  switch (job.state) {
    case JobState::kQueued:
    case JobState::kRunning:
      res = JsonResponse(http::Status::accepted, JobDocument(job));
      res.set(Field::retry_after, std::to_string(RetryAfterSeconds(job)));
      break;
    case JobState::kSucceeded:
      res = JsonResponse(succeeded_status, JobDocument(job));
      res.set(Field::location, ResultUrl(job.id));
      break;
    case JobState::kFailed:
    case JobState::kCanceled:
      res = JsonResponse(http::Status::ok, JobDocument(job));
      break;
  }
  return res;
}

awaitable<void> V1Api::WaitForTerminal(const JobId& id, Millis wait) {
  struct WaitState {
    explicit WaitState(boost::asio::any_io_executor ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    bool woken = false;  // both touched only on the waiting coroutine's executor
  };
  // Unwatches however the wait ends, including when the server stops and
  // destroys this coroutine mid-wait.
  struct WatchGuard {
    JobWatchers& watchers;
    JobId id;
    uint64_t token = 0;
    ~WatchGuard() { watchers.Unwatch(id, token); }
  };
  auto ex = co_await boost::asio::this_coro::executor;
  auto state = std::make_shared<WaitState>(ex);
  state->timer.expires_after(std::chrono::milliseconds(wait));
  // Watch before reading, so a change between the read and the wait is not
  // missed. The waker holds the state weakly: it may run after the wait ended.
  WatchGuard guard{engine_.watchers(), id};
  guard.token = engine_.watchers().Watch(id, [weak = std::weak_ptr<WaitState>(state), ex] {
    boost::asio::post(ex, [weak] {
      if (auto s = weak.lock()) {
        s->woken = true;
        s->timer.cancel();
      }
    });
  });
  auto job = co_await ReadJob(engine_, id);
  if (job && !IsTerminal(job->state) && !state->woken) {
    co_await state->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

awaitable<Response> V1Api::Status(Request& req, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  auto wait = RequestedWait(req.target(), req[Field::prefer]);
  if (!wait) co_return BadOption("wait", "must be a number of seconds");
  auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
  // A job the caller may not see answers at once, as an unknown id does:
  // waiting for it would tell that it exists.
  if (job && *wait > 0 && !IsTerminal(job->state)) {
    co_await WaitForTerminal(*id, std::min(*wait, options_.max_wait));
    job = co_await ReadVisibleJob(engine_, *id, p.principal);
  }
  if (!job) co_return http::Problem(job.error());
  co_return StatusResponse(*job, http::Status::found);
}

awaitable<Response> V1Api::Result(Request&, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  if (!TenantOf(p.principal).empty()) {
    // The result carries no tenant: check the job first.
    auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
    if (!job) co_return http::Problem(job.error());
  }
  auto result = co_await ReadResult(engine_, *id);
  if (!result) co_return http::Problem(VisibleError(result.error(), p.principal));
  if (!result->has_result) {
    co_return http::Problem(http::Status::conflict,
                            fmt::format("the job has no result; it is {}", ToString(result->state)),
                            json::object{{"state", ToString(result->state)}});
  }
  Response res{http::Status::ok, 11};
  res.set(Field::content_type,
          result->content_type.empty() ? "application/octet-stream" : result->content_type);
  res.body() = std::move(result->body);
  co_return res;
}

awaitable<Response> V1Api::Payload(Request&, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  if (!TenantOf(p.principal).empty()) {
    // The payload carries no tenant: check the job first.
    auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
    if (!job) co_return http::Problem(job.error());
  }
  auto payload = co_await ReadPayload(engine_, *id);
  if (!payload) co_return http::Problem(VisibleError(payload.error(), p.principal));
  Response res{http::Status::ok, 11};
  res.set(Field::content_type,
          payload->content_type.empty() ? "application/octet-stream" : payload->content_type);
  // The client's bytes, whatever they claim to be: never rendered as a page here.
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy", "sandbox");
  res.body() = std::move(payload->body);
  co_return res;
}

awaitable<Response> V1Api::Events(Request& req, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
  if (!job) co_return http::Problem(job.error());
  EventCursor cursor(ParseEventId(req["Last-Event-ID"]));  // malformed: start afresh
  // Seen the end already: 204 tells an EventSource to stop reconnecting.
  if (cursor.SawEnd(*job)) co_return Response{http::Status::no_content, 11};
  // Each open stream holds a connection and a listener: cap them. The slot is
  // released when the response (and so its stream) is destroyed.
  auto slot = streams_.Take(options_.max_event_streams);
  if (!slot) {
    Response busy = http::Problem(http::Status::service_unavailable,
                                  "too many event streams are open; poll the status instead");
    busy.set(Field::retry_after, std::to_string(RetryAfterSeconds(*job)));
    co_return busy;
  }
  Response res{http::Status::ok, 11};
  res.set(Field::content_type, "text/event-stream");
  res.set(Field::cache_control, "no-store");
  res.set("X-Accel-Buffering", "no");  // nginx: pass events through unbuffered
  res.stream = [this, id = *id, cursor, slot](http::StreamWriter& out) {
    return StreamJobEvents(engine_, id, cursor, options_.events_heartbeat, out);
  };
  co_return res;
}

awaitable<Response> V1Api::ChangeRefused(JobId id, Error error, const http::Principal* caller) {
  json::object extra;
  if (error.code == ErrorCode::kNotFound || error.code == ErrorCode::kConflict) {
    // The write found no row, or one it may not change: a purged job's id
    // answers 410 as GET does (its tombstone says so), a conflict names the
    // state the job is in.
    auto job = co_await ReadJob(engine_, id);
    if (!job && job.error().code == ErrorCode::kGone) {
      error = std::move(job).error();
    } else if (job && error.code == ErrorCode::kConflict) {
      extra["state"] = ToString(job->state);
    }
  }
  co_return http::Problem(VisibleError(std::move(error), caller), std::move(extra));
}

awaitable<Response> V1Api::Cancel(Request&, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  if (!TenantOf(p.principal).empty()) {
    // A job's tenant never changes, so checking before the write is enough.
    auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
    if (!job) co_return http::Problem(job.error());
  }
  auto outcome = co_await AwaitEngine<CancelOutcome>(
      [&](Engine::Callback<CancelOutcome> cb) { engine_.Cancel(*id, std::move(cb)); });
  if (!outcome) co_return co_await ChangeRefused(*id, outcome.error(), p.principal);
  const bool immediate = outcome->kind == CancelOutcome::Kind::kCanceled;
  co_return JsonResponse(immediate ? http::Status::ok : http::Status::accepted,
                         JobDocument(outcome->job));
}

awaitable<Response> V1Api::Retry(Request&, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  if (!TenantOf(p.principal).empty()) {
    auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
    if (!job) co_return http::Problem(job.error());
  }
  auto retried = co_await AwaitEngine<Job>(
      [&](Engine::Callback<Job> cb) { engine_.Retry(*id, std::move(cb)); });
  if (!retried) co_return co_await ChangeRefused(*id, retried.error(), p.principal);
  // Pending again: answered like a submit, with the monitor to poll.
  Response res = JsonResponse(http::Status::accepted, JobDocument(*retried));
  res.set(Field::location, StatusUrl(retried->id));
  res.set(Field::retry_after, std::to_string(RetryAfterSeconds(*retried)));
  co_return res;
}

awaitable<Response> V1Api::Delete(Request&, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  if (!TenantOf(p.principal).empty()) {
    auto job = co_await ReadVisibleJob(engine_, *id, p.principal);
    if (!job) co_return http::Problem(job.error());
  }
  auto outcome = co_await AwaitEngine<CancelOutcome>(
      [&](Engine::Callback<CancelOutcome> cb) { engine_.Delete(*id, std::move(cb)); });
  if (!outcome) co_return co_await ChangeRefused(*id, outcome.error(), p.principal);
  if (outcome->kind == CancelOutcome::Kind::kDeleted) {
    co_return Response{http::Status::no_content, 11};
  }
  co_return JsonResponse(http::Status::accepted, JobDocument(outcome->job));
}

awaitable<Response> V1Api::List(Request& req, const http::PathParams& p) {
  ListParams lp;
  lp.limit = kDefaultListLimit;
  if (const std::string_view tenant = TenantOf(p.principal); !tenant.empty()) {
    lp.tenant = std::string(tenant);
  }
  auto params = QueryParams(req.target());
  if (!params) co_return http::Problem(http::Status::bad_request, "malformed query string");
  if (auto bad = ParseListOptions(*params, lp)) co_return BadOption(bad->option, bad->why);
  // A search examines up to ListParams::max_examined rows: on a read
  // thread, never on this event loop (Engine::Search).
  acceptd::Result<JobPage> page = Error::Internal("unreachable");
  if (lp.IsSearch()) {
    page = co_await ReadSearch(engine_, lp);
  } else {
    page = co_await ReadList(engine_, lp);
  }
  if (!page) co_return http::Problem(page.error());
  std::string body = "{\"jobs\":[";
  body.reserve(page->jobs.size() * 512 + 64);
  for (size_t i = 0; i < page->jobs.size(); ++i) {
    if (i > 0) body += ',';
    AppendJobDocument(page->jobs[i], body);
  }
  body += "],\"next_cursor\":";
  body += page->next_cursor ? "\"" + std::to_string(*page->next_cursor) + "\"" : "null";
  body += ",\"scan_limited\":";
  body += page->scan_limited ? "true" : "false";
  body += '}';
  co_return JsonResponse(http::Status::ok, std::move(body));
}

namespace {

json::value TimeValue(const std::optional<UnixMillis>& t) {
  if (!t) return nullptr;
  return json::value(FormatRfc3339(*t));
}

json::object AttemptValue(const AttemptRecord& a) {
  json::object o{{"attempt", a.attempt},
                 {"started_at", TimeValue(a.started_at)},
                 {"ended_at", TimeValue(a.ended_at)},
                 {"duration_ms", nullptr},
                 {"outcome", ToString(a.end)},
                 {"error", nullptr},
                 {"worker", a.worker}};
  if (a.started_at && a.ended_at)
    o["duration_ms"] = std::max<int64_t>(0, *a.ended_at - *a.started_at);
  if (a.error) o["error"] = json::object{{"type", a.error->type}, {"message", a.error->message}};
  return o;
}

json::value CallbackValue(const std::optional<CallbackState>& cb) {
  if (!cb) return nullptr;
  json::object o{
      {"url", cb->url},
      {"attempts", cb->attempts},
      {"last_status", nullptr},
      {"last_error", cb->last_error},
      {"delivered_at", TimeValue(cb->delivered_at)},
      {"next_attempt_at", TimeValue(cb->delivered_at ? std::nullopt : cb->next_attempt_at)}};
  if (cb->last_status) o["last_status"] = *cb->last_status;
  return o;
}

json::array CountsValue(const std::vector<int64_t>& counts) {
  json::array a;
  a.reserve(counts.size());
  for (int64_t n : counts) a.push_back(n);
  return a;
}

}  // namespace

awaitable<Response> V1Api::Attempts(Request&, const http::PathParams& p) {
  auto id = JobId::Parse(p.Get("id"));
  if (!id) co_return http::Problem(NoSuchJob());
  const JobId job_id = *id;
  auto history = co_await ReadAttempts(engine_, job_id);
  if (!history) co_return http::Problem(VisibleError(history.error(), p.principal));
  // The same answer as for an unknown id when another tenant's (as Status).
  if (const std::string_view tenant = TenantOf(p.principal);
      !tenant.empty() && history->job.tenant != tenant) {
    co_return http::Problem(NoSuchJob());
  }
  json::array attempts;
  for (const AttemptRecord& a : history->attempts) attempts.push_back(AttemptValue(a));
  co_return JsonResponse(http::Status::ok,
                         json::object{{"job_id", job_id.ToHex()},
                                      {"state", ToString(history->job.state)},
                                      {"attempts", std::move(attempts)},
                                      {"dropped", history->dropped},
                                      {"callback", CallbackValue(history->job.callback)}});
}

awaitable<Response> V1Api::Stats(Request& req, const http::PathParams&) {
  auto params = QueryParams(req.target());
  if (!params) co_return http::Problem(http::Status::bad_request, "malformed query string");
  int64_t window = kDefaultStatsWindow;
  for (const auto& [key, value] : *params) {
    if (key != "window") co_return BadOption(key, "unknown option");
    auto v = ParseInt(value);
    if (!v || *v < kMinStatsWindow || *v > kMaxStatsWindow) {
      co_return BadOption(key, "must be a number of seconds from 60 to 86400");
    }
    window = *v;
  }
  const int buckets = static_cast<int>((window * 1000 + kStatsStep - 1) / kStatsStep);
  // Whole minutes, the last one the current: a chart polled again shifts by
  // whole buckets instead of recounting a moving edge.
  const UnixMillis now = engine_.clock().Now();
  const UnixMillis since = (now / kStatsStep + 1) * kStatsStep - buckets * kStatsStep;
  auto counts = co_await ReadThroughput(engine_, since, kStatsStep, buckets);
  if (!counts) co_return http::Problem(counts.error());
  // Every configured queue (zeros if idle), then any other the store has.
  std::vector<QueueThroughput> rows;
  for (const std::string& name : engine_.QueueNames()) {
    QueueThroughput q;
    q.queue = name;
    q.succeeded.assign(static_cast<size_t>(buckets), 0);
    q.failed = q.canceled = q.succeeded;
    rows.push_back(std::move(q));
  }
  for (QueueThroughput& found : *counts) {
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const QueueThroughput& r) { return r.queue == found.queue; });
    if (it == rows.end()) {
      rows.push_back(std::move(found));
    } else {
      *it = std::move(found);
    }
  }
  json::array queues;
  for (const QueueThroughput& q : rows) {
    queues.push_back(json::object{{"queue", q.queue},
                                  {"succeeded", CountsValue(q.succeeded)},
                                  {"failed", CountsValue(q.failed)},
                                  {"canceled", CountsValue(q.canceled)}});
  }
  co_return JsonResponse(http::Status::ok, json::object{{"since", FormatRfc3339(since)},
                                                        {"step_seconds", kStatsStep / 1000},
                                                        {"queues", std::move(queues)}});
}

awaitable<Response> V1Api::Nodes(Request&, const http::PathParams&) {
  auto list = co_await ReadNodes(engine_);
  if (!list) co_return http::Problem(list.error());
  const UnixMillis now = engine_.clock().Now();
  const Millis beat = engine_.options().node_heartbeat_interval;
  // Running jobs per lease owner: a node's own, or an external worker's.
  std::map<std::string, int64_t, std::less<>> running;
  for (const OwnerCount& o : list->owners) running[o.owner] = o.running;
  json::array nodes;
  for (const NodeInfo& n : list->nodes) {
    auto it = running.find(n.name);
    nodes.push_back(json::object{
        {"name", n.name},
        {"started_at", FormatRfc3339(n.started_at)},
        {"seen_at", FormatRfc3339(n.seen_at)},
        {"alive", now - n.seen_at <= kNodeMissedBeats * beat},
        {"this_node", n.name == engine_.options().node_id},
        {"running", it == running.end() ? 0 : it->second},
    });
    if (it != running.end()) running.erase(it);
  }
  json::array workers;  // owners that are not nodes: external workers' leases
  for (const auto& [owner, count] : running) {
    workers.push_back(json::object{{"owner", owner}, {"running", count}});
  }
  co_return JsonResponse(http::Status::ok, json::object{{"node", engine_.options().node_id},
                                                        {"heartbeat_seconds", SecondsValue(beat)},
                                                        {"nodes", std::move(nodes)},
                                                        {"workers", std::move(workers)}});
}

awaitable<Response> V1Api::Queues(Request&, const http::PathParams&) {
  auto queues = co_await ReadQueues(engine_);
  if (!queues) co_return http::Problem(queues.error());
  json::array out;
  for (const QueueStatus& q : *queues) {
    json::object counts;
    for (int s = 0; s < kJobStateCount; ++s) {
      counts[ToString(static_cast<JobState>(s))] = q.counts[s];
    }
    const QueueConfig& c = q.config;
    out.push_back(json::object{
        {"name", c.name},
        {"handler", c.handler},
        {"concurrency", c.concurrency},
        {"max_depth", c.max_depth},
        {"max_attempts", c.max_attempts},
        {"timeout", SecondsValue(c.timeout)},
        {"retention", SecondsValue(c.retention)},
        {"depth", q.counts[0] + q.counts[1]},
        {"counts", std::move(counts)},
        {"paused", q.paused},
    });
  }
  co_return JsonResponse(http::Status::ok, json::object{{"queues", std::move(out)}});
}

awaitable<Response> V1Api::Pause(Request&, const http::PathParams& p) {
  std::string queue(p.Get("queue"));  // named: no temporaries in co_await (GCC 12)
  auto res = co_await SetPaused(std::move(queue), true, p.principal);
  co_return res;
}

awaitable<Response> V1Api::Resume(Request&, const http::PathParams& p) {
  std::string queue(p.Get("queue"));
  auto res = co_await SetPaused(std::move(queue), false, p.principal);
  co_return res;
}

awaitable<Response> V1Api::SetPaused(std::string queue, bool paused,
                                     const http::Principal* caller) {
  // A queue is every tenant's: pausing it is not for a tenant's key.
  if (caller && !caller->tenant.empty()) {
    co_return http::Problem(http::Status::forbidden,
                            "a key with a tenant may not pause or resume a queue: queues are "
                            "shared by every tenant; use an admin key without a tenant");
  }
  if (!engine_.FindQueue(queue)) {
    co_return http::Problem(http::Status::not_found, fmt::format("no queue named '{}'", queue));
  }
  Engine& engine = engine_;
  // A named awaitable: the lambda owns a string, and GCC 12 mishandles owning
  // temporaries in co_await expressions (see await_engine.h).
  auto set = AwaitEngine<bool>([&engine, queue, paused](Engine::Callback<bool> cb) {
    engine.SetPaused(queue, paused, std::move(cb));
  });
  auto was = co_await std::move(set);
  if (!was) co_return http::Problem(was.error());
  co_return JsonResponse(http::Status::ok,
                         json::object{{"name", queue}, {"paused", paused}, {"was_paused", *was}});
}

awaitable<Response> V1Api::Purge(Request& req, const http::PathParams& p) {
  if (!TenantOf(p.principal).empty()) {
    co_return http::Problem(http::Status::forbidden,
                            "a key with a tenant may not purge a queue: queues are shared by every "
                            "tenant; use an admin key without a tenant");
  }
  std::string queue(p.Get("queue"));
  if (!engine_.FindQueue(queue)) {
    co_return http::Problem(http::Status::not_found, fmt::format("no queue named '{}'", queue));
  }
  auto params = QueryParams(req.target());
  if (!params) co_return http::Problem(http::Status::bad_request, "malformed query string");
  std::optional<JobState> state;
  for (const auto& [key, value] : *params) {
    if (key != "state") co_return BadOption(key, "unknown option");
    state = ParseJobState(value);
    if (!state || !IsTerminal(*state)) {
      co_return BadOption("state", "must be succeeded, failed or canceled");
    }
  }
  Engine& engine = engine_;
  auto purge = AwaitEngine<int64_t>([&engine, queue, state](Engine::Callback<int64_t> cb) {
    engine.PurgeQueue(queue, state, std::move(cb));
  });
  auto deleted = co_await std::move(purge);
  if (!deleted) co_return http::Problem(deleted.error());
  co_return JsonResponse(http::Status::ok, json::object{{"name", queue}, {"deleted", *deleted}});
}

awaitable<Response> V1Api::Health(Request&, const http::PathParams&) {
  co_return JsonResponse(http::Status::ok, json::object{{"status", "ok"}});
}

awaitable<Response> V1Api::Ready(Request&, const http::PathParams&) {
  if (auto st = co_await ReadReady(engine_); !st) {
    spdlog::warn("readiness check failed: {}", st.error().message);
    co_return http::Problem(http::Status::service_unavailable, "the store does not answer");
  }
  if (!engine_.accepting()) {
    co_return http::Problem(http::Status::service_unavailable, "the server is shutting down");
  }
  co_return JsonResponse(http::Status::ok, json::object{{"status", "ready"}});
}

}  // namespace acceptd::api
