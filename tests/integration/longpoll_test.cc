// Long-polling the status monitor: GET /v1/jobs/{id}?wait=N and
// Prefer: wait=N return as soon as the job is terminal, or after N seconds
// with the current state.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "harness.h"

namespace acceptd::itest {
namespace {

using Clock = std::chrono::steady_clock;

Millis ElapsedMs(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start);
}

TEST(IntegrationLongPollTest, WaitReturnsAsSoonAsTheJobSucceeds) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":400})");
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res = client.Get("/v1/jobs/" + id + "?wait=10");
  const Millis took = ElapsedMs(start);
  ASSERT_EQ(res.status, 302) << Describe(res);
  EXPECT_EQ(res.Header("Location"), "/v1/jobs/" + id + "/result");
  EXPECT_GE(took, Millis(300)) << "returned before the job could have finished";
  EXPECT_LT(took, Millis(5000)) << "did not wake up when the job finished";
}

TEST(IntegrationLongPollTest, WaitTimesOutWithTheCurrentState) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":10000})");
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res = client.Get("/v1/jobs/" + id + "?wait=0.3");
  const Millis took = ElapsedMs(start);
  ASSERT_EQ(res.status, 202) << Describe(res);
  EXPECT_FALSE(res.Header("Retry-After").empty());
  EXPECT_GE(took, Millis(250));
  EXPECT_LT(took, Millis(3000));
}

TEST(IntegrationLongPollTest, PreferWaitHeaderIsHonoured) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":10000})");
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res =
      client.Send("GET", "/v1/jobs/" + id, {}, {{"Prefer", "respond-async, wait=0.3"}});
  ASSERT_EQ(res.status, 202) << Describe(res);
  EXPECT_GE(ElapsedMs(start), Millis(250));
}

TEST(IntegrationLongPollTest, TerminalJobAnswersAtOnce) {
  ServerProcess s;
  const std::string id = s.SubmitOk("greeting", R"({"name":"x"})");
  s.WaitState(id, "succeeded");
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res = client.Get("/v1/jobs/" + id + "?wait=30");
  EXPECT_EQ(res.status, 302) << Describe(res);
  EXPECT_LT(ElapsedMs(start), Millis(1000));
}

TEST(IntegrationLongPollTest, CancelWakesTheWaiter) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":10000})");
  s.WaitState(id, "running");
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s.Post("/v1/jobs/" + id + "/cancel");
  });
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res = client.Get("/v1/jobs/" + id + "?wait=20");
  canceller.join();
  ASSERT_EQ(res.status, 200) << Describe(res);
  EXPECT_EQ(Str(res.Json(), "state"), "canceled");
  EXPECT_LT(ElapsedMs(start), Millis(5000));
}

TEST(IntegrationLongPollTest, WaitIsCappedByMaxWait) {
  ServerProcess s(ServerOptions().Set("max_wait", "0.3"));
  const std::string id = s.SubmitOk("sleep", R"({"ms":10000})");
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res = client.Get("/v1/jobs/" + id + "?wait=60");
  EXPECT_EQ(res.status, 202) << Describe(res);
  EXPECT_LT(ElapsedMs(start), Millis(3000));
}

TEST(IntegrationLongPollTest, MalformedWaitIs400NamingTheOption) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":10})");
  HttpResponse res = s.Get("/v1/jobs/" + id + "?wait=soon");
  ExpectProblem(res, 400);
  EXPECT_EQ(Str(res.Json(), "option"), "wait");
}

// Many waiters on one job: each is a suspended coroutine, all woken by one commit.
TEST(IntegrationLongPollTest, ManyConcurrentWaitersAreAllWoken) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":500})");
  constexpr int kWaiters = 50;
  std::vector<std::thread> threads;
  std::vector<int> statuses(kWaiters, 0);
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      HttpClient client(s.port());
      statuses[i] = client.Get("/v1/jobs/" + id + "?wait=20").status;
    });
  }
  for (auto& t : threads) t.join();
  for (int st : statuses) EXPECT_EQ(st, 302);
}

// Prefer: wait=N on submit (RFC 7240): a job that finishes in time is answered
// as the status monitor would, with 303 See Other to the result.
TEST(IntegrationPreferWaitSubmitTest, FinishedInTimeIs303ToTheResult) {
  ServerProcess s;
  HttpClient client(s.port());
  HttpResponse res = client.Send("POST", "/v1/queues/greeting/jobs", R"({"name":"dummy user"})",
                                 {{"Content-Type", "application/json"}, {"Prefer", "wait=10"}});
  ASSERT_EQ(res.status, 303) << Describe(res);
  const std::string id = Str(res.Json(), "id");
  EXPECT_EQ(res.Header("Location"), "/v1/jobs/" + id + "/result");
  EXPECT_EQ(res.Header("Preference-Applied"), "wait=10");
  EXPECT_EQ(Str(res.Json(), "state"), "succeeded");
  HttpResponse result = client.Get(res.Header("Location"));
  EXPECT_EQ(result.body, R"({"result":"Hello dummy user...!"})");
}

TEST(IntegrationPreferWaitSubmitTest, FailedInTimeIs200WithTheDocument) {
  ServerProcess s;
  HttpClient client(s.port());
  HttpResponse res =
      client.Send("POST", "/v1/queues/fail/jobs", R"({"message":"no","retryable":false})",
                  {{"Content-Type", "application/json"}, {"Prefer", "wait=10"}});
  ASSERT_EQ(res.status, 200) << Describe(res);
  EXPECT_EQ(Str(res.Json(), "state"), "failed");
  EXPECT_FALSE(res.Header("Preference-Applied").empty());
}

TEST(IntegrationPreferWaitSubmitTest, NotFinishedInTimeIs202AfterTheWait) {
  ServerProcess s;
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res = client.Send("POST", "/v1/queues/sleep/jobs", R"({"ms":10000})",
                                 {{"Content-Type", "application/json"}, {"Prefer", "wait=0.3"}});
  ASSERT_EQ(res.status, 202) << Describe(res);
  EXPECT_FALSE(res.Header("Location").empty());
  EXPECT_TRUE(res.Header("Preference-Applied").empty());
  EXPECT_GE(ElapsedMs(start), Millis(250));
}

TEST(IntegrationPreferWaitSubmitTest, RespondAsyncAnswers202AtOnce) {
  ServerProcess s;
  HttpClient client(s.port());
  const auto start = Clock::now();
  HttpResponse res =
      client.Send("POST", "/v1/queues/sleep/jobs", R"({"ms":2000})",
                  {{"Content-Type", "application/json"}, {"Prefer", "respond-async"}});
  ASSERT_EQ(res.status, 202) << Describe(res);
  EXPECT_LT(ElapsedMs(start), Millis(1500));
}

}  // namespace
}  // namespace acceptd::itest
