// Connection limits for an exposed server (src/http/server.h): the header
// deadline, the idle timeout between requests, max_connections. The
// slowhttptest suite in tests/slow pins the same under thousands of
// connections; these are the single-connection cases.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "harness.h"

namespace acceptd::itest {
namespace {

Millis Since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<Millis>(SteadyClock::now() - start);
}

// Sends `bytes` one at a time, `gap` apart, until the peer closes or the
// bytes run out; true if the peer closed first.
bool Trickle(RawConnection& c, const std::string& bytes, Millis gap) {
  for (char ch : bytes) {
    if (!c.Send(std::string(1, ch))) return true;
    if (c.WaitClosed(gap)) return true;  // paces the trickle, and notices the close
  }
  return false;
}

TEST(ConnectionLimitsTest, SlowlorisHeaderIsCutOffAtTheHeaderDeadline) {
  // The bug: the idle timeout, set once before the header read, gave a
  // trickling header all of it (60 s), and trickling never ran out.
  ServerProcess s(ServerOptions().Set("header_timeout", "0.5").Set("idle_timeout", "60"));
  RawConnection c(s.port());
  const auto start = SteadyClock::now();
  std::string slow_header = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 100; ++i) slow_header += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_TRUE(Trickle(c, slow_header, 50ms)) << "a trickling header was never cut off";
  EXPECT_GE(Since(start), 400ms);
  EXPECT_LT(Since(start), 5s) << "cut off long after header_timeout";
  EXPECT_FALSE(c.ReadResponse(1s).has_value()) << "a header deadline gets no answer";
}

TEST(ConnectionLimitsTest, HeaderDeadlineCountsFromTheFirstByteOnAKeepAliveConnection) {
  ServerProcess s(ServerOptions().Set("header_timeout", "0.5").Set("idle_timeout", "60"));
  RawConnection c(s.port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c.ReadResponse().has_value());
  // Idle for longer than header_timeout: allowed (idle_timeout applies).
  EXPECT_FALSE(c.WaitClosed(1s)) << "an idle keep-alive connection was closed at header_timeout";
  // Then a request that starts and stalls: closed at header_timeout.
  c.Send("GET /healthz HTTP/1.1\r\nHo");
  const auto start = SteadyClock::now();
  EXPECT_TRUE(c.WaitClosed(10s));
  EXPECT_GE(Since(start), 400ms);
  EXPECT_LT(Since(start), 5s);
}

TEST(ConnectionLimitsTest, NewConnectionWithoutARequestIsClosedAtTheHeaderDeadline) {
  ServerProcess s(ServerOptions().Set("header_timeout", "0.5").Set("idle_timeout", "60"));
  RawConnection c(s.port());
  const auto start = SteadyClock::now();
  EXPECT_TRUE(c.WaitClosed(10s)) << "a silent connection held its socket";
  EXPECT_GE(Since(start), 400ms);
  EXPECT_LT(Since(start), 5s) << "a fresh connection got idle_timeout instead of header_timeout";
}

TEST(ConnectionLimitsTest, HeaderArrivingInPiecesWithinTheDeadlineIsServed) {
  ServerProcess s(ServerOptions().Set("header_timeout", "5"));
  RawConnection c(s.port());
  EXPECT_FALSE(Trickle(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5ms));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST(ConnectionLimitsTest, LongPollOutlastsTheHeaderAndIdleDeadlines) {
  ServerProcess s(ServerOptions().Set("header_timeout", "0.3").Set("idle_timeout", "0.3"));
  const std::string id = s.SubmitOk("sleep", R"({"ms":20000})");
  HttpClient client(s.port());
  const auto start = SteadyClock::now();
  HttpResponse res = client.Get("/v1/jobs/" + id + "?wait=1.5");
  EXPECT_EQ(res.status, 202) << Describe(res);
  EXPECT_GE(Since(start), 1400ms);
}

TEST(ConnectionLimitsTest, EventStreamOutlastsTheHeaderAndIdleDeadlines) {
  ServerProcess s(ServerOptions()
                      .Set("header_timeout", "0.3")
                      .Set("idle_timeout", "0.3")
                      .Set("events_heartbeat", "0.2"));
  const std::string id = s.SubmitOk("sleep", R"({"ms":1500})");
  RawConnection c(s.port());
  c.Send("GET /v1/jobs/" + id + "/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  // The stream ends when the job does, well after both deadlines.
  ASSERT_TRUE(c.ReadUntil("\r\n0\r\n\r\n", 15s)) << c.received();
  EXPECT_NE(c.received().find("succeeded"), std::string::npos) << c.received();
}

TEST(ConnectionLimitsTest, ConnectionsBeyondMaxConnectionsGet503WithRetryAfter) {
  ServerProcess s(ServerOptions().Set("max_connections", "2"));
  // Two connections served (each proves it by a response), both kept open.
  // The harness's readiness probe may hold a slot a moment longer: its
  // session ends only when the server reads its close, on another thread.
  std::vector<std::unique_ptr<RawConnection>> held;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c = std::make_unique<RawConnection>(s.port());
        c->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        auto r = c->ReadResponse();
        if (!r || r->status != 200) return false;
        held.push_back(std::move(c));
        return held.size() == 2;
      },
      10s));
  RawConnection third(s.port());
  third.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = third.ReadResponse();
  ASSERT_TRUE(r.has_value()) << "no answer beyond max_connections";
  ExpectProblem(*r, 503);
  EXPECT_EQ(r->Header("Retry-After"), "1");
  EXPECT_TRUE(third.WaitClosed());

  // One closes: its slot is free again.
  held.pop_back();
  EXPECT_TRUE(WaitFor([&] { return Http(s.port(), "GET", "/healthz").status == 200; }, 10s));
  // The held one still works.
  held.front()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto again = held.front()->ReadResponse();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->status, 200);
}

}  // namespace
}  // namespace acceptd::itest
