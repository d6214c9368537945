// Regression tests for defects found by the trust review (issue 8), each
// named after the bug it pins, against the real binary.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

// Six submits in a row to a concurrency-1 queue of 1 s jobs all got
// "Retry-After: 2" while a poll of the sixth answered 8: the 202 must carry
// the estimate of the job's first poll.
TEST(TrustRegressionTest, SubmitRetryAfterIgnoresQueuePosition) {
  ServerProcess s(ServerOptions().Set("promote_interval", "3600").WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
)"));
  // One finished job gives the queue its run time (about 1 s).
  s.WaitTerminal(s.SubmitOk("slow", R"({"ms":1000})"));
  std::vector<std::pair<std::string, int64_t>> submitted;
  for (int i = 0; i < 6; ++i) {
    HttpResponse r = s.Submit("slow", R"({"ms":1000})");
    ASSERT_EQ(r.status, 202) << r.body;
    submitted.emplace_back(Str(r.Json(), "id"), std::stoll(r.Header("Retry-After")));
  }
  const auto& [last_id, last_at_submit] = submitted.back();
  HttpResponse poll = s.Get("/v1/jobs/" + last_id);
  ASSERT_EQ(poll.status, 202);
  const int64_t at_poll = std::stoll(poll.Header("Retry-After"));
  // The poll comes a moment later (a second boundary may pass meanwhile).
  EXPECT_LE(std::abs(last_at_submit - at_poll), 1)
      << "submit said " << last_at_submit << ", the first poll " << at_poll;
  EXPECT_GE(last_at_submit, 5) << "five jobs or more are ahead of the sixth";
  EXPECT_GT(last_at_submit, submitted.front().second);
}

// A finished job kept answering 302/200 for up to purge_interval after its
// expires_at: from that instant on it is 410 Gone.
TEST(TrustRegressionTest, ExpiresAtNotKept) {
  ServerProcess s(ServerOptions().Set("purge_interval", "3600").WithQueues(R"(
[queues.brief]
handler = "echo"
retention = 0.3
)"));
  const std::string id = s.SubmitOk("brief", "x");
  json::object doc = s.WaitTerminal(id);
  const int64_t expires_at = TimeField(doc, "expires_at");
  ASSERT_TRUE(WaitFor([&] { return NowMillis() > expires_at; }, 5s));
  ExpectProblem(s.Get("/v1/jobs/" + id), 410);
  ExpectProblem(s.Get("/v1/jobs/" + id + "/result"), 410);
  HttpResponse list = s.Get("/v1/jobs?queue=brief");
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(list.Json().at("jobs").as_array().empty()) << list.body;
}

}  // namespace
}  // namespace acceptd::itest
