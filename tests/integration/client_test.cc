// The C++ client library (src/client) against a real `acceptd serve`, and
// against a scripted server that follows the pattern without being acceptd
// (relative and absolute Locations, Retry-After as seconds or an HTTP-date,
// no long-poll support).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../client/fake_server.h"
#include "client/client.h"
#include "harness.h"

namespace acceptd::itest {
namespace {

using client::Client;
using client::ClientOptions;
using client::JobStatus;
using testing::FakeServer;

ClientOptions OptionsFor(const std::string& base_url) {
  ClientOptions o;
  o.base_url = base_url;
  o.timeout = 10s;
  return o;
}

std::string BaseUrl(const ServerProcess& s) {
  return "http://127.0.0.1:" + std::to_string(s.port());
}

// Records the sleeps Wait asks for without taking them.
struct SleepRecorder {
  std::mutex mu;
  std::vector<Millis> sleeps;
  std::function<void(Millis)> Hook() {
    return [this](Millis d) {
      std::lock_guard lock(mu);
      sleeps.push_back(d);
    };
  }
};

client::WaitOptions WithDeadline(Millis timeout) {
  client::WaitOptions w;
  w.deadline = SteadyClock::now() + timeout;
  return w;
}

TEST(ClientLibraryTest, SubmitWaitAndFetchTheGreeting) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto sub = c.Submit("greeting", R"({"name":"dummy user"})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  EXPECT_EQ(sub->http_status, 202);
  EXPECT_TRUE(sub->pending());
  EXPECT_EQ(sub->state, "queued");
  ASSERT_TRUE(IsJobId(sub->id)) << sub->body;
  EXPECT_EQ(sub->status_url, BaseUrl(s) + "/v1/jobs/" + sub->id);
  EXPECT_EQ(sub->retry_after, Millis(1000));
  EXPECT_FALSE(sub->replayed);

  auto done = c.Wait(sub->status_url, WithDeadline(20s));
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->http_status, 302);
  EXPECT_TRUE(done->succeeded());
  EXPECT_EQ(done->state, "succeeded");
  EXPECT_EQ(done->id, sub->id);
  EXPECT_EQ(done->result_url, BaseUrl(s) + "/v1/jobs/" + sub->id + "/result");

  auto result = c.FetchResult(done->result_url);
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->body, R"({"result":"Hello dummy user...!"})");
  EXPECT_EQ(result->content_type, "application/json");

  // A bare id means acceptd's routes under base_url.
  auto by_id = c.FetchResult(sub->id);
  ASSERT_TRUE(by_id) << by_id.error().detail;
  EXPECT_EQ(by_id->body, result->body);
  auto status = c.Status(sub->id);
  ASSERT_TRUE(status) << status.error().detail;
  EXPECT_EQ(status->http_status, 302);
  EXPECT_EQ(status->result_url, done->result_url);
}

TEST(ClientLibraryTest, FailedJobEndsTheWaitWithItsError) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto sub = c.Submit("fail", R"({"message":"boom","retryable":false})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  auto done = c.Wait(sub->status_url, WithDeadline(20s));
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->http_status, 200);
  EXPECT_TRUE(done->terminal());
  EXPECT_FALSE(done->succeeded());
  EXPECT_EQ(done->state, "failed");
  EXPECT_EQ(done->document.at("error").at("message").as_string(), "boom");
  EXPECT_TRUE(done->result_url.empty());

  auto result = c.FetchResult(sub->id);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kConflict);
}

TEST(ClientLibraryTest, CancelEndsTheWaitAndASecondCancelConflicts) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto sub = c.Submit("sleep", R"({"ms":20000})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  auto canceled = c.Cancel(sub->id);
  ASSERT_TRUE(canceled) << canceled.error().detail;
  EXPECT_TRUE(canceled->http_status == 200 || canceled->http_status == 202)
      << canceled->http_status;
  EXPECT_EQ(canceled->id, sub->id);

  const auto start = SteadyClock::now();
  auto done = c.Wait(sub->status_url, WithDeadline(20s));
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->state, "canceled");
  EXPECT_LT(SteadyClock::now() - start, 10s);

  auto again = c.Cancel(sub->status_url);  // a status URL works as well as an id
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_NE(again.error().detail.find("Conflict (409)"), std::string::npos) << again.error().detail;
}

