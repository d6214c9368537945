// RemoteWorker against a scripted lease server (tests/client/fake_server.h)
// with handlers written in the test: what each outcome sends, heartbeats and
// what their answers do to the JobContext, timeouts, shutdown, back-off and
// fatal answers. `acceptd worker` against the real server, with the exec
// handler, is tests/integration/worker_cli_test.cc.
#include "cli/remote_worker.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "../client/fake_server.h"
#include "cli/worker_command.h"

namespace acceptd::cli {
namespace {

using testing::FakeServer;
using namespace std::chrono_literals;
namespace json = boost::json;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

// A handler given as a function.
class FnHandler : public Handler {
 public:
  using Fn = std::function<HandlerOutcome(std::string_view, std::string_view, JobContext&)>;
  explicit FnHandler(Fn fn) : fn_(std::move(fn)) {}
  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override {
    ++runs;
    return fn_(payload, content_type, ctx);
  }
  std::atomic<int> runs{0};

 private:
  Fn fn_;
};

// A lease server that hands out `jobs` jobs (one per lease request), then
// answers 204 after a short hold (as a long-poll that ran out would; the hold
// keeps the loop from spinning). Heartbeats answer `heartbeat`; complete,
// fail and release answer `finish`. Everything is recorded.
struct Script {
  std::mutex mu;
  int jobs = 1;
  std::vector<std::pair<std::string, std::string>> job_headers = {{"Acceptd-Lease-Seconds", "30"}};
  int lease_errors = 0;  // answer the first N lease requests with lease_error_status
  int lease_error_status = 503;
  std::chrono::milliseconds idle_hold = 20ms;  // before a 204
  FakeServer::Reply heartbeat{200,
                              {{"Content-Type", "application/json"}},
                              R"({"cancel_requested":false,"lease_seconds":30})"};
  FakeServer::Reply finish{200, {{"Content-Type", "application/json"}}, R"({"state":"succeeded"})"};

  FakeServer::Reply Answer(const FakeServer::Request& r) {
    std::unique_lock lock(mu);
    if (r.target.find("/leases?") != std::string::npos) {
      if (lease_errors > 0) {
        --lease_errors;
        return {lease_error_status,
                {{"Content-Type", "application/problem+json"}},
                R"({"title":"Nope","status":0,"detail":"scripted"})"};
      }
      if (jobs > 0) {
        --jobs;
        FakeServer::Reply job{200,
                              {{"Content-Type", "text/plain"},
                               {"Acceptd-Lease", "L.1"},
                               {"Location", "/v1/leases/L.1"},
                               {"Acceptd-Job-Id", kJobId},
                               {"Acceptd-Attempt", "1"}},
                              "payload"};
        for (const auto& h : job_headers) job.headers.push_back(h);
        return job;
      }
      const auto hold = idle_hold;
      lock.unlock();
      std::this_thread::sleep_for(hold);
      return {204, {}, ""};
    }
    if (r.target.find("/heartbeat") != std::string::npos) return heartbeat;
    return finish;
  }
};

struct Fixture {
  Script script;
  FakeServer server{[this](const FakeServer::Request& r) { return script.Answer(r); },
                    /*close_after_each=*/true};
  std::mutex log_mu;
  std::vector<std::string> log;

  RemoteWorkerOptions Options() {
    RemoteWorkerOptions o;
    o.client.base_url = server.url();
    o.queue = "q";
    o.lease.wait = 1s;
    o.backoff_min = 10ms;
    o.backoff_max = 40ms;
    o.shutdown_grace = 5s;
    o.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu);
      log.emplace_back(line);
    };
    return o;
  }

  // The requests whose target contains `part`.
  std::vector<FakeServer::Request> Requests(std::string_view part) const {
    std::vector<FakeServer::Request> out;
    for (auto& r : server.requests()) {
      if (r.target.find(part) != std::string::npos) out.push_back(r);
    }
    return out;
  }

