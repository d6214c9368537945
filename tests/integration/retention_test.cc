// Retention: terminal jobs (and their results) are purged once expires_at
// (finished_at + the queue's retention) has passed.
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationRetentionTest, TerminalJobsArePurgedAfterTheirRetention) {
  ServerProcess s(
      ServerOptions().Set("purge_interval", "0.05").Set("tombstone_retention", "0.5").WithQueues(R"(
[queues.short]
handler = "echo"
retention = 0.5
[queues.long]
handler = "echo"
)"));
  const std::string brief = s.SubmitOk("short", "x");
  const std::string kept = s.SubmitOk("long", "y");
  json::object doc = s.WaitTerminal(brief);
  ASSERT_EQ(Str(doc, "state"), "succeeded");
  const int64_t expires_at = TimeField(doc, "expires_at");
  EXPECT_EQ(expires_at - TimeField(doc, "finished_at"), 500) << json::serialize(doc);
  s.WaitTerminal(kept);

  // Expired: 410 Gone while the tombstone lasts, then 404.
  ASSERT_TRUE(WaitFor([&] { return s.Get("/v1/jobs/" + brief).status == 410; }, 10s))
      << "the job outlived its retention";
  EXPECT_GE(NowMillis(), expires_at) << "purged before expires_at";
  HttpResponse gone = s.Get("/v1/jobs/" + brief + "/result");
  ExpectProblem(gone, 410);
  EXPECT_EQ(Str(gone.Json(), "code"), "gone");
  ASSERT_TRUE(WaitFor([&] { return s.Get("/v1/jobs/" + brief).status == 404; }, 10s))
      << "the tombstone outlived tombstone_retention";
  // The other queue's job (default retention: one day) stays.
  EXPECT_EQ(s.Get("/v1/jobs/" + kept).status, 302);
  EXPECT_EQ(Int(s.Queue("short").at("counts"), "succeeded"), 0);
}

// GET of a purged job's id answered 410 while its tombstone lasted, but
// cancel and retry answered 409 without a state and DELETE 404.
TEST(IntegrationRetentionTest, ChangesToAPurgedJobAnswered404Or409InsteadOf410) {
  ServerProcess s(ServerOptions().Set("purge_interval", "0.05").WithQueues(R"(
[queues.short]
handler = "echo"
retention = 0.2
)"));
  const std::string id = s.SubmitOk("short", "x");
  // Purged, not only expired: an expired job still in the store is deleted
  // by DELETE (204) until the purger removes it.
  ASSERT_TRUE(WaitFor([&] { return Int(s.Queue("short").at("counts"), "succeeded") == 0; }, 10s));
  ASSERT_EQ(s.Get("/v1/jobs/" + id).status, 410);
  for (HttpResponse r : {s.Post("/v1/jobs/" + id + "/cancel"), s.Post("/v1/jobs/" + id + "/retry"),
                         s.Delete("/v1/jobs/" + id)}) {
    ExpectProblem(r, 410);
    EXPECT_EQ(Str(r.Json(), "code"), "gone");
  }
}

TEST(IntegrationRetentionTest, QueuedAndRunningJobsAreNeverPurged) {
  ServerProcess s(ServerOptions().Set("purge_interval", "0.05").WithQueues(R"(
[queues.short]
handler = "sleep"
retention = 0
)"));
  const std::string running = s.SubmitOk("short", R"({"ms":30000})");
  const std::string queued = s.SubmitOk("short", R"({"ms":1})", "?delay=60");
  s.WaitState(running, "running");
  std::this_thread::sleep_for(300ms);  // several purge rounds
  EXPECT_EQ(Str(s.Job(running), "state"), "running");
  EXPECT_EQ(Str(s.Job(queued), "state"), "queued");
  ASSERT_EQ(s.Post("/v1/jobs/" + running + "/cancel").status, 202);
  ASSERT_TRUE(WaitFor([&] { return s.Get("/v1/jobs/" + running).status == 410; }, 10s))
      << "a canceled job with retention 0 should be purged";
}

}  // namespace
}  // namespace acceptd::itest
