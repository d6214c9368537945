// The whole Asynchronous Request-Reply exchange, for every built-in handler:
// submit (202 + Location) -> poll (202 + Retry-After ...) -> 302 to the
// result -> 200 with the result bytes.
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

// Polls a status URL through the documented states until it answers 302.
// Every 202 must carry Retry-After and a queued/running document.
// Returns the final (302) response; `saw_pending` tells whether a 202 was seen.
HttpResponse PollUntilRedirect(const ServerProcess& s, const std::string& status_url,
                               bool* saw_pending = nullptr, bool* saw_running = nullptr) {
  HttpResponse res;
  HttpClient client(s.port());
  bool ok = WaitFor(
      [&] {
        res = client.Get(status_url);
        if (res.status == 202) {
          if (saw_pending) *saw_pending = true;
          EXPECT_FALSE(res.Header("Retry-After").empty()) << Describe(res);
          EXPECT_EQ(res.Header("Content-Type"), "application/json");
          json::value doc = res.Json();
          const std::string state = Str(doc, "state");
          EXPECT_TRUE(state == "queued" || state == "running") << Describe(res);
          if (state == "running" && saw_running) *saw_running = true;
          ExpectValidJobDocument(doc, "pending");
          return false;
        }
        return true;
      },
      20s);
  EXPECT_TRUE(ok) << "no 302 in time; last " << Describe(res);
  return res;
}

TEST(IntegrationPatternTest, GreetingWholeExchange) {
  ServerProcess s;
  HttpResponse sub = s.Submit("greeting", R"({"name":"dummy user"})");
  ASSERT_EQ(sub.status, 202) << Describe(sub);
  EXPECT_EQ(sub.Header("Content-Type"), "application/json");
  json::value doc = sub.Json();
  ExpectValidJobDocument(doc, "submit");
  const std::string id = Str(doc, "id");
  ASSERT_TRUE(IsJobId(id));
  const std::string status_url = "/v1/jobs/" + id;
  EXPECT_EQ(sub.Header("Location"), status_url);
  EXPECT_EQ(Str(doc, "status_url"), status_url);
  EXPECT_EQ(Str(doc, "queue"), "greeting");
  EXPECT_EQ(Str(doc, "state"), "queued");
  EXPECT_EQ(Int(doc, "attempts"), 0);
  EXPECT_EQ(Int(doc, "max_attempts"), 3);
  EXPECT_EQ(Int(doc, "priority"), 0);
  EXPECT_TRUE(IsNull(doc, "progress"));
  EXPECT_TRUE(IsNull(doc, "started_at"));
  EXPECT_TRUE(IsNull(doc, "finished_at"));
  EXPECT_TRUE(IsNull(doc, "expires_at"));
  EXPECT_EQ(Str(doc, "cancel_requested"), "false");
  EXPECT_EQ(sub.Header("Retry-After"), "1");

  HttpResponse done = PollUntilRedirect(s, sub.Header("Location"));
  ASSERT_EQ(done.status, 302) << Describe(done);
  EXPECT_EQ(done.Header("Location"), status_url + "/result");
  json::value final_doc = done.Json();
  ExpectValidJobDocument(final_doc, "succeeded");
  EXPECT_EQ(Str(final_doc, "state"), "succeeded");
  EXPECT_EQ(Str(final_doc, "id"), id);
  EXPECT_EQ(Int(final_doc, "attempts"), 1);
  EXPECT_EQ(Str(final_doc, "result_url"), status_url + "/result");
  EXPECT_LE(TimeField(final_doc, "created_at"), TimeField(final_doc, "started_at"));
  EXPECT_LE(TimeField(final_doc, "started_at"), TimeField(final_doc, "finished_at"));
  // Retention defaults to one day.
  EXPECT_EQ(TimeField(final_doc, "expires_at") - TimeField(final_doc, "finished_at"), 86'400'000);

  HttpResponse result = s.Get(done.Header("Location"));
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.Header("Content-Type"), "application/json");
  EXPECT_EQ(result.body, R"({"result":"Hello dummy user...!"})");

  // The result stays readable.
  EXPECT_EQ(s.Get(status_url + "/result").body, R"({"result":"Hello dummy user...!"})");
}

TEST(IntegrationPatternTest, SleepShowsPendingRunningAndProgressThenSucceeds) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":600})");
  // While it runs: 202 + Retry-After, state running, a start time and progress.
  json::object running = s.WaitState(id, "running", 10s);
  ExpectValidJobDocument(running, "running");
  EXPECT_EQ(Int(running, "attempts"), 1);
  EXPECT_FALSE(IsNull(running, "started_at"));
  ASSERT_TRUE(WaitFor(
      [&] {
        json::object d = s.Job(id);
        return Str(d, "state") != "running" || !IsNull(d, "progress");
      },
      10s));
  json::object with_progress = s.Job(id);
  if (Str(with_progress, "state") == "running") {
    const json::value& p = with_progress.at("progress");
    EXPECT_GT(Int(p, "percent"), 0);
    EXPECT_LE(Int(p, "percent"), 100);
    EXPECT_NE(Str(p, "message").find("of 600 ms"), std::string::npos) << Str(p, "message");
  }

  bool saw_pending = false, saw_running = false;
  HttpResponse done = PollUntilRedirect(s, "/v1/jobs/" + id, &saw_pending, &saw_running);
  ASSERT_EQ(done.status, 302) << Describe(done);
  json::value doc = done.Json();
  ExpectValidJobDocument(doc, "succeeded");
  EXPECT_GE(TimeField(doc, "finished_at") - TimeField(doc, "started_at"), 600);

  HttpResponse result = s.Get(done.Header("Location"));
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.Header("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(result.body), json::parse(R"({"slept_ms":600})")) << result.body;
}