TEST(ClientLibraryTest, IdempotencyKeyReplaysTheFirstJob) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  client::SubmitOptions so;
  so.idempotency_key = "order-42";
  auto first = c.Submit("greeting", R"({"name":"a"})", "application/json", so);
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_FALSE(first->replayed);
  auto second = c.Submit("greeting", R"({"name":"a"})", "application/json", so);
  ASSERT_TRUE(second) << second.error().detail;
  EXPECT_TRUE(second->replayed);
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(second->status_url, first->status_url);

  auto other = c.Submit("greeting", R"({"name":"b"})", "application/json", so);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::kIdempotencyMismatch);
}

TEST(ClientLibraryTest, SubmitOptionsReachTheServer) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  client::SubmitOptions so;
  so.max_attempts = 7;
  so.priority = 5;
  so.delay_seconds = 30;
  auto sub = c.Submit("greeting", R"({"name":"a"})", "application/json", so);
  ASSERT_TRUE(sub) << sub.error().detail;
  EXPECT_EQ(Int(sub->document, "max_attempts"), 7);
  EXPECT_EQ(Int(sub->document, "priority"), 5);
  EXPECT_TRUE(Has(sub->document, "run_at"));

  client::SubmitOptions zero;
  zero.max_attempts = 0;
  auto bad = c.Submit("greeting", "{}", "application/json", zero);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().detail.find("max_attempts"), std::string::npos) << bad.error().detail;
}

TEST(ClientLibraryTest, WaitLongPollsInsteadOfSleeping) {
  ServerProcess s;
  SleepRecorder rec;
  ClientOptions o = OptionsFor(BaseUrl(s));
  o.sleep = rec.Hook();
  Client c(o);
  auto sub = c.Submit("sleep", R"({"ms":400})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  const auto start = SteadyClock::now();
  auto done = c.Wait(sub->status_url, WithDeadline(20s));
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->state, "succeeded");
  EXPECT_GE(SteadyClock::now() - start, 300ms);
  // The server held the request until the job finished: nothing to sleep.
  EXPECT_TRUE(rec.sleeps.empty()) << rec.sleeps.size() << " sleeps";
}

TEST(ClientLibraryTest, WaitReturnsThePendingStatusAtTheDeadline) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto sub = c.Submit("sleep", R"({"ms":20000})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  const auto start = SteadyClock::now();
  auto st = c.Wait(sub->id, WithDeadline(400ms));
  ASSERT_TRUE(st) << st.error().detail;
  EXPECT_TRUE(st->pending());
  EXPECT_TRUE(st->state == "queued" || st->state == "running") << st->state;
  EXPECT_GE(SteadyClock::now() - start, 350ms);
  EXPECT_LT(SteadyClock::now() - start, 3s);
}

TEST(ClientLibraryTest, ProgressCallbackSeesTheJobAdvance) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto sub = c.Submit("sleep", R"({"ms":1200})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  std::vector<int> percents;
  client::WaitOptions w = WithDeadline(20s);
  w.poll_wait = 200ms;
  w.on_progress = [&](const JobStatus& st) {
    EXPECT_TRUE(st.pending());
    if (st.progress) percents.push_back(st.progress->percent);
  };
  auto done = c.Wait(sub->status_url, w);
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->state, "succeeded");
  ASSERT_GE(percents.size(), 2u) << "saw too few progress reports";
  EXPECT_TRUE(std::is_sorted(percents.begin(), percents.end()));
  EXPECT_GT(percents.back(), 0);
}

TEST(ClientLibraryTest, UnknownJobIsNotFound) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto st = c.Status(std::string(32, 'a'));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(st.error().detail, "Not Found (404): no such job");
  auto w = c.Wait(std::string(32, 'a'), WithDeadline(5s));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kNotFound);
}

