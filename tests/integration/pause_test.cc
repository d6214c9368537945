// POST /v1/queues/{queue}/pause and /resume against the real binary: a
// paused queue starts nothing (in-process handlers and leases alike) but
// takes submits; the pause survives a restart; resuming runs what waited.
#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

const char* kQueues = R"(
[queues.work]
handler = "echo"
concurrency = 2

[queues.ext]
handler = "external"

[queues.other]
handler = "echo"
)";

TEST(IntegrationPauseTest, APausedQueueTakesSubmitsStartsNothingAndResumesAfterARestart) {
  ServerProcess s(ServerOptions().WithQueues(kQueues));
  HttpResponse paused = s.Post("/v1/queues/work/pause");
  ASSERT_EQ(paused.status, 200) << Describe(paused);
  EXPECT_TRUE(paused.Json().at("paused").as_bool());
  EXPECT_FALSE(paused.Json().at("was_paused").as_bool());
  EXPECT_TRUE(s.Post("/v1/queues/work/pause").Json().at("was_paused").as_bool());
  EXPECT_TRUE(s.Queue("work").at("paused").as_bool());
  EXPECT_FALSE(s.Queue("other").at("paused").as_bool());

  const std::string waiting = s.SubmitOk("work", R"({"n":1})");
  const std::string elsewhere = s.SubmitOk("other", R"({"n":2})");
  EXPECT_EQ(Str(s.WaitTerminal(elsewhere), "state"), "succeeded") << "other queues run";
  // Long enough for many claim rounds (promote_interval is 20 ms here).
  HttpResponse still = s.Get("/v1/jobs/" + waiting + "?wait=1");
  EXPECT_EQ(still.status, 202);
  EXPECT_EQ(Str(still.Json(), "state"), "queued");
  EXPECT_NE(s.Get("/metrics").body.find("acceptd_queue_paused{queue=\"work\"} 1\n"),
            std::string::npos);

  s.Terminate();
  s.Restart();
  EXPECT_TRUE(s.Queue("work").at("paused").as_bool()) << "the pause is in the store";
  EXPECT_EQ(Str(s.Job(waiting), "state"), "queued");

  HttpResponse resumed = s.Post("/v1/queues/work/resume");
  ASSERT_EQ(resumed.status, 200) << Describe(resumed);
  EXPECT_TRUE(resumed.Json().at("was_paused").as_bool());
  EXPECT_EQ(Str(s.WaitTerminal(waiting, 5s), "state"), "succeeded");
  EXPECT_EQ(s.Post("/v1/queues/nope/pause").status, 404);
}

TEST(IntegrationPauseTest, LeasesOfAPausedQueueWaitUntilItResumes) {
  ServerProcess s(ServerOptions().WithQueues(kQueues));
  ASSERT_EQ(s.Post("/v1/queues/ext/pause").status, 200);
  const std::string id = s.SubmitOk("ext", "{}");
  EXPECT_EQ(s.Post("/v1/queues/ext/leases?wait=1").status, 204) << "nothing handed out";
  ASSERT_EQ(s.Post("/v1/queues/ext/resume").status, 200);
  HttpResponse leased = s.Post("/v1/queues/ext/leases?wait=5");
  ASSERT_EQ(leased.status, 200) << Describe(leased);
  EXPECT_EQ(leased.Header("Acceptd-Job-Id"), id);
}

}  // namespace
}  // namespace acceptd::itest
