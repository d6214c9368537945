// POST /v1/jobs/{id}/retry against the real binary: a failed or canceled job
// runs again under the same id (its status URL stays valid), and nothing
// else can be retried.
#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

const char* kQueues = R"(
[queues.bad]
handler = "fail"
max_attempts = 1

[queues.work]
handler = "echo"
)";

TEST(IntegrationRetryJobTest, AFailedOrCanceledJobRunsAgainUnderItsId) {
  ServerProcess s(ServerOptions().WithQueues(kQueues));
  const std::string failed = s.SubmitOk("bad", "{}");
  EXPECT_EQ(Str(s.WaitTerminal(failed), "state"), "failed");
  HttpResponse r = s.Post("/v1/jobs/" + failed + "/retry");
  ASSERT_EQ(r.status, 202) << Describe(r);
  EXPECT_EQ(r.Header("Location"), "/v1/jobs/" + failed);
  EXPECT_FALSE(r.Header("Retry-After").empty());
  EXPECT_EQ(Str(r.Json(), "state"), "queued");
  const json::object again = s.WaitTerminal(failed);
  EXPECT_EQ(Str(again, "state"), "failed");
  EXPECT_EQ(Int(again, "attempts"), 2) << "a new attempt of the same job";

  const std::string delayed = s.SubmitOk("work", R"({"x":1})", "?delay=3600");
  ASSERT_EQ(s.Post("/v1/jobs/" + delayed + "/cancel").status, 200);
  ASSERT_EQ(s.Post("/v1/jobs/" + delayed + "/retry").status, 202);
  EXPECT_EQ(Str(s.WaitTerminal(delayed), "state"), "succeeded") << "due at once, not delayed";

  HttpResponse twice = s.Post("/v1/jobs/" + delayed + "/retry");
  EXPECT_EQ(twice.status, 409) << Describe(twice);
  EXPECT_EQ(Str(twice.Json(), "state"), "succeeded");
  EXPECT_EQ(s.Post("/v1/jobs/0123456789abcdef0123456789abcdef/retry").status, 404);
}

}  // namespace
}  // namespace acceptd::itest
