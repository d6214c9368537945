// Retries with backoff (the `fail` handler) and per-attempt timeouts (the
// `sleep` handler).
#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationRetryTest, FailIsRetriedUpToMaxAttemptsWithBackoff) {
  // Deterministic backoff: 200 ms before attempt 2, 400 ms before attempt 3.
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.flaky]
handler = "fail"
max_attempts = 3
backoff = { base = 0.2, max = 10, jitter = 0 }
)"));
  const std::string id = s.SubmitOk("flaky", R"({"message":"boom 42"})");
  json::object doc = s.WaitTerminal(id, 20s);
  ExpectValidJobDocument(doc, "failed");
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Int(doc, "attempts"), 3);
  EXPECT_EQ(Int(doc, "max_attempts"), 3);
  EXPECT_EQ(Str(doc.at("error"), "type"), "handler_error");
  EXPECT_EQ(Str(doc.at("error"), "message"), "boom 42");
  const int64_t elapsed = TimeField(doc, "finished_at") - TimeField(doc, "started_at");
  EXPECT_GE(elapsed, 600) << "backoff delays were not respected";
  EXPECT_LT(elapsed, 5000) << "retries took far longer than the backoff";
  HttpResponse r = s.Get("/v1/jobs/" + id);
  EXPECT_EQ(r.status, 200);
}

TEST(IntegrationRetryTest, BetweenAttemptsTheJobIsQueuedAgainWithAttemptsCounted) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.flaky]
handler = "fail"
max_attempts = 2
backoff = { base = 0.6, max = 10, jitter = 0 }
)"));
  const std::string id = s.SubmitOk("flaky", R"({"message":"again"})");
  // After the first failure: queued, one attempt spent, no error shown yet.
  json::object between;
  ASSERT_TRUE(WaitFor(
      [&] {
        between = s.Job(id);
        return Int(between, "attempts") == 1 && Str(between, "state") == "queued";
      },
      10s))
      << json::serialize(between);
  ExpectValidJobDocument(between, "between attempts");
  HttpResponse r = s.Get("/v1/jobs/" + id);
  if (r.status == 202 && Str(r.Json(), "state") == "queued") {
    EXPECT_GE(std::stoi(r.Header("Retry-After")), 1);
  }
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Int(doc, "attempts"), 2);
  EXPECT_GE(TimeField(doc, "finished_at") - TimeField(doc, "started_at"), 600);
}

TEST(IntegrationRetryTest, BackoffIsCappedAtMax) {
  // Uncapped: 100 + 200 + 400 + 800 = 1500 ms; capped at 150: 550 ms.
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.flaky]
handler = "fail"
max_attempts = 5
backoff = { base = 0.1, max = 0.15, jitter = 0 }
)"));
  const std::string id = s.SubmitOk("flaky", "{}");
  json::object doc = s.WaitTerminal(id, 20s);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Int(doc, "attempts"), 5);
  EXPECT_EQ(Str(doc.at("error"), "message"), "failed on purpose");
  const int64_t elapsed = TimeField(doc, "finished_at") - TimeField(doc, "started_at");
  EXPECT_GE(elapsed, 550);
  EXPECT_LT(elapsed, 1450) << "backoff.max was not applied";
}

TEST(IntegrationRetryTest, MaxAttemptsOptionOverridesTheQueue) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.flaky]
handler = "fail"
max_attempts = 3
backoff = { base = 0.01, max = 0.01, jitter = 0 }
)"));
  const std::string once = s.SubmitOk("flaky", R"({"message":"once"})", "?max_attempts=1");
  const std::string five = s.SubmitOk("flaky", R"({"message":"five"})", "?max_attempts=5");
  json::object a = s.WaitTerminal(once);
  json::object b = s.WaitTerminal(five);
  EXPECT_EQ(Str(a, "state"), "failed");
  EXPECT_EQ(Int(a, "attempts"), 1);
  EXPECT_EQ(Int(a, "max_attempts"), 1);
  EXPECT_EQ(Str(b, "state"), "failed");
  EXPECT_EQ(Int(b, "attempts"), 5);
  EXPECT_EQ(Int(b, "max_attempts"), 5);
  EXPECT_EQ(Str(b.at("error"), "message"), "five");
}

TEST(IntegrationRetryTest, NonRetryableFailureIsNotRetried) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.flaky]
handler = "fail"
max_attempts = 4
backoff = { base = 0.01, max = 0.01, jitter = 0 }
)"));
  const std::string id = s.SubmitOk("flaky", R"({"message":"fatal","retryable":false})");
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Int(doc, "attempts"), 1);
  EXPECT_EQ(Int(doc, "max_attempts"), 4);
  EXPECT_EQ(Str(doc.at("error"), "message"), "fatal");
}

TEST(IntegrationTimeoutTest, AttemptsThatOverrunTheTimeoutFailWithTypeTimeout) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
timeout = 0.2
max_attempts = 2
backoff = { base = 0.05, max = 0.05, jitter = 0 }
)"));
  const std::string id = s.SubmitOk("slow", R"({"ms":10000})");
  json::object doc = s.WaitTerminal(id, 20s);
  ExpectValidJobDocument(doc, "timed out");
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Str(doc.at("error"), "type"), "timeout");
  EXPECT_NE(Str(doc.at("error"), "message").find("timed out"), std::string::npos);
  EXPECT_EQ(Int(doc, "attempts"), 2);
  const int64_t elapsed = TimeField(doc, "finished_at") - TimeField(doc, "started_at");
  EXPECT_GE(elapsed, 400) << "two attempts of 200 ms each";
  EXPECT_LT(elapsed, 5000) << "the timeout did not stop the sleep";
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").status, 409);
}

TEST(IntegrationTimeoutTest, TimeoutOptionOverridesTheQueue) {
  ServerProcess s;  // default sleep queue: timeout 30 s
  const std::string id = s.SubmitOk("sleep", R"({"ms":10000})", "?timeout=0.2&max_attempts=1");
  json::object doc = s.WaitTerminal(id, 10s);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Str(doc.at("error"), "type"), "timeout");
  EXPECT_EQ(Int(doc, "attempts"), 1);
  EXPECT_LT(TimeField(doc, "finished_at") - TimeField(doc, "started_at"), 5000);
}

TEST(IntegrationTimeoutTest, JobWithinItsTimeoutSucceeds) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
timeout = 5
)"));
  const std::string id = s.SubmitOk("slow", R"({"ms":50})");
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "succeeded");
  EXPECT_EQ(Int(doc, "attempts"), 1);
}

TEST(IntegrationTimeoutTest, TimedOutSlotIsFreedForTheNextJob) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
timeout = 0.2
max_attempts = 1
)"));
  const std::string stuck = s.SubmitOk("slow", R"({"ms":60000})");
  const std::string next = s.SubmitOk("slow", R"({"ms":10})");
  EXPECT_EQ(Str(s.WaitTerminal(stuck, 10s), "state"), "failed");
  EXPECT_EQ(Str(s.WaitTerminal(next, 10s), "state"), "succeeded");
}

}  // namespace
}  // namespace acceptd::itest
