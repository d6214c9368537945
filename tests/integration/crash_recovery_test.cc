// kill -9 and restart: every job that was answered 202 is still there and
// reaches a terminal state; attempts cut short by the crash are retried
// once their lease expires.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

ServerOptions CrashConfig() {
  return ServerOptions().Set("lease", "1").WithQueues(R"(
[queues.sleep]
handler = "sleep"
concurrency = 4
backoff = { base = 0.05, max = 0.05, jitter = 0 }
[queues.echo]
handler = "echo"
concurrency = 4
)");
}

TEST(IntegrationCrashRecoveryTest, EveryAcceptedJobSurvivesKill9DuringASubmitBurst) {
  ServerProcess s(CrashConfig());
  // A job that is certainly mid-attempt when the process dies.
  const std::string long_job = s.SubmitOk("sleep", R"({"ms":1500})");
  s.WaitState(long_job, "running");

  std::mutex mu;
  std::vector<std::string> accepted;  // every id answered 202
  std::vector<std::string> unexpected;
  std::atomic<int> count{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c(s.port(), 5s);
      for (int i = 0; !stop.load(); ++i) {
        const bool sleep = i % 8 == 0;
        HttpResponse r;
        try {
          r = sleep ? c.Post("/v1/queues/sleep/jobs", R"({"ms":200})")
                    : c.Post("/v1/queues/echo/jobs",
                             "burst " + std::to_string(t) + "-" + std::to_string(i), "text/plain");
        } catch (const std::exception&) {
          return;  // the server died under us
        }
        std::lock_guard lock(mu);
        if (r.status == 202) {
          accepted.push_back(Str(r.Json(), "id"));
          ++count;
        } else {
          unexpected.push_back(Describe(r));
        }
      }
    });
  }
  const bool enough = WaitFor([&] { return count.load() >= 120; }, 30s, 2ms);
  const std::string long_state = Str(s.Job(long_job), "state");
  s.Kill();  // while the threads are still submitting
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_TRUE(enough) << "only " << count.load() << " submits accepted";
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  ASSERT_EQ(long_state, "running") << "the long job should have been mid-attempt at the kill";
  EXPECT_EQ(std::set<std::string>(accepted.begin(), accepted.end()).size(), accepted.size())
      << "duplicate ids";

  s.Restart();
  for (const std::string& id : accepted) {
    HttpResponse r = s.Get("/v1/jobs/" + id);
    ASSERT_NE(r.status, 404) << "job " << id << " was answered 202 but is gone after kill -9";
  }
  for (const std::string& id : accepted) {
    json::object doc = s.WaitTerminal(id, 30s);
    EXPECT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
  }
  json::object doc = s.WaitTerminal(long_job, 30s);
  EXPECT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
  EXPECT_EQ(Int(doc, "attempts"), 2) << "the interrupted attempt counts, then one more";
  EXPECT_EQ(s.Get("/v1/jobs/" + long_job + "/result").body, R"({"slept_ms":1500})");

  // Nothing is left behind in a non-terminal state.
  for (const char* state : {"queued", "running"}) {
    HttpResponse r = s.Get(std::string("/v1/jobs?state=") + state);
    EXPECT_EQ(r.Json().at("jobs").as_array().size(), 0u) << state << ": " << r.body;
  }
}

TEST(IntegrationCrashRecoveryTest, CrashDuringTheLastAttemptEndsFailedWithLeaseExpired) {
  ServerProcess s(CrashConfig());
  const std::string id = s.SubmitOk("sleep", R"({"ms":30000})", "?max_attempts=1");
  s.WaitState(id, "running");
  const std::string queued = s.SubmitOk("echo", "kept", "?delay=0.5");
  s.Kill();
  s.Restart();
  json::object doc = s.WaitTerminal(id, 20s);
  ExpectValidJobDocument(doc, "after crash");
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Str(doc.at("error"), "type"), "lease_expired");
  EXPECT_EQ(Int(doc, "attempts"), 1);
  EXPECT_EQ(Str(s.WaitTerminal(queued, 20s), "state"), "succeeded");
  EXPECT_EQ(s.Get("/v1/jobs/" + queued + "/result").body, "kept");
}

}  // namespace
}  // namespace acceptd::itest