TEST(ClientLibraryTest, ListAndQueuesReturnTheDocuments) {
  ServerProcess s;
  Client c(OptionsFor(BaseUrl(s)));
  auto sub = c.Submit("greeting", R"({"name":"a"})", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  auto list = c.List({.queue = "greeting", .state = "", .limit = 10, .cursor = ""});
  ASSERT_TRUE(list) << list.error().detail;
  ASSERT_EQ(list->at("jobs").as_array().size(), 1u);
  EXPECT_EQ(Str(list->at("jobs").as_array()[0], "id"), sub->id);
  auto other = c.List({.queue = "echo", .state = "", .limit = std::nullopt, .cursor = ""});
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->at("jobs").as_array().empty());
  auto queues = c.Queues();
  ASSERT_TRUE(queues) << queues.error().detail;
  std::vector<std::string> names;
  for (const auto& q : queues->at("queues").as_array()) names.push_back(Str(q, "name"));
  EXPECT_NE(std::find(names.begin(), names.end(), "greeting"), names.end());
}

TEST(ClientLibraryTest, RefusedConnectionIsUnavailable) {
  uint16_t port = 0;
  {
    FakeServer closed([](const FakeServer::Request&) { return FakeServer::Reply{}; });
    port = closed.port();
  }  // nobody listens there any more
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  Client c(OptionsFor(base));
  auto st = c.Status("abc");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(st.error().detail, "cannot connect to " + base + ": Connection refused");
}

// ---------------------------------------------------------------------------
// A generic server: not acceptd's paths, no long-poll.

FakeServer::Reply Pending(std::string retry_after) {
  FakeServer::Reply r{202, {{"Content-Type", "application/json"}}, R"({"state":"running"})"};
  if (!retry_after.empty()) r.headers.emplace_back("Retry-After", std::move(retry_after));
  return r;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

TEST(ClientGenericServerTest, WaitFallsBackToRetryAfterAndFollowsTheLocations) {
  std::atomic<int> polls{0};
  std::string self;  // the fake's own URL, for an absolute Location
  FakeServer fake([&](const FakeServer::Request& r) -> FakeServer::Reply {
    if (r.method == "POST") {
      return {202, {{"Location", "../../operations/op-1"}, {"Retry-After", "1"}}, "accepted"};
    }
    if (StartsWith(r.target, "/v1/operations/op-1")) {
      if (++polls <= 2) return Pending("1");
      return {302, {{"Location", self + "/blobs/op-1"}}, ""};
    }
    if (r.target == "/blobs/op-1") return {200, {{"Content-Type", "text/plain"}}, "done"};
    return {404, {}, ""};
  });
  self = fake.url();
  SleepRecorder rec;
  ClientOptions o = OptionsFor(fake.url());
  o.sleep = rec.Hook();
  Client c(o);

  auto sub = c.Submit("anything", "payload", "text/plain");
  ASSERT_TRUE(sub) << sub.error().detail;
  EXPECT_TRUE(sub->pending());
  EXPECT_EQ(sub->id, "");  // not a JSON document: tolerated
  // Resolved against the submit URL /v1/queues/anything/jobs.
  EXPECT_EQ(sub->status_url, fake.url() + "/v1/operations/op-1");

  std::vector<std::string> seen;
  client::WaitOptions w = WithDeadline(20s);
  w.on_progress = [&](const JobStatus& st) { seen.push_back(st.state); };
  auto done = c.Wait(sub->status_url, w);
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_TRUE(done->succeeded());
  EXPECT_EQ(done->state, "succeeded");
  EXPECT_EQ(done->result_url, fake.url() + "/blobs/op-1");
  EXPECT_EQ(seen, (std::vector<std::string>{"running", "running"}));
  // The server answered at once, so each pending answer meant: sleep the
  // Retry-After.
  EXPECT_EQ(rec.sleeps, (std::vector<Millis>{1000ms, 1000ms}));

  auto result = c.FetchResult(done->result_url);
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->body, "done");
  EXPECT_EQ(result->content_type, "text/plain");

  // The polls asked for a long-poll (which this server ignored).
  int polls_with_wait = 0;
  for (const auto& r : fake.requests()) {
    if (StartsWith(r.target, "/v1/operations/op-1?wait=")) ++polls_with_wait;
  }
  EXPECT_EQ(polls_with_wait, 3);
}

