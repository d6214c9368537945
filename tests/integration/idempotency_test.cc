// Idempotency-Key on submit (IETF httpapi draft): a retried submit returns
// the original job instead of creating a second one.
#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

HttpResponse SubmitWithKey(HttpClient& client, std::string_view queue, std::string body,
                           std::string key) {
  return client.Send("POST", "/v1/queues/" + std::string(queue) + "/jobs", std::move(body),
                     {{"Content-Type", "application/json"}, {"Idempotency-Key", std::move(key)}});
}

TEST(IntegrationIdempotencyTest, SameKeyAndBodyReturnTheOriginalJob) {
  ServerProcess s;
  HttpClient client(s.port());
  HttpResponse first = SubmitWithKey(client, "greeting", R"({"name":"a"})", "order-17");
  ASSERT_EQ(first.status, 202) << Describe(first);
  HttpResponse second = SubmitWithKey(client, "greeting", R"({"name":"a"})", "order-17");
  ASSERT_EQ(second.status, 202) << Describe(second);
  EXPECT_EQ(second.Header("Location"), first.Header("Location"));
  EXPECT_EQ(Str(second.Json(), "id"), Str(first.Json(), "id"));
  EXPECT_EQ(second.Header("Idempotent-Replayed"), "true");
  EXPECT_TRUE(first.Header("Idempotent-Replayed").empty());
  json::value list = s.Get("/v1/jobs?queue=greeting").Json();
  EXPECT_EQ(list.at("jobs").as_array().size(), 1u) << "only one job was created";
}

TEST(IntegrationIdempotencyTest, SameKeyWithADifferentBodyIs422) {
  ServerProcess s;
  HttpClient client(s.port());
  ASSERT_EQ(SubmitWithKey(client, "greeting", R"({"name":"a"})", "k").status, 202);
  HttpResponse res = SubmitWithKey(client, "greeting", R"({"name":"b"})", "k");
  ExpectProblem(res, 422);
  EXPECT_EQ(Str(res.Json(), "code"), "idempotency_mismatch");
}

TEST(IntegrationIdempotencyTest, KeysAreDurableAcrossARestart) {
  ServerProcess s;
  std::string first_location;
  {
    HttpClient client(s.port());
    HttpResponse first = SubmitWithKey(client, "echo", R"({"x":1})", "restart-key");
    ASSERT_EQ(first.status, 202) << Describe(first);
    first_location = first.Header("Location");
  }
  ASSERT_EQ(s.Terminate(), 0);
  s.Restart();
  HttpClient client(s.port());
  HttpResponse again = SubmitWithKey(client, "echo", R"({"x":1})", "restart-key");
  ASSERT_EQ(again.status, 202) << Describe(again);
  EXPECT_EQ(again.Header("Location"), first_location);
}

TEST(IntegrationIdempotencyTest, KeysArePerQueue) {
  ServerProcess s;
  HttpClient client(s.port());
  HttpResponse a = SubmitWithKey(client, "echo", "{}", "shared");
  HttpResponse b = SubmitWithKey(client, "greeting", R"({"name":"x"})", "shared");
  ASSERT_EQ(a.status, 202);
  ASSERT_EQ(b.status, 202);
  EXPECT_NE(Str(a.Json(), "id"), Str(b.Json(), "id"));
}

TEST(IntegrationIdempotencyTest, MalformedKeyIs400) {
  ServerProcess s;
  HttpClient client(s.port());
  ExpectProblem(SubmitWithKey(client, "echo", "{}", std::string(256, 'k')), 400);
  ExpectProblem(SubmitWithKey(client, "echo", "{}", "has space"), 400);
  EXPECT_EQ(SubmitWithKey(client, "echo", "{}", "\"quoted-ok\"").status, 202);
}

}  // namespace
}  // namespace acceptd::itest
