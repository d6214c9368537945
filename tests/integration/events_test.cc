// Server-Sent Events: GET /v1/jobs/{id}/events streams state and progress
// events with ids, ends after the terminal state event, and resumes from
// Last-Event-ID.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

struct SseEvent {
  std::string event, id, data;
};

// The events of a text/event-stream body (comments skipped).
std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> out;
  SseEvent cur;
  bool any = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string::npos) nl = body.size();
    const std::string line = body.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      if (any) out.push_back(cur);
      cur = {};
      any = false;
    } else if (line[0] == ':') {
      continue;
    } else if (line.rfind("event: ", 0) == 0) {
      cur.event = line.substr(7);
      any = true;
    } else if (line.rfind("id: ", 0) == 0) {
      cur.id = line.substr(4);
      any = true;
    } else if (line.rfind("data: ", 0) == 0) {
      if (!cur.data.empty()) cur.data += '\n';
      cur.data += line.substr(6);
      any = true;
    }
  }
  return out;
}

std::string EventsRequest(const std::string& id, std::string_view version = "HTTP/1.1",
                          std::string_view extra = {}) {
  return "GET /v1/jobs/" + id + "/events " + std::string(version) + "\r\nHost: t\r\n" +
         std::string(extra) + "\r\n";
}

std::string StateOf(const SseEvent& e) { return Str(boost::json::parse(e.data), "state"); }

constexpr std::string_view kLastChunk = "\r\n0\r\n\r\n";

TEST(IntegrationEventsTest, StreamsStatesProgressAndEndsAfterTheTerminalEvent) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":1500})");
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest(id)));
  // Events arrive while the job runs, not all at the end.
  ASSERT_TRUE(conn.ReadUntil("event: progress", 10s)) << conn.received();
  EXPECT_EQ(conn.received().find("\"state\":\"succeeded\""), std::string::npos);
  ASSERT_TRUE(conn.ReadUntil(kLastChunk, 15s)) << conn.received();
  auto res = conn.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << Describe(*res);
  EXPECT_EQ(res->Header("Content-Type"), "text/event-stream");
  EXPECT_EQ(res->Header("Cache-Control"), "no-store");
  EXPECT_EQ(res->Header("Transfer-Encoding"), "chunked");

  const auto events = ParseSse(res->body);
  ASSERT_GE(events.size(), 3u) << res->body;
  EXPECT_EQ(events.front().event, "state");
  const std::string first = StateOf(events.front());
  EXPECT_TRUE(first == "queued" || first == "running") << first;
  int progress = 0;
  bool running = false;
  std::set<std::string> ids;
  for (const SseEvent& e : events) {
    EXPECT_FALSE(e.id.empty()) << e.event;
    EXPECT_TRUE(ids.insert(e.id).second) << "repeated id " << e.id;
    if (e.event == "progress") {
      ++progress;
      auto v = boost::json::parse(e.data);
      EXPECT_GE(Int(v, "percent"), 0);
      EXPECT_LE(Int(v, "percent"), 100);
      EXPECT_TRUE(Has(v, "message"));
    } else {
      ASSERT_EQ(e.event, "state");
      ExpectValidJobDocument(boost::json::parse(e.data), "state event");
      running = running || StateOf(e) == "running";
    }
  }
  EXPECT_GE(progress, 1);
  EXPECT_TRUE(running);
  EXPECT_EQ(events.back().event, "state");
  EXPECT_EQ(StateOf(events.back()), "succeeded");

  // The connection stays usable after the last chunk.
  ASSERT_TRUE(conn.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto health = conn.ReadResponse();
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(IntegrationEventsTest, LastEventIdResumesWithOnlyWhatIsNew) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":600})");
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest(id)));
  ASSERT_TRUE(conn.ReadUntil(kLastChunk, 15s)) << conn.received();
  auto res = conn.ReadResponse();
  ASSERT_TRUE(res);
  const auto events = ParseSse(res->body);
  ASSERT_GE(events.size(), 2u);

  // Seen everything up to the one before the terminal event: only that one.
  const SseEvent& before_end = events[events.size() - 2];
  HttpResponse resumed =
      Http(s.port(), "GET", "/v1/jobs/" + id + "/events", {}, {{"Last-Event-ID", before_end.id}});
  ASSERT_EQ(resumed.status, 200) << Describe(resumed);
  const auto again = ParseSse(resumed.body);
  ASSERT_EQ(again.size(), 1u) << resumed.body;
  EXPECT_EQ(again[0].event, "state");
  EXPECT_EQ(StateOf(again[0]), "succeeded");
  EXPECT_EQ(again[0].id, events.back().id);

  // Seen the terminal event: nothing more, ever (204 stops an EventSource).
  HttpResponse done = Http(s.port(), "GET", "/v1/jobs/" + id + "/events", {},
                           {{"Last-Event-ID", events.back().id}});
  EXPECT_EQ(done.status, 204) << Describe(done);
  EXPECT_TRUE(done.body.empty());

  // A malformed id is ignored: the whole current snapshot.
  HttpResponse fresh =
      Http(s.port(), "GET", "/v1/jobs/" + id + "/events", {}, {{"Last-Event-ID", "bogus"}});
  ASSERT_EQ(fresh.status, 200);
  const auto snapshot = ParseSse(fresh.body);
  ASSERT_EQ(snapshot.size(), 1u) << fresh.body;
  EXPECT_EQ(StateOf(snapshot[0]), "succeeded");
}