std::string HttpDate(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

TEST(ClientGenericServerTest, RetryAfterAsDateMissingOrHugeIsBounded) {
  std::atomic<int> polls{0};
  const std::string date = HttpDate(std::chrono::system_clock::now() + 5s);
  FakeServer fake([&](const FakeServer::Request&) -> FakeServer::Reply {
    switch (++polls) {
      case 1:
        return Pending(date);
      case 2:
        return Pending("");  // none: the default, 1 s
      case 3:
        return Pending("3600");  // capped at a minute
      case 4:
        return Pending("0");  // never spin
      default:
        return {303, {{"Location", "/r"}}, ""};
    }
  });
  SleepRecorder rec;
  ClientOptions o = OptionsFor(fake.url());
  o.sleep = rec.Hook();
  Client c(o);
  // Far enough that the deadline does not shorten the capped sleep.
  client::WaitOptions w = WithDeadline(300s);
  w.poll_wait = 0ms;  // plain polling: no ?wait at all
  auto done = c.Wait(fake.url() + "/status/1", w);
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->http_status, 303);
  EXPECT_EQ(done->result_url, fake.url() + "/r");
  ASSERT_EQ(rec.sleeps.size(), 4u);
  EXPECT_GE(rec.sleeps[0], 3000ms);  // the date is whole seconds
  EXPECT_LE(rec.sleeps[0], 5000ms);
  EXPECT_EQ(rec.sleeps[1], 1000ms);
  EXPECT_EQ(rec.sleeps[2], 60000ms);
  EXPECT_EQ(rec.sleeps[3], 100ms);
  for (const auto& r : fake.requests()) EXPECT_EQ(r.target, "/status/1");
}

TEST(ClientGenericServerTest, WaitTakesTheRealSleepWhenNotInjected) {
  std::atomic<int> polls{0};
  FakeServer fake([&](const FakeServer::Request&) -> FakeServer::Reply {
    if (++polls == 1) return Pending("1");
    return {302, {{"Location", "/done"}}, ""};
  });
  Client c(OptionsFor(fake.url()));
  const auto start = SteadyClock::now();
  auto done = c.Wait(fake.url() + "/s", WithDeadline(20s));
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_TRUE(done->succeeded());
  EXPECT_GE(SteadyClock::now() - start, 900ms);
  EXPECT_LT(SteadyClock::now() - start, 5s);
}

TEST(ClientGenericServerTest, StatusDoesNotFollowButFetchResultFollowsRedirects) {
  FakeServer fake([&](const FakeServer::Request& r) -> FakeServer::Reply {
    if (r.target == "/s") return {302, {{"Location", "/r1"}}, R"({"id":"x","state":"succeeded"})"};
    if (r.target == "/r1") return {307, {{"Location", "/r2"}}, ""};
    if (r.target == "/r2") return {200, {{"Content-Type", "application/octet-stream"}}, "bytes"};
    return {404, {}, ""};
  });
  Client c(OptionsFor(fake.url()));
  auto st = c.Status("/s");
  ASSERT_TRUE(st) << st.error().detail;
  EXPECT_EQ(st->http_status, 302);
  EXPECT_EQ(st->id, "x");
  EXPECT_EQ(st->result_url, fake.url() + "/r1");
  EXPECT_EQ(fake.requests().size(), 1u);
  auto result = c.FetchResult(st->result_url);
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->body, "bytes");
  EXPECT_EQ(result->url, fake.url() + "/r2");
}

TEST(ClientGenericServerTest, KeepAliveIsReusedAndASilentCloseIsRetried) {
  FakeServer keep([](const FakeServer::Request&) -> FakeServer::Reply { return Pending("1"); });
  {
    Client c(OptionsFor(keep.url()));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Status("/s")) << i;
  }
  EXPECT_EQ(keep.connections(), 1);

  FakeServer closing([](const FakeServer::Request&) -> FakeServer::Reply { return Pending("1"); },
                     /*close_after_each=*/true);
  {
    Client c(OptionsFor(closing.url()));
    for (int i = 0; i < 3; ++i) {
      auto st = c.Status("/s");
      ASSERT_TRUE(st) << i << ": " << st.error().detail;
    }
  }
  EXPECT_EQ(closing.requests().size(), 3u);
  EXPECT_EQ(closing.connections(), 3);
}

}  // namespace
}  // namespace acceptd::itest
