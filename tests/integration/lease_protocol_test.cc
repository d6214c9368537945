// The external-worker lease protocol (docs/workers.md) against the real
// binary: lease, heartbeat, complete, fail, release, fencing with stale
// tokens, long-poll wake-ups, cancel through heartbeats, expiry after a
// worker died, attempt timeouts, shutdown, and who may call these routes.
#include <gtest/gtest.h>

#include <ctime>
#include <future>
#include <thread>

#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

ServerOptions External(std::string extra = "") {
  return ServerOptions().WithQueues(R"(
[queues.work]
handler = "external"
max_attempts = 3
backoff = { base = 0.05, max = 0.05 }
)" + extra + R"(
[queues.echo]
handler = "echo"
)");
}

struct Leased {
  HttpResponse response;
  std::string lease;  // Acceptd-Lease
  std::string job;
};

// POST /v1/queues/{queue}/leases{query}; 200 and its lease, or throws.
Leased LeaseOk(const ServerProcess& s, std::string_view queue,
               std::string_view query = "?wait=10") {
  HttpResponse r =
      s.Post("/v1/queues/" + std::string(queue) + "/leases" + std::string(query), "", "");
  if (r.status != 200) throw std::runtime_error("lease: " + Describe(r));
  return Leased{r, r.Header("Acceptd-Lease"), r.Header("Acceptd-Job-Id")};
}

HttpResponse Call(const ServerProcess& s, const std::string& lease, std::string_view verb,
                  std::string body = "", std::string_view content_type = "application/json") {
  return s.Post("/v1/leases/" + lease + "/" + std::string(verb), std::move(body), content_type);
}

TEST(LeaseProtocolTest, LeaseHeartbeatCompleteEndToEnd) {
  ServerProcess s(External());
  const std::string payload("\x89PNG\r\n\x1a\n\0binary", 15);
  const std::string id = s.SubmitOk("work", payload, "", "image/png");
  EXPECT_EQ(Str(s.Job(id), "state"), "queued");

  Leased l = LeaseOk(s, "work");
  EXPECT_EQ(l.response.body, payload) << "the payload bytes as submitted";
  EXPECT_EQ(l.response.Header("Content-Type"), "image/png");
  EXPECT_EQ(l.job, id);
  EXPECT_EQ(l.response.Header("Acceptd-Attempt"), "1");
  EXPECT_EQ(l.response.Header("Acceptd-Max-Attempts"), "3");
  EXPECT_EQ(l.response.Header("Location"), "/v1/leases/" + l.lease);
  EXPECT_GT(std::stod(l.response.Header("Acceptd-Lease-Seconds")), 20);
  EXPECT_EQ(l.response.Header("Acceptd-Timeout-Seconds"), "30");
  EXPECT_EQ(Str(s.Job(id), "state"), "running");

  HttpResponse hb = Call(s, l.lease, "heartbeat", R"({"percent": 40, "message": "resizing"})");
  ASSERT_EQ(hb.status, 200) << Describe(hb);
  EXPECT_FALSE(hb.Json().at("cancel_requested").as_bool());
  EXPECT_GT(hb.Json().at("lease_seconds").to_number<double>(), 20);
  json::object doc = s.Job(id);
  EXPECT_EQ(Int(doc.at("progress"), "percent"), 40);
  EXPECT_EQ(Str(doc.at("progress"), "message"), "resizing");
  ASSERT_EQ(Call(s, l.lease, "heartbeat").status, 200) << "an empty heartbeat only extends";

  HttpResponse done = Call(s, l.lease, "complete", "thumbnail bytes", "image/webp");
  ASSERT_EQ(done.status, 200) << Describe(done);
  EXPECT_EQ(Str(done.Json(), "state"), "succeeded");
  HttpResponse status = s.Get("/v1/jobs/" + id);
  EXPECT_EQ(status.status, 302);
  HttpResponse result = s.Get("/v1/jobs/" + id + "/result");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "thumbnail bytes");
  EXPECT_EQ(result.Header("Content-Type"), "image/webp");
  // The lease is spent: every later call is refused and changes nothing.
  ExpectProblem(Call(s, l.lease, "complete", "again", "text/plain"), 409);
  ExpectProblem(Call(s, l.lease, "heartbeat"), 409);
  ExpectProblem(Call(s, l.lease, "release"), 409);
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, "thumbnail bytes");
}

TEST(LeaseProtocolTest, NoJobWithinWaitIs204) {
  ServerProcess s(External());
  HttpResponse r = s.Post("/v1/queues/work/leases?wait=0", "", "");
  EXPECT_EQ(r.status, 204) << Describe(r);
  EXPECT_TRUE(r.body.empty());
  r = s.Post("/v1/queues/work/leases?wait=1", "", "");
  EXPECT_EQ(r.status, 204) << Describe(r);
}