  bool WaitForRequest(std::string_view part, std::chrono::milliseconds timeout = 10s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Requests(part).empty()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::string Log() {
    std::lock_guard lock(log_mu);
    std::string all;
    for (const auto& l : log) all += l + "\n";
    return all;
  }
};

// Runs the worker on a thread; Stop()s and joins on destruction.
class Running {
 public:
  Running(std::shared_ptr<Handler> h, RemoteWorkerOptions o)
      : worker(std::move(h), std::move(o)), thread([this] { result = worker.Run(); }) {}
  ~Running() { StopAndJoin(); }
  void StopAndJoin() {
    if (!thread.joinable()) return;
    worker.Stop();
    thread.join();
  }
  RemoteWorker worker;
  Result<void> result;
  std::thread thread;
};

TEST(RemoteWorkerTest, SuccessCompletesWithTheResultAndItsContentType) {
  Fixture f;
  auto h = std::make_shared<FnHandler>(
      [](std::string_view payload, std::string_view type, JobContext& ctx) -> HandlerOutcome {
        EXPECT_EQ(payload, "payload");
        EXPECT_EQ(type, "text/plain");
        EXPECT_EQ(ctx.job_id().ToHex(), kJobId);
        EXPECT_EQ(ctx.attempt(), 1);
        return HandlerSuccess{"PNG bytes", "image/png"};
      });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/complete")) << f.Log();
  w.StopAndJoin();
  ASSERT_TRUE(w.result) << w.result.error().detail;
  auto done = f.Requests("/complete");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].target, "/v1/leases/L.1/complete");
  EXPECT_EQ(done[0].body, "PNG bytes");
  bool typed = false;
  for (auto& [k, v] : done[0].headers) typed |= k == "Content-Type" && v == "image/png";
  EXPECT_TRUE(typed);
  EXPECT_EQ(w.worker.stats().completed, 1);
  EXPECT_TRUE(f.Requests("/fail").empty());
  EXPECT_TRUE(f.Requests("/release").empty());
}

TEST(RemoteWorkerTest, FailureSendsDetailRetryableAndType) {
  Fixture f;
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext&) {
    return HandlerOutcome(HandlerFailure{"exit code 3: disk full", false, "exec_exit"});
  });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/fail")) << f.Log();
  w.StopAndJoin();
  auto fails = f.Requests("/fail");
  ASSERT_EQ(fails.size(), 1u);
  EXPECT_EQ(
      json::parse(fails[0].body),
      json::parse(R"({"detail":"exit code 3: disk full","retryable":false,"code":"exec_exit"})"));
  EXPECT_EQ(w.worker.stats().failed, 1);
}

TEST(RemoteWorkerTest, AFailuresRetryAfterGoesWithIt) {
  Fixture f;
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext&) {
    return HandlerOutcome(HandlerFailure{"backend busy", true, "http_status", 1'500});
  });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/fail")) << f.Log();
  w.StopAndJoin();
  json::value body = json::parse(f.Requests("/fail")[0].body);
  EXPECT_EQ(body.at("retry_after"), 1.5);
  EXPECT_EQ(body.at("code"), "http_status");
}

// Regression: acceptd sends Acceptd-Lease-Seconds in whole seconds rounded
// down, so a 1 s lease can read "0"; taken as "unknown, assume 30 s", the
// first heartbeat came after 10 s and the lease was long gone.
TEST(RemoteWorkerTest, ALeaseOfZeroSecondsHeartbeatsAsForTheShortestLease) {
  Fixture f;
  f.script.job_headers = {{"Acceptd-Lease-Seconds", "0"}};
  auto h = std::make_shared<FnHandler>([&](std::string_view, std::string_view, JobContext&) {
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (f.Requests("/heartbeat").empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    return HandlerOutcome(HandlerSuccess{"ok", "text/plain"});
  });
  const auto start = std::chrono::steady_clock::now();
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/complete")) << f.Log();
  EXPECT_FALSE(f.Requests("/heartbeat").empty()) << "no heartbeat within 3 s";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(RemoteWorkerTest, ACancelInAHeartbeatAnswerCancelsTheAttemptAndReleasesTheLease) {
  Fixture f;
  f.script.job_headers = {{"Acceptd-Lease-Seconds", "0.3"}};  // a heartbeat every 100 ms
  f.script.heartbeat.body = R"({"cancel_requested":true,"lease_seconds":0.3})";
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext& ctx) {
    // Returns as soon as the job is cancelled (10 s otherwise).
    if (ctx.WaitFor(10s)) return HandlerOutcome(HandlerSuccess{"late", "text/plain"});
    EXPECT_TRUE(ctx.cancelled());
    return HandlerOutcome(HandlerFailure{"canceled", true, "canceled"});
  });
  const auto start = std::chrono::steady_clock::now();
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/release", 5s)) << f.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  w.StopAndJoin();
  EXPECT_TRUE(f.Requests("/complete").empty());
  EXPECT_TRUE(f.Requests("/fail").empty());
  EXPECT_EQ(w.worker.stats().released, 1);
}

