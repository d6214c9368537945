// Which queued job runs next: priority (higher first, FIFO among equals) and
// the delay option.
#include <algorithm>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationPriorityTest, HigherPriorityRunsFirstOnAOneSlotQueue) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
)"));
  const std::string blocker = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(blocker, "running");
  // Submitted in this order while the single slot is busy.
  const std::vector<std::pair<std::string, int>> order = {
      {"low", -5}, {"mid1", 0}, {"high1", 10}, {"high2", 10}, {"mid2", 0}, {"top", 1000000},
  };
  std::map<std::string, std::string> ids;
  for (const auto& [name, prio] : order) {
    HttpResponse r = s.Submit("slow", R"({"ms":30})", "?priority=" + std::to_string(prio));
    ASSERT_EQ(r.status, 202) << Describe(r);
    EXPECT_EQ(Int(r.Json(), "priority"), prio);
    ids[name] = Str(r.Json(), "id");
  }
  ASSERT_EQ(s.Post("/v1/jobs/" + blocker + "/cancel").status, 202);

  std::vector<std::pair<int64_t, std::string>> started;
  for (const auto& [name, id] : ids) {
    json::object doc = s.WaitTerminal(id, 20s);
    ASSERT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
    started.emplace_back(TimeField(doc, "started_at"), name);
  }
  std::sort(started.begin(), started.end());
  std::vector<std::string> actual;
  for (const auto& [t, name] : started) actual.push_back(name);
  EXPECT_EQ(actual, (std::vector<std::string>{"top", "high1", "high2", "mid1", "mid2", "low"}));
}

TEST(IntegrationDelayTest, DelayedJobWaitsBeforeRunning) {
  ServerProcess s;
  HttpResponse r = s.Submit("echo", "later", "?delay=0.8", "text/plain");
  ASSERT_EQ(r.status, 202) << Describe(r);
  const std::string id = Str(r.Json(), "id");
  EXPECT_EQ(Str(r.Json(), "state"), "queued");
  EXPECT_GE(std::stoi(r.Header("Retry-After")), 1);

  HttpResponse early = s.Get("/v1/jobs/" + id);
  EXPECT_EQ(early.status, 202);
  EXPECT_EQ(Str(early.Json(), "state"), "queued");
  EXPECT_TRUE(IsNull(early.Json(), "started_at"));

  json::object doc = s.WaitTerminal(id, 10s);
  EXPECT_EQ(Str(doc, "state"), "succeeded");
  EXPECT_GE(TimeField(doc, "started_at") - TimeField(doc, "created_at"), 800);
  EXPECT_LT(TimeField(doc, "started_at") - TimeField(doc, "created_at"), 5000);
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, "later");
}

TEST(IntegrationDelayTest, RetryAfterReflectsTheDelay) {
  ServerProcess s;
  HttpResponse r = s.Submit("echo", "x", "?delay=3.5");
  ASSERT_EQ(r.status, 202) << Describe(r);
  const int submit_retry_after = std::stoi(r.Header("Retry-After"));
  EXPECT_GE(submit_retry_after, 3);
  EXPECT_LE(submit_retry_after, 4);
  const std::string id = Str(r.Json(), "id");
  HttpResponse poll = s.Get("/v1/jobs/" + id);
  ASSERT_EQ(poll.status, 202);
  EXPECT_GE(std::stoi(poll.Header("Retry-After")), 3);
  ASSERT_EQ(s.Post("/v1/jobs/" + id + "/cancel").status, 200);
}

TEST(IntegrationDelayTest, ZeroDelayRunsAtOnceAndADelayedJobDoesNotBlockOthers) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.one]
handler = "echo"
concurrency = 1
)"));
  const std::string delayed = s.SubmitOk("one", "late", "?delay=60&priority=100");
  const std::string now = s.SubmitOk("one", "now", "?delay=0");
  EXPECT_EQ(Str(s.WaitTerminal(now, 10s), "state"), "succeeded");
  EXPECT_EQ(Str(s.Job(delayed), "state"), "queued")
      << "a high-priority job that is not due yet must not run";
}

}  // namespace
}  // namespace acceptd::itest

namespace acceptd::itest {
namespace {

// Retry-After is an estimate from the queue's length, its concurrency and
// its recent run times, not a constant.
TEST(IntegrationRetryAfterTest, EstimateGrowsWithTheWorkAhead) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
timeout = 60
)"));
  // One run teaches the server how long a job takes here.
  const std::string first = s.SubmitOk("slow", R"({"ms":1200})");
  s.WaitState(first, "succeeded");
  for (int i = 0; i < 3; ++i) s.SubmitOk("slow", R"({"ms":1200})");
  const std::string last = s.SubmitOk("slow", R"({"ms":1200})");
  // The queue's length reaches the estimate within a promoter interval.
  HttpResponse res;
  EXPECT_TRUE(WaitFor(
      [&] {
        res = s.Get("/v1/jobs/" + last);
        return res.status == 202 && std::stoi(res.Header("Retry-After")) >= 3;
      },
      5s))
      << "3 jobs of ~1.2 s ahead on one slot: " << Describe(res);
  EXPECT_LE(std::stoi(res.Header("Retry-After")), 60);
}

}  // namespace
}  // namespace acceptd::itest
