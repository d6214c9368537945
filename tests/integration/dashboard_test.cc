// The dashboard against the real binary: GET /ui/ and its files as a browser
// fetches them, GET /v1/events (every job change of the node, as SSE), the
// payload route the job page previews, [ui] enabled, and API keys (public
// files, admin-only events). The page itself is driven in a real browser by
// tests/browser/dashboard.test.mjs; the loopback-only rule for remote peers by
// tests/api/ui_api_test.cc (a test client here is always on loopback).
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "harness.h"

namespace acceptd::itest {
namespace {

std::string EventsRequest(std::string_view extra = {}) {
  return "GET /v1/events HTTP/1.1\r\nHost: t\r\n" + std::string(extra) + "\r\n";
}

// `"id":"<id>","queue":"<queue>","state":"<state>"` as a job event's data has it.
std::string JobEvent(const std::string& id, std::string_view queue, std::string_view state) {
  return "\"id\":\"" + id + "\",\"queue\":\"" + std::string(queue) + "\",\"state\":\"" +
         std::string(state) + "\"";
}

TEST(IntegrationDashboardTest, ServesThePageAndEveryFileItLoads) {
  ServerProcess s;
  HttpClient http(s.port());
  HttpResponse redirect = http.Get("/ui");
  EXPECT_EQ(redirect.status, 308);
  EXPECT_EQ(redirect.Header("Location"), "ui/") << "relative: kept under a proxy's prefix";

  HttpResponse page = http.Get("/ui/");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.Header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.Header("Cache-Control"), "no-cache");
  EXPECT_NE(page.Header("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  const std::string etag = page.Header("ETag");
  ASSERT_FALSE(etag.empty());
  HttpResponse again = http.Send("GET", "/ui/", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());

  // What the page loads (src/href), and what the modules import, all served
  // with a type the browser accepts for it.
  std::set<std::string> files;
  const std::regex ref(R"re((?:src|href)="([a-z_.]+)")re");
  for (std::sregex_iterator it(page.body.begin(), page.body.end(), ref), end; it != end; ++it) {
    files.insert((*it)[1]);
  }
  EXPECT_TRUE(files.count("app.js") && files.count("style.css")) << page.body;
  const std::regex import(R"re(from '\./([a-z_]+\.js)')re");
  std::set<std::string> seen;
  while (!files.empty()) {
    const std::string name = *files.begin();
    files.erase(files.begin());
    if (!seen.insert(name).second) continue;
    HttpResponse f = http.Get("/ui/" + name);
    ASSERT_EQ(f.status, 200) << name;
    const std::string type = f.Header("Content-Type");
    if (name.ends_with(".js")) {
      EXPECT_EQ(type, "text/javascript; charset=utf-8") << name;
      for (std::sregex_iterator it(f.body.begin(), f.body.end(), import), end; it != end; ++it) {
        files.insert((*it)[1]);
      }
    } else if (name.ends_with(".css")) {
      EXPECT_EQ(type, "text/css; charset=utf-8");
    } else if (name.ends_with(".svg")) {
      EXPECT_EQ(type, "image/svg+xml");
    }
  }
  EXPECT_GE(seen.size(), 8u) << "index, style, icon, app and its page modules";
  EXPECT_EQ(http.Get("/ui/missing.js").status, 404);
}

TEST(IntegrationDashboardTest, EventsStreamEveryChangeOfTheNode) {
  ServerProcess s;
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest()));
  ASSERT_TRUE(conn.ReadUntil(": connected\n\n")) << conn.received();
  EXPECT_NE(conn.received().find("Content-Type: text/event-stream"), std::string::npos);

  const std::string done = s.SubmitOk("echo", R"({"n":1})");
  ASSERT_TRUE(conn.ReadUntil(JobEvent(done, "echo", "succeeded"))) << conn.received();
  const std::string& text = conn.received();
  const size_t queued = text.find(JobEvent(done, "echo", "queued"));
  const size_t running = text.find(JobEvent(done, "echo", "running"));
  const size_t succeeded = text.find(JobEvent(done, "echo", "succeeded"));
  ASSERT_NE(queued, std::string::npos) << text;
  ASSERT_NE(running, std::string::npos) << text;
  EXPECT_LT(queued, running);
  EXPECT_LT(running, succeeded);
  EXPECT_NE(text.find("event: job\ndata: {"), std::string::npos) << text;