TEST(RemoteWorkerTest, AStaleLeaseStopsTheAttemptAndReportsNothing) {
  Fixture f;
  f.script.job_headers = {{"Acceptd-Lease-Seconds", "0.3"}};
  f.script.heartbeat = {409,
                        {{"Content-Type", "application/problem+json"}},
                        R"({"title":"Conflict","status":409,"detail":"the lease is stale"})"};
  std::atomic<bool> returned{false};
  auto h = std::make_shared<FnHandler>([&](std::string_view, std::string_view, JobContext& ctx) {
    const bool finished = ctx.WaitFor(10s);
    returned = true;
    return finished ? HandlerOutcome(HandlerSuccess{"late", "text/plain"})
                    : HandlerOutcome(HandlerFailure{"canceled", true, "canceled"});
  });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/heartbeat")) << f.Log();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (w.worker.stats().dropped == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(returned);
  EXPECT_EQ(w.worker.stats().dropped, 1) << f.Log();
  w.StopAndJoin();
  EXPECT_TRUE(f.Requests("/complete").empty());
  EXPECT_TRUE(f.Requests("/fail").empty());
  EXPECT_TRUE(f.Requests("/release").empty());
}

TEST(RemoteWorkerTest, ProgressGoesWithTheNextHeartbeat) {
  Fixture f;
  f.script.job_headers = {{"Acceptd-Lease-Seconds", "60"}};  // no heartbeat due for 20 s
  auto h = std::make_shared<FnHandler>([&](std::string_view, std::string_view, JobContext& ctx) {
    ctx.ReportProgress(10, "first");
    ctx.ReportProgress(40, "resizing");  // coalesced: only the latest is sent
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (f.Requests("/heartbeat").empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    return HandlerOutcome(HandlerSuccess{"ok", "text/plain"});
  });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/complete")) << f.Log();
  w.StopAndJoin();
  auto beats = f.Requests("/heartbeat");
  ASSERT_EQ(beats.size(), 1u);
  EXPECT_EQ(json::parse(beats[0].body), json::parse(R"({"percent":40,"message":"resizing"})"));
}

TEST(RemoteWorkerTest, TheAttemptTimeoutCancelsAndFailsRetryably) {
  Fixture f;
  f.script.job_headers = {{"Acceptd-Lease-Seconds", "30"}, {"Acceptd-Timeout-Seconds", "0.2"}};
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext& ctx) {
    if (ctx.WaitFor(10s)) return HandlerOutcome(HandlerSuccess{"late", "text/plain"});
    return HandlerOutcome(HandlerFailure{"killed", true, "canceled"});
  });
  const auto start = std::chrono::steady_clock::now();
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/fail", 5s)) << f.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  w.StopAndJoin();
  auto fails = f.Requests("/fail");
  ASSERT_EQ(fails.size(), 1u);
  json::value body = json::parse(fails[0].body);
  EXPECT_EQ(body.at("code"), "timeout");
  EXPECT_EQ(body.at("retryable"), true);
  EXPECT_EQ(body.at("detail"), "attempt 1 timed out after 0.2 s");
}