TEST(IntegrationPatternTest, EchoPreservesArbitraryBinaryBytesAndContentType) {
  ServerProcess s;
  std::string payload;
  for (int round = 0; round < 4; ++round) {
    for (int b = 0; b < 256; ++b) payload.push_back(static_cast<char>(b));
  }
  payload += std::string("\0\0\r\n\r\n\xff\xfe", 8);
  const std::string type = "application/x-acceptd-test; charset=binary";
  HttpResponse sub = s.Submit("echo", payload, "", type);
  ASSERT_EQ(sub.status, 202) << Describe(sub);
  HttpResponse done = PollUntilRedirect(s, sub.Header("Location"));
  ASSERT_EQ(done.status, 302) << Describe(done);
  HttpResponse result = s.Get(done.Header("Location"));
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.Header("Content-Type"), type);
  EXPECT_EQ(result.body.size(), payload.size());
  EXPECT_TRUE(result.body == payload) << "echo result differs from the payload";
}

TEST(IntegrationPatternTest, EchoWithoutContentTypeDefaultsToOctetStream) {
  ServerProcess s;
  HttpResponse sub = s.Submit("echo", "plain bytes", "", /*content_type=*/"");
  ASSERT_EQ(sub.status, 202) << Describe(sub);
  const std::string id = Str(sub.Json(), "id");
  ASSERT_EQ(Str(s.WaitTerminal(id), "state"), "succeeded");
  HttpResponse result = s.Get("/v1/jobs/" + id + "/result");
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.Header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(result.body, "plain bytes");
}

TEST(IntegrationPatternTest, EchoOfAnEmptyBodyHasAnEmptyResult) {
  ServerProcess s;
  const std::string id = s.SubmitOk("echo", "", "", "text/plain");
  ASSERT_EQ(Str(s.WaitTerminal(id), "state"), "succeeded");
  HttpResponse result = s.Get("/v1/jobs/" + id + "/result");
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.Header("Content-Type"), "text/plain");
  EXPECT_EQ(result.body, "");
}

TEST(IntegrationPatternTest, FailEndsFailedWithTheMessageAnd200) {
  ServerProcess s;
  const std::string id =
      s.SubmitOk("fail", R"({"message":"no luck","retryable":true})", "?max_attempts=1");
  json::object doc = s.WaitTerminal(id);
  HttpResponse res = s.Get("/v1/jobs/" + id);
  ASSERT_EQ(res.status, 200) << Describe(res);
  EXPECT_FALSE(res.HasHeader("Location"));
  json::value final_doc = res.Json();
  ExpectValidJobDocument(final_doc, "failed");
  EXPECT_EQ(Str(final_doc, "state"), "failed");
  EXPECT_EQ(Str(final_doc.at("error"), "type"), "handler_error");
  EXPECT_EQ(Str(final_doc.at("error"), "message"), "no luck");
  EXPECT_EQ(Int(final_doc, "attempts"), 1);
}

TEST(IntegrationPatternTest, GreetingWithABadPayloadFailsWithoutRetrying) {
  ServerProcess s;
  const std::string id = s.SubmitOk("greeting", R"({"nom":"x"})");
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "failed") << json::serialize(doc);
  EXPECT_EQ(Int(doc, "attempts"), 1) << "invalid payloads are not retryable";
  EXPECT_EQ(Str(doc.at("error"), "type"), "invalid_payload");
}

TEST(IntegrationPatternTest, ManyConcurrentJobsAllComplete) {
  ServerProcess s;
  std::vector<std::string> ids;
  HttpClient client(s.port());
  for (int i = 0; i < 40; ++i) {
    HttpResponse r =
        client.Post("/v1/queues/greeting/jobs", R"({"name":"n)" + std::to_string(i) + R"("})");
    ASSERT_EQ(r.status, 202) << Describe(r);
    ids.push_back(Str(r.Json(), "id"));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(Str(s.WaitTerminal(ids[i]), "state"), "succeeded");
    HttpResponse r = client.Get("/v1/jobs/" + ids[i] + "/result");
    EXPECT_EQ(r.body, R"({"result":"Hello n)" + std::to_string(i) + R"(...!"})");
  }
  EXPECT_EQ(client.connects(), 1);
}

}  // namespace
}  // namespace acceptd::itest
