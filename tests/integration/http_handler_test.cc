// handler = "http" end to end: the real binary forwards each attempt to a
// local test backend (FakeServer, one connection at a time, loopback) and
// maps the backend's answer to the job's outcome (docs/http_handler.md).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include <boost/json/serialize.hpp>

#include "../client/fake_server.h"
#include "harness.h"

namespace acceptd::itest {
namespace {

using testing::FakeServer;

// One `render` queue forwarding to `url`, one attempt at a time (the
// FakeServer serves one connection at a time); `extra`: more keys.
std::string HttpQueue(const std::string& url, const std::string& extra = "",
                      const std::string& timeout = "5",
                      const std::string& backoff = "{ base = 0.05, max = 30, jitter = 0 }") {
  return "[queues.render]\nhandler = \"http\"\nurl = \"" + url +
         "\"\nconcurrency = 1\nmax_attempts = 3\ntimeout = " + timeout + "\nbackoff = " + backoff +
         "\n" + extra;
}

std::string HeaderOf(const FakeServer::Request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        })) {
      return v;
    }
  }
  return "<absent>";
}

// A gate the backend's thread waits at, with a deadline.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait(Millis timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(IntegrationHttpHandlerTest, TheBackendsAnswerBecomesTheResult202Then302) {
  FakeServer backend([](const FakeServer::Request& r) {
    return FakeServer::Reply{200, {{"Content-Type", "text/x-rendered"}}, "rendered:" + r.body};
  });
  ServerProcess s(ServerOptions().WithQueues(HttpQueue(
      backend.url() + "/render?v=2", "method = \"PUT\"\nheaders = { X-Api-Token = \"t0k\" }\n")));
  HttpResponse submitted = s.Submit("render", "<scene/>", "", "application/xml");
  ASSERT_EQ(submitted.status, 202) << Describe(submitted);
  const std::string id = Str(submitted.Json(), "id");
  json::object doc = s.WaitTerminal(id);
  ASSERT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
  HttpResponse status = s.Get("/v1/jobs/" + id);
  EXPECT_EQ(status.status, 302);
  EXPECT_EQ(status.Header("Location"), "/v1/jobs/" + id + "/result");
  HttpResponse result = s.Get("/v1/jobs/" + id + "/result");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "rendered:<scene/>");
  EXPECT_EQ(result.Header("Content-Type"), "text/x-rendered");

  const std::vector<FakeServer::Request> requests = backend.requests();
  ASSERT_EQ(requests.size(), 1u);
  const FakeServer::Request& r = requests[0];
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.target, "/render?v=2");
  EXPECT_EQ(r.body, "<scene/>");
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/xml");
  EXPECT_EQ(HeaderOf(r, "X-Api-Token"), "t0k");
  EXPECT_EQ(HeaderOf(r, "Idempotency-Key"), id);
  EXPECT_EQ(HeaderOf(r, "Acceptd-Job-Id"), id);
  EXPECT_EQ(HeaderOf(r, "Acceptd-Attempt"), "1");
}

TEST(IntegrationHttpHandlerTest, A500IsRetriedWithTheSameIdempotencyKeyAndCanSucceed) {
  std::atomic<int> calls{0};
  FakeServer backend([&](const FakeServer::Request&) {
    if (++calls == 1) return FakeServer::Reply{500, {}, "oops"};
    return FakeServer::Reply{200, {}, "fine"};  // no Content-Type
  });
  ServerProcess s(ServerOptions().WithQueues(HttpQueue(backend.url() + "/")));
  const std::string id = s.SubmitOk("render", R"({"n":1})");
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
  EXPECT_EQ(Int(doc, "attempts"), 2);
  HttpResponse result = s.Get("/v1/jobs/" + id + "/result");
  EXPECT_EQ(result.body, "fine");
  EXPECT_EQ(result.Header("Content-Type"), "application/octet-stream");
  auto requests = backend.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(HeaderOf(requests[0], "Idempotency-Key"), id);
  EXPECT_EQ(HeaderOf(requests[1], "Idempotency-Key"), id);
  EXPECT_EQ(HeaderOf(requests[0], "Acceptd-Attempt"), "1");
  EXPECT_EQ(HeaderOf(requests[1], "Acceptd-Attempt"), "2");
  EXPECT_EQ(backend.connections(), 1) << "both attempts on one kept-alive connection";
}