TEST(RemoteWorkerTest, ShutdownLetsAJobFinishWithinTheGrace) {
  Fixture f;
  std::atomic<bool> started{false};
  auto h = std::make_shared<FnHandler>([&](std::string_view, std::string_view, JobContext& ctx) {
    started = true;
    ctx.WaitFor(300ms);
    return HandlerOutcome(HandlerSuccess{"done", "text/plain"});
  });
  Running w(h, f.Options());
  while (!started) std::this_thread::sleep_for(5ms);
  w.StopAndJoin();
  ASSERT_TRUE(w.result);
  EXPECT_EQ(f.Requests("/complete").size(), 1u) << f.Log();
  EXPECT_TRUE(f.Requests("/release").empty());
}

TEST(RemoteWorkerTest, ShutdownCancelsAJobPastTheGraceAndReleasesIt) {
  Fixture f;
  auto o = f.Options();
  o.shutdown_grace = 100ms;
  std::atomic<bool> started{false};
  auto h = std::make_shared<FnHandler>([&](std::string_view, std::string_view, JobContext& ctx) {
    started = true;
    if (ctx.WaitFor(10s)) return HandlerOutcome(HandlerSuccess{"late", "text/plain"});
    return HandlerOutcome(HandlerFailure{"killed", true, "canceled"});
  });
  Running w(h, o);
  while (!started) std::this_thread::sleep_for(5ms);
  const auto stop = std::chrono::steady_clock::now();
  w.StopAndJoin();
  EXPECT_LT(std::chrono::steady_clock::now() - stop, 3s);
  ASSERT_TRUE(w.result);
  EXPECT_EQ(f.Requests("/release").size(), 1u) << f.Log();
  EXPECT_TRUE(f.Requests("/fail").empty());
}

TEST(RemoteWorkerTest, StopInterruptsAnIdleLongPoll) {
  Fixture f;
  f.script.jobs = 0;
  f.script.idle_hold = 3s;  // the server holds the long-poll
  auto o = f.Options();
  o.lease.wait = 30s;
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext&) {
    return HandlerOutcome(HandlerSuccess{});
  });
  Running w(h, o);
  ASSERT_TRUE(f.WaitForRequest("/leases?"));
  const auto stop = std::chrono::steady_clock::now();
  w.StopAndJoin();
  EXPECT_LT(std::chrono::steady_clock::now() - stop, 1s);
  ASSERT_TRUE(w.result);
  EXPECT_EQ(h->runs, 0);
}

TEST(RemoteWorkerTest, AnUnavailableServerIsRetriedWithBackoff) {
  Fixture f;
  f.script.lease_errors = 3;
  f.script.lease_error_status = 503;
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext&) {
    return HandlerOutcome(HandlerSuccess{"ok", "text/plain"});
  });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/complete")) << f.Log();
  w.StopAndJoin();
  ASSERT_TRUE(w.result);
  EXPECT_NE(f.Log().find("retrying in"), std::string::npos) << f.Log();
}

TEST(RemoteWorkerTest, AnUnknownQueueEndsRun) {
  Fixture f;
  f.script.lease_errors = 1000;
  f.script.lease_error_status = 404;
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext&) {
    return HandlerOutcome(HandlerSuccess{});
  });
  auto o = f.Options();
  o.concurrency = 2;
  RemoteWorker worker(h, o);
  auto r = worker.Run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().detail.find("scripted"), std::string::npos) << r.error().detail;
}

TEST(RemoteWorkerTest, AResultTooLargeForTheServerFailsTheJobForGood) {
  Fixture f;
  f.script.finish = {413,
                     {{"Content-Type", "application/problem+json"}},
                     R"({"title":"Payload Too Large","status":413,"detail":"too big"})"};
  auto h = std::make_shared<FnHandler>([](std::string_view, std::string_view, JobContext&) {
    return HandlerOutcome(HandlerSuccess{std::string(1000, 'x'), "text/plain"});
  });
  Running w(h, f.Options());
  ASSERT_TRUE(f.WaitForRequest("/fail")) << f.Log();
  w.StopAndJoin();
  json::value body = json::parse(f.Requests("/fail")[0].body);
  EXPECT_EQ(body.at("code"), "result_too_large");
  EXPECT_EQ(body.at("retryable"), false);
}

