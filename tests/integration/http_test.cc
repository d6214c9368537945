// HTTP/1.0 and HTTP/1.1 connection handling: versions, keep-alive,
// pipelining, Connection: close, Expect: 100-continue, health endpoints.
#include <gtest/gtest.h>
#include <boost/beast/core/string.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationHttpTest, HealthAndReadiness) {
  ServerProcess s;
  HttpResponse h = s.Get("/healthz");
  ASSERT_EQ(h.status, 200) << Describe(h);
  EXPECT_EQ(h.Header("Content-Type"), "application/json");
  EXPECT_EQ(Str(h.Json(), "status"), "ok");
  HttpResponse r = s.Get("/readyz");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(Str(r.Json(), "status"), "ready");
}

TEST(IntegrationHttpTest, Http10RequestGetsAnHttp10ResponseAndTheConnectionCloses) {
  ServerProcess s;
  RawConnection c(s.port());
  c.Send("GET /healthz HTTP/1.0\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->version, 10u);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Str(r->Json(), "status"), "ok");
  EXPECT_TRUE(c.WaitClosed()) << "HTTP/1.0 without keep-alive must close";
}

TEST(IntegrationHttpTest, Http10CanSubmitAndPoll) {
  ServerProcess s;
  const std::string body = R"({"name":"old client"})";
  std::string id;
  {
    RawConnection c(s.port());
    c.Send(
        "POST /v1/queues/greeting/jobs HTTP/1.0\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->version, 10u);
    ASSERT_EQ(r->status, 202) << Describe(*r);
    id = Str(r->Json(), "id");
    EXPECT_EQ(r->Header("Location"), "/v1/jobs/" + id);
    EXPECT_TRUE(c.WaitClosed());
  }
  s.WaitState(id, "succeeded");
  RawConnection c(s.port());
  c.Send("GET /v1/jobs/" + id + "/result HTTP/1.0\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->version, 10u);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"result":"Hello old client...!"})");
}

TEST(IntegrationHttpTest, Http10KeepAliveIsHonoured) {
  ServerProcess s;
  RawConnection c(s.port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << "request " << i;
    EXPECT_EQ(r->version, 10u);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(boost::beast::iequals(r->Header("Connection"), "keep-alive"))
        << "Connection: " << r->Header("Connection");
  }
}

TEST(IntegrationHttpTest, Http11KeepAliveServesManyRequestsOnOneConnection) {
  ServerProcess s;
  HttpClient c(s.port());
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    HttpResponse r = c.Post("/v1/queues/echo/jobs", "ping " + std::to_string(i), "text/plain");
    ASSERT_EQ(r.status, 202) << Describe(r);
    EXPECT_EQ(r.version, 11u);
    ids.push_back(Str(r.Json(), "id"));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(WaitFor([&] { return c.Get("/v1/jobs/" + ids[i]).status == 302; }, 10s));
    HttpResponse r = c.Get("/v1/jobs/" + ids[i] + "/result");
    EXPECT_EQ(r.body, "ping " + std::to_string(i));
  }
  // Errors keep the connection open too.
  EXPECT_EQ(c.Get("/nope").status, 404);
  EXPECT_EQ(c.Send("PUT", "/v1/queues").status, 405);
  EXPECT_EQ(c.Get("/healthz").status, 200);
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.connects(), 1) << "every request should reuse the first connection";
}

TEST(IntegrationHttpTest, PipelinedRequestsAreAnsweredInOrder) {
  ServerProcess s;
  const std::string id = s.SubmitOk("echo", "pipelined");
  s.WaitState(id, "succeeded");
  RawConnection c(s.port());
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /v1/jobs/" +
             id +
             "/result HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto a = c.ReadResponse();
  auto b = c.ReadResponse();
  auto d = c.ReadResponse();
  auto e = c.ReadResponse();
  ASSERT_TRUE(a && b && d && e);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(Str(a->Json(), "status"), "ok");
  EXPECT_EQ(b->status, 200);
  EXPECT_EQ(b->body, "pipelined");
  EXPECT_EQ(d->status, 404);
  EXPECT_EQ(e->status, 200);
  EXPECT_EQ(Str(e->Json(), "status"), "ready");
  EXPECT_TRUE(c.WaitClosed());
}

TEST(IntegrationHttpTest, ConnectionCloseIsHonoured) {
  ServerProcess s;
  RawConnection c(s.port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(boost::beast::iequals(r->Header("Connection"), "close"));
  EXPECT_TRUE(c.WaitClosed());
}

TEST(IntegrationHttpTest, ExpectContinueGetsA100ThenTheAnswer) {
  ServerProcess s;
  RawConnection c(s.port());
  const std::string body = R"({"name":"patient"})";
  c.Send(
      "POST /v1/queues/greeting/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  auto cont = c.ReadResponse();
  ASSERT_TRUE(cont.has_value());
  EXPECT_EQ(cont->status, 100);
  c.Send(body);
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 202) << Describe(*r);
  const std::string id = Str(r->Json(), "id");
  s.WaitState(id, "succeeded");
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, R"({"result":"Hello patient...!"})");
}

TEST(IntegrationHttpTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  ServerProcess s(ServerOptions().Set("idle_timeout", "0.3"));
  RawConnection c(s.port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c.ReadResponse().has_value());
  const auto start = SteadyClock::now();
  EXPECT_TRUE(c.WaitClosed(10s));
  EXPECT_GE(SteadyClock::now() - start, 250ms);
}

TEST(IntegrationHttpTest, SlowRequestIsCutOffAfterRequestTimeout) {
  ServerProcess s(ServerOptions().Set("request_timeout", "0.3"));
  RawConnection c(s.port());
  // Half a request, then silence.
  c.Send("POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  auto r = c.ReadResponse(10s);
  if (r) ExpectProblem(*r, 408);
  EXPECT_TRUE(c.WaitClosed(10s)) << "a stalled request must not hold the connection forever";
  EXPECT_EQ(s.Get("/v1/jobs").Json().at("jobs").as_array().size(), 0u);
}

}  // namespace
}  // namespace acceptd::itest