TEST(LeaseProtocolTest, AWaitingLeaseIsWokenByASubmit) {
  ServerProcess s(External());
  auto waiting = std::async(std::launch::async, [&] {
    const auto start = SteadyClock::now();
    HttpResponse r = s.Post("/v1/queues/work/leases?wait=30", "", "");
    return std::make_pair(r, SteadyClock::now() - start);
  });
  // Whichever arrives first, the job is handed out; when the lease request
  // is first (the usual case), only the submit can end its wait early.
  const std::string id = s.SubmitOk("work", "hello", "", "text/plain");
  auto [r, took] = waiting.get();
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(r.Header("Acceptd-Job-Id"), id);
  EXPECT_EQ(r.body, "hello");
  EXPECT_LT(took, 20s) << "woken by the submit, not by the end of its wait";
}

TEST(LeaseProtocolTest, FailRetryableIsRetriedThenFailsAndNonRetryableFailsAtOnce) {
  ServerProcess s(External());
  const std::string id = s.SubmitOk("work", "{}");
  Leased first = LeaseOk(s, "work");
  HttpResponse f = Call(s, first.lease, "fail", R"({"detail": "backend busy", "retryable": true})",
                        "application/problem+json");
  ASSERT_EQ(f.status, 200) << Describe(f);
  EXPECT_EQ(Str(f.Json(), "state"), "queued");
  Leased second = LeaseOk(s, "work");
  EXPECT_EQ(second.job, id);
  EXPECT_EQ(second.response.Header("Acceptd-Attempt"), "2");
  ExpectProblem(Call(s, first.lease, "complete", "late"), 409);

  HttpResponse g = Call(s, second.lease, "fail",
                        R"({"detail": "not an image", "code": "bad_image", "retryable": false})");
  ASSERT_EQ(g.status, 200) << Describe(g);
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Str(doc.at("error"), "type"), "bad_image");
  EXPECT_EQ(Str(doc.at("error"), "message"), "not an image");
  EXPECT_EQ(Int(doc, "attempts"), 2);

  const std::string other = s.SubmitOk("work", "{}");
  Leased third = LeaseOk(s, "work");
  ExpectProblem(Call(s, third.lease, "fail", "not json"), 400);
  ExpectProblem(Call(s, third.lease, "fail", R"({"retryable": "yes"})"), 400);
  EXPECT_EQ(Str(s.Job(other), "state"), "running") << "a malformed failure changes nothing";
}

TEST(LeaseProtocolTest, AFailuresRetryAfterSetsTheNextAttemptInsteadOfTheBackoff) {
  ServerProcess s(External(R"(
[queues.patient]
handler = "external"
backoff = { base = 0.05, max = 600 }
)"));
  const std::string id = s.SubmitOk("patient", "{}");
  Leased l = LeaseOk(s, "patient");
  HttpResponse f = Call(s, l.lease, "fail", R"({"detail": "rate limited", "retry_after": 120})");
  ASSERT_EQ(f.status, 200) << Describe(f);
  json::object doc = s.Job(id);
  EXPECT_EQ(Str(doc, "state"), "queued");
  ASSERT_TRUE(doc.contains("run_at")) << json::serialize(doc);
  // RFC 3339 with milliseconds: compare the parsed instants' distance.
  const auto parse = [](const std::string& t) {
    std::tm tm{};
    strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    return static_cast<int64_t>(timegm(&tm));
  };
  const int64_t delay = parse(Str(doc, "run_at")) - parse(Str(doc, "updated_at"));
  EXPECT_GE(delay, 119);
  EXPECT_LE(delay, 121);
  s.SubmitOk("work", "{}");
  ExpectProblem(Call(s, LeaseOk(s, "work").lease, "fail", R"({"retry_after": -1})"), 400);
}

TEST(LeaseProtocolTest, ReleaseGivesTheJobBackWithoutSpendingTheAttempt) {
  ServerProcess s(External());
  const std::string id = s.SubmitOk("work", "{}");
  Leased l = LeaseOk(s, "work");
  HttpResponse r = Call(s, l.lease, "release");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(Str(r.Json(), "state"), "queued");
  EXPECT_EQ(Int(r.Json(), "attempts"), 0);
  Leased again = LeaseOk(s, "work");
  EXPECT_EQ(again.job, id);
  EXPECT_EQ(again.response.Header("Acceptd-Attempt"), "1");
}

TEST(LeaseProtocolTest, CancelOfARunningExternalJobIsSeenInTheNextHeartbeat) {
  ServerProcess s(External());
  const std::string id = s.SubmitOk("work", "{}");
  Leased l = LeaseOk(s, "work");
  HttpResponse c = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_EQ(c.status, 202) << Describe(c);
  HttpResponse hb = Call(s, l.lease, "heartbeat");
  ASSERT_EQ(hb.status, 200) << Describe(hb);
  EXPECT_TRUE(hb.Json().at("cancel_requested").as_bool());
  HttpResponse r = Call(s, l.lease, "release");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(Str(r.Json(), "state"), "canceled");
  EXPECT_EQ(Str(s.WaitTerminal(id), "state"), "canceled");
}

TEST(LeaseProtocolTest, AWorkerThatDiedLosesItsLeaseAndTheJobSucceedsOnce) {
  ServerProcess s(External());
  const std::string id = s.SubmitOk("work", "{}");
  // The dead worker: leased for 1 s, never heard of again.
  Leased dead = LeaseOk(s, "work", "?wait=10&lease=1");
  // The next lease waits until the rescuer requeues the job.
  Leased alive = LeaseOk(s, "work", "?wait=30");
  EXPECT_EQ(alive.job, id);
  EXPECT_EQ(alive.response.Header("Acceptd-Attempt"), "2");
  ExpectProblem(Call(s, dead.lease, "complete", "from the dead"), 409);
  ExpectProblem(Call(s, dead.lease, "heartbeat"), 409);
  ASSERT_EQ(Call(s, alive.lease, "complete", "once", "text/plain").status, 200);
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "succeeded");
  EXPECT_EQ(Int(doc, "attempts"), 2);
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, "once");
}