TEST(IntegrationEventsTest, UnknownOrMalformedJobIs404BeforeStreaming) {
  ServerProcess s;
  HttpResponse unknown = s.Get("/v1/jobs/0123456789abcdef0123456789abcdef/events");
  ExpectProblem(unknown, 404);
  HttpResponse malformed = s.Get("/v1/jobs/nope/events");
  ExpectProblem(malformed, 404);
}

TEST(IntegrationEventsTest, Http10ClientGetsACloseDelimitedStream) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":300})");
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest(id, "HTTP/1.0")));
  ASSERT_TRUE(conn.WaitClosed(15s)) << conn.received();
  auto res = conn.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->version, 10u);
  EXPECT_FALSE(res->HasHeader("Transfer-Encoding"));
  EXPECT_FALSE(res->HasHeader("Content-Length"));
  const auto events = ParseSse(res->body);
  ASSERT_FALSE(events.empty()) << res->body;
  EXPECT_EQ(StateOf(events.back()), "succeeded");
}

TEST(IntegrationEventsTest, CancelEndsTheStreamWithCanceled) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":20000})");
  s.WaitState(id, "running");
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest(id)));
  ASSERT_TRUE(conn.ReadUntil("event: state", 10s)) << conn.received();
  HttpResponse cancel = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_TRUE(cancel.status == 200 || cancel.status == 202) << Describe(cancel);
  ASSERT_TRUE(conn.ReadUntil(kLastChunk, 10s)) << conn.received();
  auto res = conn.ReadResponse();
  ASSERT_TRUE(res);
  const auto events = ParseSse(res->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().event, "state");
  EXPECT_EQ(StateOf(events.back()), "canceled");
}

TEST(IntegrationEventsTest, ManyStreamsOnOneJobAllEnd) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":500})");
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 30; ++i) {
    conns.push_back(std::make_unique<RawConnection>(s.port()));
    ASSERT_TRUE(conns.back()->Send(EventsRequest(id)));
  }
  for (auto& c : conns) {
    ASSERT_TRUE(c->ReadUntil(kLastChunk, 15s)) << c->received();
    auto res = c->ReadResponse();
    ASSERT_TRUE(res);
    const auto events = ParseSse(res->body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(StateOf(events.back()), "succeeded");
  }
}

TEST(IntegrationEventsTest, StreamsBeyondTheCapAre503AndTheSlotIsFreedWhenOneEnds) {
  ServerProcess s(ServerOptions().Set("max_event_streams", "1"));
  const std::string id = s.SubmitOk("sleep", R"({"ms":20000})");
  auto first = std::make_unique<RawConnection>(s.port());
  ASSERT_TRUE(first->Send(EventsRequest(id)));
  ASSERT_TRUE(first->ReadUntil("event: state", 10s)) << first->received();
  HttpResponse refused = s.Get("/v1/jobs/" + id + "/events");
  EXPECT_EQ(refused.status, 503) << Describe(refused);
  EXPECT_TRUE(refused.HasHeader("Retry-After"));
  // The first stream ends (its job is canceled): its slot is free again.
  ASSERT_EQ(s.Post("/v1/jobs/" + id + "/cancel").status, 202);
  ASSERT_TRUE(first->ReadUntil(kLastChunk, 10s)) << first->received();
  first.reset();
  const std::string done = s.SubmitOk("greeting", R"({"name":"x"})");
  s.WaitState(done, "succeeded");
  ASSERT_TRUE(WaitFor(
      [&] {
        RawConnection again(s.port());
        if (!again.Send(EventsRequest(done))) return false;
        auto res = again.ReadResponse();
        return res && res->status == 200;
      },
      10s));
}

// The per-job streams and the dashboard's GET /v1/events had a cap each, so
// max_event_streams let twice as many streams open as it said.
TEST(IntegrationEventsTest, JobStreamsAndTheDashboardsStreamHadACapEach) {
  ServerProcess s(ServerOptions().Set("max_event_streams", "1"));
  const std::string id = s.SubmitOk("sleep", R"({"ms":20000})");
  RawConnection stream(s.port());
  ASSERT_TRUE(stream.Send(EventsRequest(id)));
  ASSERT_TRUE(stream.ReadUntil("event: state", 10s)) << stream.received();
  HttpResponse refused = s.Get("/v1/events");
  EXPECT_EQ(refused.status, 503) << Describe(refused);
  EXPECT_TRUE(refused.HasHeader("Retry-After"));
}

// An open stream does not hold up a graceful shutdown.
TEST(IntegrationEventsTest, ServerStopsWithAStreamOpen) {
  ServerProcess s(ServerOptions().Set("shutdown_grace", "0.2"));
  const std::string id = s.SubmitOk("sleep", R"({"ms":60000})");
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest(id)));
  ASSERT_TRUE(conn.ReadUntil("event: state", 10s)) << conn.received();
  EXPECT_EQ(s.Terminate(20s), 0) << s.Stderr();
  EXPECT_TRUE(conn.WaitClosed(5s));
}

}  // namespace
}  // namespace acceptd::itest
