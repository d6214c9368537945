// Graceful shutdown on SIGTERM/SIGINT: submits are refused with 503 while
// running jobs finish within shutdown_grace; then leases are released and
// the process exits 0.
#include <csignal>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationShutdownTest, RunningJobFinishesDuringGraceWhileSubmitsGet503) {
  ServerProcess s(ServerOptions().Set("shutdown_grace", "20").WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
)"));
  const std::string running = s.SubmitOk("slow", R"({"ms":1500})");
  s.WaitState(running, "running");
  const std::string queued = s.SubmitOk("slow", R"({"ms":10})");
  s.Signal(SIGTERM);
  const int64_t sigterm_at = NowMillis();

  // Readiness flips first; then submits are refused while the job still runs.
  ASSERT_TRUE(WaitFor([&] { return s.Get("/readyz").status == 503; }, 5s));
  ExpectProblem(s.Get("/readyz"), 503, "readyz during shutdown");
  HttpResponse refused = s.Submit("slow", R"({"ms":1})");
  ExpectProblem(refused, 503, "submit during shutdown");
  EXPECT_FALSE(refused.Header("Retry-After").empty());
  HttpResponse poll = s.Get("/v1/jobs/" + running);
  EXPECT_EQ(poll.status, 202) << "status polls are still answered during the grace period";
  EXPECT_EQ(Str(poll.Json(), "state"), "running");
  EXPECT_EQ(s.Get("/healthz").status, 200);

  std::optional<int> code = s.WaitExit(30s);
  ASSERT_TRUE(code.has_value()) << "acceptd did not exit after SIGTERM";
  EXPECT_EQ(*code, 0);
  const int64_t exited_at = NowMillis();

  s.Restart();
  json::object doc = s.Job(running);
  EXPECT_EQ(Str(doc, "state"), "succeeded")
      << "the running job should finish within the grace period: " << json::serialize(doc);
  EXPECT_EQ(Int(doc, "attempts"), 1);
  EXPECT_GT(TimeField(doc, "finished_at"), sigterm_at);
  EXPECT_LE(TimeField(doc, "finished_at"), exited_at);
  EXPECT_EQ(s.Get("/v1/jobs/" + running + "/result").body, R"({"slept_ms":1500})");

  // The queued job was not started during shutdown; it runs after the restart.
  json::object q = s.WaitTerminal(queued, 10s);
  EXPECT_EQ(Str(q, "state"), "succeeded");
  EXPECT_EQ(Int(q, "attempts"), 1);
  EXPECT_GE(TimeField(q, "started_at"), exited_at - 5) << json::serialize(q);

  // The refused submit left nothing behind.
  EXPECT_EQ(s.Get("/v1/jobs").Json().at("jobs").as_array().size(), 2u);
  EXPECT_EQ(s.Terminate(), 0);
}

TEST(IntegrationShutdownTest, AfterTheGracePeriodTheJobIsReleasedWithoutSpendingAnAttempt) {
  ServerProcess s(ServerOptions().Set("shutdown_grace", "0.3").WithQueues(R"(
[queues.slow]
handler = "sleep"
max_attempts = 2
)"));  // lease stays at its 30 s default: only a release makes the job claimable at once
  const std::string id = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(id, "running");
  const auto start = SteadyClock::now();
  EXPECT_EQ(s.Terminate(20s), 0);
  EXPECT_LT(SteadyClock::now() - start, 10s) << "shutdown should not wait for the 30 s job";

  const int64_t stopped_at = NowMillis();
  s.Restart();
  json::object doc;
  ASSERT_TRUE(WaitFor(
      [&] {
        doc = s.Job(id);
        return Str(doc, "state") == "running" && TimeField(doc, "updated_at") >= stopped_at;
      },
      10s))
      << "the job was not claimed again promptly (lease not released?): " << json::serialize(doc);
  EXPECT_EQ(Int(doc, "attempts"), 1) << "the interrupted attempt must not be counted";
  ASSERT_EQ(s.Post("/v1/jobs/" + id + "/cancel").status, 202);
  EXPECT_EQ(Str(s.WaitTerminal(id, 10s), "state"), "canceled");
}

TEST(IntegrationShutdownTest, IdleServerExitsZeroOnSigtermAndSigint) {
  ServerProcess s;
  const std::string id = s.SubmitOk("greeting", R"({"name":"kept"})");
  s.WaitState(id, "succeeded");
  auto start = SteadyClock::now();
  EXPECT_EQ(s.Terminate(), 0);
  EXPECT_LT(SteadyClock::now() - start, 5s);

  s.Restart();
  EXPECT_EQ(Str(s.Job(id), "state"), "succeeded") << "the store survives a restart";
  s.Signal(SIGINT);
  start = SteadyClock::now();
  std::optional<int> code = s.WaitExit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(SteadyClock::now() - start, 5s);
}

}  // namespace
}  // namespace acceptd::itest
