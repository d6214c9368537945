// handler = "http" without the engine: the factory's checks, Retry-After
// parsing, and one attempt's outcome per status class against a local
// FakeServer (the end-to-end path is tests/integration/http_handler_test.cc).
#include "workers/http/http_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../client/fake_server.h"

namespace acceptd {
namespace {

using namespace std::chrono_literals;
using testing::FakeServer;

QueueConfig HttpQueue(std::string url) {
  QueueConfig q;
  q.name = "render";
  q.handler = "http";
  q.http.url = std::move(url);
  return q;
}

class TestContext final : public JobContext {
 public:
  const JobId& job_id() const override { return id_; }
  int attempt() const override { return 2; }
  bool cancelled() const override { return cancelled_; }
  bool WaitFor(std::chrono::milliseconds) override { return !cancelled_; }
  void ReportProgress(int, std::string) override {}
  std::atomic<bool> cancelled_{false};

 private:
  JobId id_ = JobId::Random();
};

TEST(HttpHandlerFactoryTest, AMalformedUrlIsAnErrorNamingTheKey) {
  for (const char* url : {"ftp://example.com/", "not a url", "http://user@example.com/", ""}) {
    auto h = MakeHttpHandler(HttpQueue(url));
    ASSERT_FALSE(h) << url;
    EXPECT_EQ(h.error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(h.error().detail.starts_with("config key 'queues.render.url': "))
        << h.error().detail;
  }
  EXPECT_TRUE(MakeHttpHandler(HttpQueue("https://10.0.0.5:9000/render?x=1")));
}

TEST(HttpHandlerFactoryTest, HeadersAcceptdSetsOrThatAreMalformedAreRefused) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"Idempotency-Key", "x"},
                                                        {"content-length", "1"},
                                                        {"Bad Name", "x"},
                                                        {"X-Split", "a\r\nInjected: 1"}}) {
    QueueConfig q = HttpQueue("http://127.0.0.1:1/");
    q.http.headers[name] = value;
    auto h = MakeHttpHandler(q);
    ASSERT_FALSE(h) << name;
    EXPECT_TRUE(h.error().detail.starts_with("config key 'queues.render.headers." + name + "': "))
        << h.error().detail;
  }
}

TEST(HttpHandlerRetryAfterTest, SecondsAndHttpDates) {
  const UnixMillis now = 784'111'777'000;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(ParseRetryAfter("1", now), 1'000);
  EXPECT_EQ(ParseRetryAfter(" 120 ", now), 120'000);
  EXPECT_EQ(ParseRetryAfter("0", now), 0);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", now), 10'000);
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:47 GMT", now), 10'000);
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:47 1994", now), 10'000);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), 0) << "a past date: now";
  EXPECT_GT(ParseRetryAfter("99999999999999999999", now).value_or(0), 86'400'000);
  for (const char* bad : {"", "-1", "1.5", "soon", "Sun, 06 Nov 1994 08:49:47"}) {
    EXPECT_EQ(ParseRetryAfter(bad, now), std::nullopt) << bad;
  }
}

HandlerOutcome RunOnce(int status, FakeServer::Headers headers, std::string body,
                       size_t max = 1024) {
  FakeServer server([&](const FakeServer::Request&) {
    return FakeServer::Reply{status, headers, body};
  });
  QueueConfig q = HttpQueue(server.url() + "/render");
  q.http.max_result_bytes = max;
  auto h = MakeHttpHandler(q);
  EXPECT_TRUE(h);
  TestContext ctx;
  return (*h)->Run("{}", "application/json", ctx);
}