// ---------------------------------------------------------------------------
// Flags

TEST(WorkerFlagsTest, ExecQueueFromFlags) {
  WorkerFlags f;
  f.queue = "thumbs";
  f.command = {"convert", "-", "png:-"};
  f.env = {"A=1", "B=x=y"};
  f.inherit_env = {"HOME", "PATH"};
  f.kill_grace_seconds = 0.5;
  f.max_result_bytes = 1024;
  f.result_content_type = "image/png";
  f.retry_exit_codes = {3, 4};
  f.no_retry_on_signal = true;
  f.work_dir = "/var/tmp";
  auto q = WorkerQueueConfig(f);
  ASSERT_TRUE(q) << q.error().detail;
  EXPECT_EQ(q->name, "thumbs");
  EXPECT_EQ(q->handler, "exec");
  EXPECT_EQ(q->exec.command, f.command);
  EXPECT_EQ(q->exec.env.at("A"), "1");
  EXPECT_EQ(q->exec.env.at("B"), "x=y");
  EXPECT_EQ(q->exec.inherit_env, (std::vector<std::string>{"PATH", "HOME"}));
  EXPECT_EQ(q->exec.kill_grace, 500);
  EXPECT_EQ(q->exec.max_result_bytes, 1024u);
  EXPECT_EQ(q->exec.result_content_type, "image/png");
  EXPECT_EQ(q->exec.retry_exit_codes, (std::vector<int>{3, 4}));
  EXPECT_FALSE(q->exec.retry_on_signal);
  EXPECT_EQ(q->exec.work_dir, "/var/tmp");
}

TEST(WorkerFlagsTest, BadValuesNameTheFlag) {
  auto bad = [](std::function<void(WorkerFlags&)> change, std::string_view flag) {
    WorkerFlags f;
    f.queue = "q";
    f.command = {"true"};
    change(f);
    auto q = WorkerQueueConfig(f);
    auto o = WorkerOptions(f);
    const std::string detail = !q ? q.error().detail : !o ? o.error().detail : "";
    EXPECT_NE(detail.find(flag), std::string::npos) << flag << ": '" << detail << "'";
  };
  bad([](WorkerFlags& f) { f.env = {"NOEQUALS"}; }, "--env");
  bad([](WorkerFlags& f) { f.env = {"ACCEPTD_JOB_ID=x"}; }, "--env");
  bad([](WorkerFlags& f) { f.retry_exit_codes = {0}; }, "--retry-exit-code");
  bad([](WorkerFlags& f) { f.retry_exit_codes = {256}; }, "--retry-exit-code");
  bad([](WorkerFlags& f) { f.max_result_bytes = 0; }, "--max-result-bytes");
  bad([](WorkerFlags& f) { f.wait_seconds = 61; }, "--wait");
  bad([](WorkerFlags& f) { f.lease_seconds = 0.5; }, "--lease");
  bad([](WorkerFlags& f) { f.concurrency = 0; }, "--concurrency");
  bad([](WorkerFlags& f) { f.server = "ftp://x"; }, "--server");
  bad([](WorkerFlags& f) { f.command = {}; }, "command");
}

TEST(WorkerFlagsTest, OptionsFromFlags) {
  WorkerFlags f;
  f.queue = "q";
  f.command = {"true"};
  f.server = "https://h:8443";
  f.api_key = "k";
  f.concurrency = 8;
  f.lease_seconds = 2;
  f.wait_seconds = 0.5;
  f.shutdown_grace_seconds = 1;
  auto o = WorkerOptions(f);
  ASSERT_TRUE(o) << o.error().detail;
  EXPECT_EQ(o->client.base_url, "https://h:8443");
  EXPECT_EQ(o->client.api_key, "k");
  EXPECT_EQ(o->concurrency, 8);
  EXPECT_EQ(o->lease.lease, Millis(2'000));
  EXPECT_EQ(o->lease.wait, Millis(500));
  EXPECT_EQ(o->shutdown_grace, Millis(1'000));
}

}  // namespace
}  // namespace acceptd::cli