TEST(LeaseProtocolTest, HeartbeatsDoNotExtendALeasePastTheAttemptTimeout) {
  ServerProcess s(External());
  const std::string id = s.SubmitOk("work", "{}", "?timeout=2&max_attempts=1");
  Leased l = LeaseOk(s, "work", "?wait=10&lease=60");
  EXPECT_LE(std::stod(l.response.Header("Acceptd-Lease-Seconds")), 2);
  HttpResponse hb = Call(s, l.lease, "heartbeat", "", "");
  ASSERT_EQ(hb.status, 200) << Describe(hb);
  EXPECT_LE(hb.Json().at("lease_seconds").to_number<double>(), 2);
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Str(doc.at("error"), "type"), "timeout");
}

TEST(LeaseProtocolTest, BadRequestsAreProblemsAndChangeNothing) {
  ServerProcess s(External());
  ExpectProblem(s.Post("/v1/queues/echo/leases?wait=0", "", ""), 409);
  ExpectProblem(s.Post("/v1/queues/nope/leases?wait=0", "", ""), 404);
  ExpectProblem(s.Post("/v1/queues/work/leases?wait=61", "", ""), 400);
  ExpectProblem(s.Post("/v1/queues/work/leases?lease=0", "", ""), 400);
  ExpectProblem(s.Post("/v1/queues/work/leases?max=2", "", ""), 400);
  ExpectProblem(Call(s, "not-a-lease", "heartbeat"), 409);
  ExpectProblem(Call(s, std::string(32, 'a') + ".1", "complete", "x"), 409);
  const std::string id = s.SubmitOk("work", "{}");
  Leased l = LeaseOk(s, "work");
  ExpectProblem(Call(s, l.lease, "heartbeat", R"({"percent": "half"})"), 400);
  ExpectProblem(Call(s, l.lease, "heartbeat", "[1]"), 400);
  // A completion beyond the body limit.
  ExpectProblem(Call(s, l.lease, "complete", std::string(2 << 20, 'x'), "text/plain"), 413);
  EXPECT_EQ(Str(s.Job(id), "state"), "running");
}

TEST(LeaseProtocolTest, LeasesHeldAcrossAGracefulRestartCanStillBeCompleted) {
  ServerProcess s(External());
  const std::string id = s.SubmitOk("work", "{}");
  Leased l = LeaseOk(s, "work");
  // (A lease request still waiting at shutdown is answered 503: see
  // EngineLeaseTest.ShutdownAnswersWaitingLeasesAndKeepsHeldOnes.)
  EXPECT_EQ(s.Terminate(), 0);
  s.Restart();
  EXPECT_EQ(Str(s.Job(id), "state"), "running") << "the worker's lease was not released";
  ASSERT_EQ(Call(s, l.lease, "complete", "after restart", "text/plain").status, 200);
  EXPECT_EQ(Str(s.WaitTerminal(id), "state"), "succeeded");
}

}  // namespace
}  // namespace acceptd::itest
