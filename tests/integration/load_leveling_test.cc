// Load leveling: a queue at max_depth (queued + running) refuses submits
// with 503 + Retry-After, and accepts again once it drains.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationLoadLevelingTest, FullQueueAnswers503UntilItDrains) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.level]
handler = "sleep"
concurrency = 1
max_depth = 3
[queues.echo]
handler = "echo"
)"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(s.SubmitOk("level", R"({"ms":150})"));

  HttpResponse full = s.Submit("level", R"({"ms":150})");
  ExpectProblem(full, 503);
  EXPECT_EQ(full.Header("Retry-After"), "1");
  EXPECT_FALSE(full.HasHeader("Location"));
  EXPECT_EQ(Int(s.Queue("level"), "depth"), 3) << "the refused submit created a job";

  // Other queues are not affected.
  s.SubmitOk("echo", "x");

  for (const std::string& id : ids) EXPECT_EQ(Str(s.WaitTerminal(id, 10s), "state"), "succeeded");
  EXPECT_EQ(Int(s.Queue("level"), "depth"), 0);
  // Terminal jobs do not count: three more fit again.
  for (int i = 0; i < 3; ++i) s.SubmitOk("level", R"({"ms":1})");
}

TEST(IntegrationLoadLevelingTest, RunningJobsCountTowardsDepth) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.level]
handler = "sleep"
concurrency = 1
max_depth = 1
)"));
  const std::string running = s.SubmitOk("level", R"({"ms":30000})");
  s.WaitState(running, "running");
  HttpResponse full = s.Submit("level", R"({"ms":1})");
  ExpectProblem(full, 503);
  EXPECT_FALSE(full.Header("Retry-After").empty());
  ASSERT_EQ(s.Post("/v1/jobs/" + running + "/cancel").status, 202);
  s.WaitState(running, "canceled");
  s.SubmitOk("level", R"({"ms":1})");
}

TEST(IntegrationLoadLevelingTest, ConfiguredRetryAfterIsAdvertised) {
  ServerProcess s(ServerOptions().Set("retry_after", "7").WithQueues(R"(
[queues.level]
handler = "echo"
max_depth = 1
)"));
  HttpResponse first = s.Submit("level", "x", "?delay=60");
  ASSERT_EQ(first.status, 202) << Describe(first);
  EXPECT_GE(std::stoi(first.Header("Retry-After")), 7);
  HttpResponse full = s.Submit("level", "x");
  ExpectProblem(full, 503);
  EXPECT_EQ(full.Header("Retry-After"), "7");
}

TEST(IntegrationLoadLevelingTest, ConcurrentSubmitsNeverExceedMaxDepth) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.level]
handler = "echo"
max_depth = 5
)"));
  // Delayed jobs stay queued, so exactly five may ever be accepted.
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      try {
        HttpClient c(s.port());
        for (int i = 0; i < 5; ++i) {
          HttpResponse r = c.Post("/v1/queues/level/jobs?delay=60", "x", "text/plain");
          if (r.status == 202) {
            ++accepted;
          } else if (r.status == 503) {
            ++refused;
          } else {
            ++other;
          }
        }
      } catch (const std::exception&) {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 5);
  EXPECT_EQ(refused.load(), 15);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Int(s.Queue("level"), "depth"), 5);
}

}  // namespace
}  // namespace acceptd::itest
