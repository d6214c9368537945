// The original demo producer's routes: /v1/submit-job and /v1/pool-job, with
// the exact request shapes its consumer sends.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "harness.h"
#include "webhook_receiver.h"

namespace acceptd::itest {
namespace {

constexpr char kLoopbackAllowed[] = "[callbacks]\nallow = [\"127.0.0.0/8\"]\n";

std::string SubmitBody(const WebhookReceiver& receiver) {
  return R"({"name": "dummy user", "service_name": "greeting", "redirect_location": {"url": ")" +
         receiver.Url("/jobs-result") + R"(", "method": "POST"}})";
}

std::string PoolBody(const std::string& token, std::string_view key = "massage_token") {
  return R"({"service_name": "greeting", ")" + std::string(key) + R"(": ")" + token + R"("})";
}

TEST(IntegrationCompatTest, SubmitThenPoolDeliversTheResultToTheRedirectLocation) {
  WebhookReceiver receiver({200});
  ServerProcess s(ServerOptions().WithQueues(kLoopbackAllowed));
  HttpResponse submitted = s.Post("/v1/submit-job", SubmitBody(receiver));
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  const std::string token = Str(submitted.Json(), "message_token");
  ASSERT_TRUE(IsJobId(token)) << submitted.body;

  // Pending until the greeting ran; then the job data goes to the consumer.
  HttpResponse pooled;
  ASSERT_TRUE(WaitFor(
      [&] {
        pooled = s.Post("/v1/pool-job", PoolBody(token));
        return pooled.status != 202;
      },
      10s));
  ASSERT_EQ(pooled.status, 302) << pooled.body;
  ASSERT_EQ(receiver.requests().size(), 1u);
  const ReceivedRequest r = receiver.requests().at(0);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/jobs-result");
  json::value data = boost::json::parse(r.body);
  EXPECT_EQ(Str(data, "result"), "Hello dummy user...!");
  EXPECT_EQ(Str(data, "message_token"), token);
  EXPECT_EQ(Str(data, "name"), "dummy user");
  EXPECT_EQ(Str(data, "service_name"), "greeting");
  EXPECT_EQ(Str(data, "status"), "complete");
  EXPECT_EQ(Str(pooled.Json(), "result"), "Hello dummy user...!");

  // The job also is an ordinary acceptd job.
  EXPECT_EQ(Str(s.Job(token), "queue"), "greeting");
  // The correctly spelled key works too.
  EXPECT_EQ(s.Post("/v1/pool-job", PoolBody(token, "message_token")).status, 302);
}

TEST(IntegrationCompatTest, PoolAnswers202WhilePendingAnd404ForUnknownTokens) {
  WebhookReceiver receiver({200});
  ServerProcess s(ServerOptions().WithQueues(std::string(kLoopbackAllowed) +
                                             "[compat]\nqueue = \"slow\"\n"
                                             "[queues.slow]\nhandler = \"sleep\"\n"));
  HttpResponse submitted = s.Post("/v1/submit-job", R"({"ms": 60000, "service_name": "greeting"})");
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  const std::string token = Str(submitted.Json(), "message_token");
  EXPECT_EQ(Str(s.Job(token), "queue"), "slow") << "the configured queue";
  EXPECT_EQ(s.Post("/v1/pool-job", PoolBody(token)).status, 202);
  EXPECT_EQ(s.Post("/v1/pool-job", PoolBody(std::string(32, '0'))).status, 404);
  EXPECT_EQ(s.Post("/v1/pool-job", PoolBody("not-a-token")).status, 404);
  EXPECT_EQ(s.Post("/v1/pool-job", R"({"service_name": "greeting"})").status, 400);
  EXPECT_EQ(s.Post("/v1/pool-job", "not json").status, 400);
}

TEST(IntegrationCompatTest, AFailedRedirectKeepsTheJobPollable) {
  WebhookReceiver receiver({500, 200});
  ServerProcess s(ServerOptions().WithQueues(kLoopbackAllowed));
  const std::string token =
      Str(s.Post("/v1/submit-job", SubmitBody(receiver)).Json(), "message_token");
  s.WaitState(token, "succeeded");
  HttpResponse first = s.Post("/v1/pool-job", PoolBody(token));
  EXPECT_EQ(first.status, 202) << "not delivered: the client should ask again";
  HttpResponse second = s.Post("/v1/pool-job", PoolBody(token));
  EXPECT_EQ(second.status, 302) << second.body;
  EXPECT_EQ(receiver.requests().size(), 2u);
}

TEST(IntegrationCompatTest, RedirectLocationPassesTheSsrfGuard) {
  ServerProcess s;  // no allow-list: loopback is refused
  HttpResponse res = s.Post(
      "/v1/submit-job",
      R"({"name": "x", "redirect_location": {"url": "http://127.0.0.1:8001/jobs-result", "method": "POST"}})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("loopback"), std::string::npos) << res.body;
  res = s.Post("/v1/submit-job",
               R"({"name": "x", "redirect_location": {"url": "http://169.254.169.254/"}})");
  EXPECT_EQ(res.status, 400) << res.body;
  res = s.Post(
      "/v1/submit-job",
      R"({"name": "x", "redirect_location": {"url": "http://93.184.216.34/", "method": "GET"}})");
  EXPECT_EQ(res.status, 400) << "only POST redirects";
  // Read by the same parser as callbacks (issue 8: this was taken as host
  // 127.0.0.2 with the path "%40127.0.0.1:8001/x").
  res = s.Post(
      "/v1/submit-job",
      R"({"name": "x", "redirect_location": {"url": "http://127.0.0.2%40127.0.0.1:8001/x"}})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("percent-encoded"), std::string::npos) << res.body;
  EXPECT_EQ(Int(s.Queue("greeting"), "depth"), 0);
}

TEST(IntegrationCompatTest, FailedJobsAreAConflictNotAResult) {
  ServerProcess s(
      ServerOptions().WithQueues("[compat]\nqueue = \"f\"\n"
                                 "[queues.f]\nhandler = \"fail\"\nmax_attempts = 1\n"));
  const std::string token =
      Str(s.Post("/v1/submit-job", R"({"message": "boom"})").Json(), "message_token");
  s.WaitState(token, "failed");
  HttpResponse res = s.Post("/v1/pool-job", PoolBody(token));
  EXPECT_EQ(res.status, 409) << res.body;
  EXPECT_EQ(Str(res.Json(), "state"), "failed");
}

}  // namespace
}  // namespace acceptd::itest