TEST(IntegrationHttpHandlerTest, A429RetryAfterSetsTheNextAttemptInsteadOfTheBackoff) {
  std::atomic<int> calls{0};
  FakeServer backend([&](const FakeServer::Request&) {
    if (++calls == 1) return FakeServer::Reply{429, {{"Retry-After", "1"}}, "slow down"};
    return FakeServer::Reply{200, {{"Content-Type", "text/plain"}}, "done"};
  });
  // A 20 s backoff: a retry within ~1 s can only come from Retry-After.
  ServerProcess s(ServerOptions().WithQueues(
      HttpQueue(backend.url() + "/", "", "5", "{ base = 20, max = 60, jitter = 0 }")));
  const std::string id = s.SubmitOk("render", "{}");
  json::object between;
  ASSERT_TRUE(WaitFor(
      [&] {
        between = s.Job(id);
        return Int(between, "attempts") == 1 && Str(between, "state") == "queued";
      },
      10s))
      << json::serialize(between);
  ASSERT_TRUE(Has(between, "run_at")) << json::serialize(between);
  const int64_t delay = TimeField(between, "run_at") - TimeField(between, "updated_at");
  EXPECT_GE(delay, 900) << json::serialize(between);
  EXPECT_LE(delay, 1100) << json::serialize(between);
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
  EXPECT_EQ(Int(doc, "attempts"), 2);
}

TEST(IntegrationHttpHandlerTest, A404FailsAtOnceWithTheBackendsAnswerInTheError) {
  FakeServer backend([](const FakeServer::Request&) {
    return FakeServer::Reply{404, {{"Content-Type", "text/plain"}}, "no such template: t1"};
  });
  ServerProcess s(ServerOptions().WithQueues(HttpQueue(backend.url() + "/")));
  const std::string id = s.SubmitOk("render", "{}");
  json::object doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Int(doc, "attempts"), 1) << "not retried";
  EXPECT_EQ(Str(doc.at("error"), "type"), "backend_status");
  EXPECT_EQ(Str(doc.at("error"), "message"),
            "the backend answered 404 Not Found: no such template: t1");
  EXPECT_EQ(backend.requests().size(), 1u);
}

TEST(IntegrationHttpHandlerTest, ABackendThatNeverAnswersTimesOutAndIsRetried) {
  Gate gate;
  std::atomic<int> calls{0};
  FakeServer backend([&](const FakeServer::Request&) {
    if (++calls == 1) gate.Wait(10s);  // the first attempt gets no answer
    return FakeServer::Reply{200, {}, "second time lucky"};
  });
  ServerProcess s(ServerOptions().WithQueues(HttpQueue(backend.url() + "/", "", "1")));
  const std::string id = s.SubmitOk("render", "{}");
  // The retry has begun: the first attempt ended, and only its timeout could
  // end it (the backend is still holding it).
  json::object doc;
  ASSERT_TRUE(WaitFor([&] { return Int(doc = s.Job(id), "attempts") >= 2; }, 10s))
      << json::serialize(doc);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(s.Stderr().find("attempt=1 timed out after 1000 ms"), std::string::npos) << s.Stderr();
  gate.Open();  // the backend moves on to the retry's connection
  doc = s.WaitTerminal(id);
  EXPECT_EQ(Str(doc, "state"), "succeeded") << json::serialize(doc);
  EXPECT_GE(Int(doc, "attempts"), 2);
  EXPECT_GE(backend.connections(), 2) << "the timed-out connection is not reused";
}

TEST(IntegrationHttpHandlerTest, AMalformedUrlIsAStartUpErrorNamingTheKey) {
  TempDir dir;
  dir.Write("acceptd.toml", "[queues.render]\nhandler = \"http\"\nurl = \"ftp://x/\"\n");
  ProcessResult r = RunAcceptd({"serve", "--config", dir.File("acceptd.toml"), "--listen",
                                "127.0.0.1:0", "--store", "sqlite:" + dir.File("x.db")},
                               dir.path(), 10s);
  EXPECT_FALSE(r.timed_out) << "acceptd started with a bad config";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("config key 'queues.render.url'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace acceptd::itest