TEST(HttpHandlerOutcomeTest, EachStatusClassHasItsOutcome) {
  auto ok = RunOnce(200, {{"Content-Type", "image/png"}}, "PNG");
  ASSERT_TRUE(std::holds_alternative<HandlerSuccess>(ok));
  EXPECT_EQ(std::get<HandlerSuccess>(ok).body, "PNG");
  EXPECT_EQ(std::get<HandlerSuccess>(ok).content_type, "image/png");

  auto untyped = RunOnce(204, {}, "");
  ASSERT_TRUE(std::holds_alternative<HandlerSuccess>(untyped));
  EXPECT_EQ(std::get<HandlerSuccess>(untyped).content_type, "application/octet-stream");

  for (int status : {408, 429, 500, 503}) {
    auto f = RunOnce(status, {{"Retry-After", "7"}}, "busy");
    ASSERT_TRUE(std::holds_alternative<HandlerFailure>(f)) << status;
    const HandlerFailure& failure = std::get<HandlerFailure>(f);
    EXPECT_TRUE(failure.retryable) << status;
    EXPECT_EQ(failure.retry_after, 7'000) << status;
    EXPECT_EQ(failure.type, "backend_status");
  }
  for (int status : {400, 404, 409, 302}) {
    auto f = RunOnce(status, {{"Retry-After", "7"}}, "no such thing\n\x01");
    ASSERT_TRUE(std::holds_alternative<HandlerFailure>(f)) << status;
    const HandlerFailure& failure = std::get<HandlerFailure>(f);
    EXPECT_FALSE(failure.retryable) << status;
    EXPECT_EQ(failure.retry_after, std::nullopt);
    EXPECT_TRUE(failure.message.starts_with("the backend answered " + std::to_string(status)))
        << failure.message;
    EXPECT_TRUE(failure.message.ends_with(": no such thing  ")) << failure.message;
  }

  auto big = RunOnce(200, {}, std::string(2000, 'x'), 1000);
  ASSERT_TRUE(std::holds_alternative<HandlerFailure>(big));
  EXPECT_FALSE(std::get<HandlerFailure>(big).retryable);
  EXPECT_EQ(std::get<HandlerFailure>(big).type, "result_too_large");
  EXPECT_EQ(std::get<HandlerFailure>(big).message,
            "the backend's response is larger than max_result_bytes (1000 bytes)");
}

TEST(HttpHandlerOutcomeTest, AnErrorBodyIsKeptBoundedAndValidUtf8) {
  auto f = RunOnce(404, {}, std::string(600, 'a') + "\xff");
  const std::string& m = std::get<HandlerFailure>(f).message;
  EXPECT_EQ(m, "the backend answered 404 Not Found: " + std::string(512, 'a') + "...");
  auto bad = RunOnce(404, {}, "caf\xc3\xa9 \xff\xfe!");
  EXPECT_EQ(std::get<HandlerFailure>(bad).message,
            "the backend answered 404 Not Found: caf\xc3\xa9 ?"
            "?!");
}

TEST(HttpHandlerOutcomeTest, NoBackendIsARetryableFailure) {
  auto h = MakeHttpHandler(HttpQueue("http://127.0.0.1:1/"));  // nothing listens on port 1
  ASSERT_TRUE(h);
  TestContext ctx;
  auto f = (*h)->Run("{}", "application/json", ctx);
  ASSERT_TRUE(std::holds_alternative<HandlerFailure>(f));
  EXPECT_TRUE(std::get<HandlerFailure>(f).retryable);
  EXPECT_EQ(std::get<HandlerFailure>(f).type, "backend_unreachable");
}

TEST(HttpHandlerOutcomeTest, ACancelledAttemptAbortsTheRequestPromptly) {
  std::atomic<bool> release{false};
  FakeServer server([&](const FakeServer::Request&) {
    for (int i = 0; i < 1000 && !release; ++i) std::this_thread::sleep_for(10ms);
    return FakeServer::Reply{200, {}, "late"};
  });
  auto h = MakeHttpHandler(HttpQueue(server.url() + "/"));
  ASSERT_TRUE(h);
  TestContext ctx;
  std::thread canceller([&] {
    for (int i = 0; i < 500 && server.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
    ctx.cancelled_ = true;
  });
  const auto start = std::chrono::steady_clock::now();
  auto f = (*h)->Run("{}", "application/json", ctx);
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  release = true;
  ASSERT_TRUE(std::holds_alternative<HandlerFailure>(f));
  EXPECT_LT(took, 3s);
}

}  // namespace
}  // namespace acceptd
