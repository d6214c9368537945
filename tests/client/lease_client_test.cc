// The lease client without acceptd: the parsing of lease, heartbeat and
// outcome answers (pure), and the requests it sends, against a scripted
// server (tests/client/fake_server.h). The protocol against the real server
// is exercised by tests/integration/worker_cli_test.cc.
#include "client/lease_client.h"

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "fake_server.h"

namespace acceptd::client {
namespace {

using testing::FakeServer;
namespace json = boost::json;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

HttpResponse LeaseAnswer() {
  HttpResponse r;
  r.status = 200;
  r.url = "http://127.0.0.1:9/v1/queues/q/leases?wait=30";
  r.headers = {{"Content-Type", "text/plain"},
               {"Acceptd-Lease", std::string(kJobId) + ".tok"},
               {"Location", std::string("/v1/leases/") + kJobId + ".tok"},
               {"Acceptd-Job-Id", kJobId},
               {"Acceptd-Attempt", "2"},
               {"Acceptd-Max-Attempts", "3"},
               {"Acceptd-Lease-Seconds", "30"},
               {"Acceptd-Timeout-Seconds", "2.5"}};
  r.body = "payload";
  return r;
}

TEST(LeaseClientParseTest, SecondsHeaders) {
  EXPECT_EQ(ParseSecondsHeader("30"), Millis(30'000));
  EXPECT_EQ(ParseSecondsHeader(" 2.5 "), Millis(2'500));
  EXPECT_EQ(ParseSecondsHeader("0"), Millis(0));
  EXPECT_EQ(ParseSecondsHeader(""), std::nullopt);
  EXPECT_EQ(ParseSecondsHeader("-1"), std::nullopt);
  EXPECT_EQ(ParseSecondsHeader("abc"), std::nullopt);
  EXPECT_EQ(ParseSecondsHeader("30s"), std::nullopt);
  EXPECT_EQ(ParseSecondsHeader("inf"), std::nullopt);
  EXPECT_EQ(ParseSecondsHeader("1e9"), std::nullopt);  // more than a day
}

TEST(LeaseClientParseTest, ALeaseAnswerGivesEveryField) {
  auto r = ParseLeaseResponse(LeaseAnswer());
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_TRUE(r->has_value());
  const LeasedJob& job = **r;
  EXPECT_EQ(job.lease, std::string(kJobId) + ".tok");
  EXPECT_EQ(job.lease_url, std::string("http://127.0.0.1:9/v1/leases/") + kJobId + ".tok");
  EXPECT_EQ(job.job_id, kJobId);
  EXPECT_EQ(job.attempt, 2);
  EXPECT_EQ(job.max_attempts, 3);
  EXPECT_EQ(job.lease_duration, Millis(30'000));
  EXPECT_EQ(job.timeout, Millis(2'500));
  EXPECT_EQ(job.content_type, "text/plain");
  EXPECT_EQ(job.payload, "payload");
}

TEST(LeaseClientParseTest, WithoutLocationTheLeaseUrlIsUnderTheBase) {
  HttpResponse res = LeaseAnswer();
  res.url = "http://h:1/prefix/v1/queues/q/leases?wait=1";
  std::erase_if(res.headers, [](const auto& h) { return h.first == "Location"; });
  auto r = ParseLeaseResponse(res);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ((*r)->lease_url, std::string("http://h:1/prefix/v1/leases/") + kJobId + ".tok");
}

TEST(LeaseClientParseTest, OptionalHeadersMayBeAbsent) {
  HttpResponse res = LeaseAnswer();
  std::erase_if(res.headers, [](const auto& h) {
    return h.first == "Acceptd-Attempt" || h.first == "Acceptd-Max-Attempts" ||
           h.first == "Acceptd-Timeout-Seconds";
  });
  auto r = ParseLeaseResponse(res);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ((*r)->attempt, 1);
  EXPECT_EQ((*r)->max_attempts, 0);
  EXPECT_EQ((*r)->timeout, std::nullopt);
}

TEST(LeaseClientParseTest, MissingOrBadRequiredHeadersAreMalformed) {
  for (const char* header : {"Acceptd-Lease", "Acceptd-Job-Id"}) {
    HttpResponse res = LeaseAnswer();
    std::erase_if(res.headers, [&](const auto& h) { return h.first == header; });
    auto r = ParseLeaseResponse(res);
    ASSERT_FALSE(r) << header;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().detail.find(header), std::string::npos) << r.error().detail;
  }
  HttpResponse res = LeaseAnswer();
  for (auto& [k, v] : res.headers) {
    if (k == "Acceptd-Attempt") v = "zero";
  }
  EXPECT_FALSE(ParseLeaseResponse(res));
}

TEST(LeaseClientParseTest, NoContentIsNoJob) {
  HttpResponse res;
  res.status = 204;
  res.url = "http://h/v1/queues/q/leases";
  auto r = ParseLeaseResponse(res);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
}

HttpResponse Problem(int status, std::string detail) {
  HttpResponse res;
  res.status = status;
  res.url = "http://h/v1/leases/x/heartbeat";
  res.headers = {{"Content-Type", "application/problem+json"}};
  res.body = json::serialize(json::object{{"type", "about:blank"},
                                          {"title", "Conflict"},
                                          {"status", status},
                                          {"detail", std::move(detail)}});
  return res;
}

TEST(LeaseClientParseTest, ErrorsAreMappedByCall) {
  // A 409 on a call naming a lease is a stale lease; on the lease request
  // itself it says the queue is not external.
  auto stale = ParseHeartbeatResponse(Problem(409, "the lease is stale"));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kStaleLease);
  EXPECT_NE(stale.error().detail.find("the lease is stale"), std::string::npos);
  EXPECT_FALSE(IsRetryable(stale.error()));
  auto lease = ParseLeaseResponse(Problem(409, "not external"));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(IsRetryable(lease.error()));
  auto done = ParseLeaseOutcome(Problem(409, "finished"));
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ErrorCode::kStaleLease);

  for (int status : {408, 429, 500, 502, 503}) {
    auto r = ParseLeaseResponse(Problem(status, "later"));
    ASSERT_FALSE(r) << status;
    EXPECT_TRUE(IsRetryable(r.error())) << status;
  }
  for (int status : {400, 401, 403, 404}) {
    auto r = ParseLeaseResponse(Problem(status, "no"));
    ASSERT_FALSE(r) << status;
    EXPECT_FALSE(IsRetryable(r.error())) << status;
  }
  auto big = ParseLeaseOutcome(Problem(413, "too large"));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kPayloadTooLarge);
}

TEST(LeaseClientParseTest, HeartbeatAnswer) {
  HttpResponse res;
  res.status = 200;
  res.url = "http://h/v1/leases/x/heartbeat";
  res.body = R"({"cancel_requested": true, "lease_seconds": 12.5})";
  auto r = ParseHeartbeatResponse(res);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_TRUE(r->cancel_requested);
  EXPECT_EQ(r->lease_duration, Millis(12'500));
  res.body = R"({"cancel_requested": false})";
  r = ParseHeartbeatResponse(res);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->cancel_requested);
  EXPECT_EQ(r->lease_duration, std::nullopt);
  res.body = "not json";
  EXPECT_FALSE(ParseHeartbeatResponse(res));
}

TEST(LeaseClientParseTest, Bodies) {
  EXPECT_EQ(json::parse(HeartbeatBody({140, "a \"b\""})),
            json::parse(R"({"percent":100,"message":"a \"b\""})"));
  EXPECT_EQ(json::parse(FailBody("boom", true, "exit_status")),
            json::parse(R"({"detail":"boom","retryable":true,"code":"exit_status"})"));
  EXPECT_EQ(
      json::parse(FailBody("busy", true, "http_status", Millis(2'500))),
      json::parse(R"({"detail":"busy","retryable":true,"code":"http_status","retry_after":2.5})"));
  // A code the server would refuse (and with it the failure) is left out.
  EXPECT_EQ(json::parse(FailBody("x", true, "not a slug!")),
            json::parse(R"({"detail":"x","retryable":true})"));
  EXPECT_EQ(json::parse(FailBody("x", false, "")),
            json::parse(R"({"detail":"x","retryable":false})"));
}

// ---------------------------------------------------------------------------
// Requests, against a scripted server

FakeServer::Reply JsonReply(std::string body) {
  return {200, {{"Content-Type", "application/json"}}, std::move(body)};
}

TEST(LeaseClientTest, SendsTheProtocolsRequests) {
  FakeServer server([](const FakeServer::Request& r) -> FakeServer::Reply {
    if (r.target.starts_with("/v1/queues/")) {
      return {200,
              {{"Content-Type", "image/png"},
               {"Acceptd-Lease", "L.1"},
               {"Location", "/v1/leases/L.1"},
               {"Acceptd-Job-Id", kJobId},
               {"Acceptd-Attempt", "1"},
               {"Acceptd-Lease-Seconds", "9"}},
              "PNG"};
    }
    if (r.target.find("/heartbeat") != std::string::npos) {
      return JsonReply(R"({"cancel_requested":false,"lease_seconds":9})");
    }
    return JsonReply(R"({"id":"x","state":"succeeded"})");
  });
  ClientOptions o;
  o.base_url = server.url();
  o.api_key = "secret";
  LeaseClient c(o);
  auto job = c.Lease("my queue", {Millis(1'500), Millis(9'000)});
  ASSERT_TRUE(job) << job.error().detail;
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ((*job)->lease_url, server.url() + "/v1/leases/L.1");
  EXPECT_EQ((*job)->payload, "PNG");
  auto hb = c.Heartbeat((*job)->lease_url, Millis(9'000), Progress{40, "half"});
  ASSERT_TRUE(hb) << hb.error().detail;
  EXPECT_EQ(hb->lease_duration, Millis(9'000));
  auto done = c.Complete((*job)->lease_url, "result", "text/plain");
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->state, "succeeded");
  ASSERT_TRUE(c.Fail("L.1", "boom", false, "exec_exit"));
  ASSERT_TRUE(c.Release("L.1"));

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/v1/queues/my%20queue/leases?wait=1.5&lease=9");
  EXPECT_EQ(reqs[1].target, "/v1/leases/L.1/heartbeat?lease=9");
  EXPECT_EQ(json::parse(reqs[1].body), json::parse(R"({"percent":40,"message":"half"})"));
  EXPECT_EQ(reqs[2].target, "/v1/leases/L.1/complete");
  EXPECT_EQ(reqs[2].body, "result");
  EXPECT_EQ(reqs[3].target, "/v1/leases/L.1/fail");
  EXPECT_EQ(reqs[4].target, "/v1/leases/L.1/release");
  EXPECT_EQ(reqs[4].body, "");
  for (const auto& r : reqs) {
    std::string auth, type;
    for (const auto& [k, v] : r.headers) {
      if (k == "Authorization") auth = v;
      if (k == "Content-Type") type = v;
    }
    EXPECT_EQ(auth, "Bearer secret") << r.target;
    if (r.target.ends_with("/complete")) {
      EXPECT_EQ(type, "text/plain");
    }
    if (r.target.ends_with("/fail")) {
      EXPECT_EQ(type, "application/problem+json");
    }
  }
}

// Regression: a lease call on a keep-alive connection that the server closed
// while the job ran (its idle timeout is shorter than many jobs) must be
// sent again on a new connection, not fail: the lease fences a repeat.
TEST(LeaseClientTest, ACallOnAConnectionClosedWhileIdleIsRepeated) {
  FakeServer server(
      [](const FakeServer::Request&) { return JsonReply(R"({"state":"succeeded"})"); },
      /*close_after_each=*/true);
  ClientOptions o;
  o.base_url = server.url();
  LeaseClient c(o);
  ASSERT_TRUE(c.Release("L.1"));
  auto done = c.Complete("L.1", "x", "text/plain");
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(LeaseClientTest, InterruptEndsALongPollAtOnce) {
  std::promise<void> release_server;
  std::shared_future<void> released = release_server.get_future().share();
  FakeServer server([released](const FakeServer::Request&) -> FakeServer::Reply {
    released.wait_for(std::chrono::seconds(10));
    return {204, {}, ""};
  });
  ClientOptions o;
  o.base_url = server.url();
  LeaseClient c(o);
  auto started = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    // Until the request is in, the interrupt would hit before any I/O,
    // which is tested below.
    while (server.requests().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    c.Interrupt();
  });
  auto r = c.Lease("q", {Millis(30'000), std::nullopt});
  stopper.join();
  const auto took = std::chrono::steady_clock::now() - started;
  release_server.set_value();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().detail.find("interrupted"), std::string::npos) << r.error().detail;
  EXPECT_LT(took, std::chrono::seconds(5));
  // Final: every later request fails at once too.
  auto again = c.Release("L.1");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().detail.find("interrupted"), std::string::npos);
}

}  // namespace
}  // namespace acceptd::client