  // A cancel, a delete and a purge show too: the counts on the page move.
  const std::string slow = s.SubmitOk("sleep", R"({"ms":30000})");
  s.WaitState(slow, "running");
  EXPECT_EQ(s.Post("/v1/jobs/" + slow + "/cancel").status, 202);
  ASSERT_TRUE(conn.ReadUntil(JobEvent(slow, "sleep", "canceled"))) << conn.received();
  EXPECT_EQ(s.Delete("/v1/jobs/" + slow).status, 204);
  ASSERT_TRUE(conn.ReadUntil(JobEvent(slow, "sleep", "canceled") + ",\"removed\":true"))
      << conn.received();
  EXPECT_EQ(s.Post("/v1/queues/echo/purge").status, 200);
  ASSERT_TRUE(conn.ReadUntil("\"id\":\"" + done + "\",\"queue\":\"echo\",\"state\":"));
  const std::string after = conn.received().substr(succeeded);
  EXPECT_NE(after.find("\"id\":\"" + done + "\",\"queue\":\"echo\""), std::string::npos);
  EXPECT_NE(after.find(",\"removed\":true}"), std::string::npos) << after;
}

TEST(IntegrationDashboardTest, EventsStreamSendsHeartbeats) {
  ServerProcess s(ServerOptions().Set("events_heartbeat", "0.2"));
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest()));
  ASSERT_TRUE(conn.ReadUntil(": keep-alive\n\n", 5s)) << conn.received();
}

TEST(IntegrationDashboardTest, PayloadIsServedWithItsContentType) {
  ServerProcess s;
  const std::string id = s.SubmitOk("sleep", R"({"ms":0,"customer":"c-7"})");
  HttpResponse json = s.Get("/v1/jobs/" + id + "/payload");
  EXPECT_EQ(json.status, 200);
  EXPECT_EQ(json.body, R"({"ms":0,"customer":"c-7"})");
  EXPECT_EQ(json.Header("Content-Type"), "application/json");
  EXPECT_EQ(json.Header("X-Content-Type-Options"), "nosniff");
  const std::string bin =
      s.SubmitOk("echo", std::string("\x00\x01\xff", 3), {}, "application/octet-stream");
  HttpResponse raw = s.Get("/v1/jobs/" + bin + "/payload");
  EXPECT_EQ(raw.body, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(raw.Header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(s.Get("/v1/jobs/" + std::string(32, 'a') + "/payload").status, 404);
}

TEST(IntegrationDashboardTest, UiCanBeTurnedOff) {
  ServerProcess s(ServerOptions().WithQueues("[ui]\nenabled = false\n"));
  EXPECT_EQ(s.Get("/ui/").status, 404);
  EXPECT_EQ(s.Get("/ui").status, 404);
}

// `acceptd keygen`: the key on the first line, config lines after it.
std::pair<std::string, std::string> Keygen(const std::string& name, const std::string& scopes) {
  ProcessResult r = RunAcceptd({"keygen", "--name", name, "--scopes", scopes});
  if (r.exit_code != 0) throw std::runtime_error("keygen failed: " + r.err);
  const size_t eol = r.out.find('\n');
  return {r.out.substr(0, eol), r.out.substr(eol + 1)};
}

TEST(IntegrationDashboardTest, WithKeysThePageIsPublicAndTheDataNeedsAdmin) {
  const auto [admin, admin_toml] = Keygen("ops", "admin");
  const auto [reader, reader_toml] = Keygen("dash-reader", "read");
  ServerProcess s(ServerOptions().WithQueues(admin_toml + reader_toml));
  HttpClient http(s.port());
  EXPECT_EQ(http.Get("/ui/").status, 200) << "a browser cannot send a key to load the page";
  EXPECT_EQ(http.Get("/ui/app.js").status, 200);
  EXPECT_EQ(http.Get("/v1/queues").status, 401);
  EXPECT_EQ(http.Get("/v1/events").status, 401);
  EXPECT_EQ(http.Send("GET", "/v1/events", {}, {{"Authorization", "Bearer " + reader}}).status,
            403);
  RawConnection conn(s.port());
  ASSERT_TRUE(conn.Send(EventsRequest("Authorization: Bearer " + admin + "\r\n")));
  ASSERT_TRUE(conn.ReadUntil(": connected\n\n")) << conn.received();
  EXPECT_EQ(conn.received().rfind("HTTP/1.1 200 OK", 0), 0u) << conn.received();
}

}  // namespace
}  // namespace acceptd::itest
