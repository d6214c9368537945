#include "http/router.h"

#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

namespace acceptd::http {
namespace {

// A handler that answers with its route name and the captures it got.
RouteHandler Echo(std::string name) {
  return [name](Request&, const PathParams& params) -> boost::asio::awaitable<Response> {
    Response res{Status::ok, 11};
    std::string body = name;
    for (const auto& [k, v] : params.values) body += " " + k + "=" + v;
    res.body() = body;
    co_return res;
  };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(Verb::post, "/v1/queues/{queue}/jobs", Echo("submit"));
    router_.Add(Verb::get, "/v1/jobs/{id}", Echo("status"));
    router_.Add(Verb::delete_, "/v1/jobs/{id}", Echo("delete"));
    router_.Add(Verb::get, "/v1/jobs/{id}/result", Echo("result"));
    router_.Add(Verb::post, "/v1/jobs/{id}/cancel", Echo("cancel"));
    router_.Add(Verb::get, "/v1/jobs", Echo("list"));
    router_.Add(Verb::get, "/healthz", Echo("health"));
  }

  Response Route(Verb method, std::string target) {
    return RouteWith(router_, method, std::move(target));
  }
  static Response RouteWith(const Router& router, Verb method, std::string target) {
    boost::asio::io_context ctx;
    Request req{method, target, 11};
    std::optional<Response> out;
    std::exception_ptr error;
    boost::asio::co_spawn(ctx, router.Route(req), [&](std::exception_ptr e, Response res) {
      error = e;
      out = std::move(res);
    });
    ctx.run();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
  }

  Router router_;
};

TEST_F(RouterTest, MatchesRoutesAndCapturesSegments) {
  Response r = Route(Verb::get, "/v1/jobs/0123abcd");
  EXPECT_EQ(r.result(), Status::ok);
  EXPECT_EQ(r.body(), "status id=0123abcd");

  EXPECT_EQ(Route(Verb::delete_, "/v1/jobs/0123abcd").body(), "delete id=0123abcd");
  EXPECT_EQ(Route(Verb::get, "/v1/jobs/xyz/result").body(), "result id=xyz");
  EXPECT_EQ(Route(Verb::post, "/v1/jobs/xyz/cancel").body(), "cancel id=xyz");
  EXPECT_EQ(Route(Verb::post, "/v1/queues/emails/jobs").body(), "submit queue=emails");
  EXPECT_EQ(Route(Verb::get, "/v1/jobs").body(), "list");
  EXPECT_EQ(Route(Verb::get, "/healthz").body(), "health");
}

TEST_F(RouterTest, WithoutKeysWorkerRoutesAnswerOnlyLoopbackPeers) {
  Router r;
  r.Add(Verb::post, "/v1/queues/{queue}/leases", Access::Need(Scope::kWorker), Echo("lease"));
  r.Add(Verb::post, "/v1/queues/{queue}/jobs", Access::Need(Scope::kSubmit), Echo("submit"));
  auto route = [&](std::string target, bool loopback) {
    boost::asio::io_context ctx;
    Request req{Verb::post, target, 11};
    std::optional<Response> out;
    boost::asio::co_spawn(ctx, r.Route(req, Peer{loopback}),
                          [&](std::exception_ptr, Response res) { out = std::move(res); });
    ctx.run();
    return std::move(*out);
  };
  EXPECT_EQ(route("/v1/queues/q/leases", true).body(), "lease queue=q");
  Response remote = route("/v1/queues/q/leases", false);
  EXPECT_EQ(remote.result(), Status::forbidden);
  EXPECT_NE(remote.body().find("loopback"), std::string::npos) << remote.body();
  EXPECT_EQ(route("/v1/queues/q/jobs", false).body(), "submit queue=q")
      << "other routes are as open as before";
}

TEST_F(RouterTest, SeveralCapturesInOnePattern) {
  Router r;
  r.Add(Verb::get, "/a/{x}/b/{y}", Echo("ab"));
  EXPECT_EQ(RouteWith(r, Verb::get, "/a/1/b/2").body(), "ab x=1 y=2");

  PathParams p;
  p.values = {{"x", "1"}, {"y", "2"}};
  EXPECT_EQ(p.Get("y"), "2");
  EXPECT_EQ(p.Get("z"), "");
}

TEST_F(RouterTest, QueryIsIgnoredInMatching) {
  EXPECT_EQ(Route(Verb::get, "/v1/jobs/abc?wait=5").body(), "status id=abc");
  EXPECT_EQ(Route(Verb::get, "/v1/jobs?state=queued&limit=2").body(), "list");
  EXPECT_EQ(Route(Verb::get, "/healthz?").body(), "health");
}

TEST_F(RouterTest, KnownPathWithAnotherMethodIs405WithAllow) {
  Response r = Route(Verb::put, "/v1/jobs/abc");
  EXPECT_EQ(r.result(), Status::method_not_allowed);
  EXPECT_EQ(std::string(r[Field::allow]), "GET, DELETE");
  EXPECT_EQ(std::string(r[Field::content_type]), "application/problem+json");
  auto doc = boost::json::parse(r.body()).as_object();
  EXPECT_EQ(doc.at("status").as_int64(), 405);

  Response post = Route(Verb::get, "/v1/queues/emails/jobs");
  EXPECT_EQ(post.result(), Status::method_not_allowed);
  EXPECT_EQ(std::string(post[Field::allow]), "POST");
}

TEST_F(RouterTest, UnknownPathIs404Problem) {
  for (const char* target :
       {"/", "/v1", "/v1/jobs/abc/extra/segments", "/v2/jobs", "/healthzz", "/v1/queues//jobs/x"}) {
    Response r = Route(Verb::get, target);
    EXPECT_EQ(r.result(), Status::not_found) << target;
    EXPECT_EQ(std::string(r[Field::content_type]), "application/problem+json") << target;
    auto doc = boost::json::parse(r.body()).as_object();
    EXPECT_EQ(doc.at("status").as_int64(), 404) << target;
  }
  // Literal segments are compared exactly (case-sensitive).
  EXPECT_EQ(Route(Verb::get, "/V1/jobs").result(), Status::not_found);
}

// A literal route and a capture route of the same shape: a method that only
// the literal route has must reach it instead of a 405 from the capture route.
TEST_F(RouterTest, LaterRouteWithTheMethodWinsOverAnEarlierOneWithout) {
  Router r;
  r.Add(Verb::get, "/v1/jobs/{id}", Echo("status"));
  r.Add(Verb::post, "/v1/jobs/search", Echo("search"));
  EXPECT_EQ(RouteWith(r, Verb::get, "/v1/jobs/abc").body(), "status id=abc");
  Response search = RouteWith(r, Verb::post, "/v1/jobs/search");
  EXPECT_EQ(search.result(), Status::ok) << search.body();
  EXPECT_EQ(search.body(), "search");
  // And a 405 lists the methods of every route matching the path.
  Response put = RouteWith(r, Verb::put, "/v1/jobs/search");
  EXPECT_EQ(put.result(), Status::method_not_allowed);
  EXPECT_EQ(std::string(put[Field::allow]), "GET, POST");
}

TEST(SplitPathTest, SplitsSegmentsAndDropsTheQuery) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(SplitPath("/a/b/c"), (V{"a", "b", "c"}));
  EXPECT_EQ(SplitPath("/a/b?x=/y/z"), (V{"a", "b"}));
  EXPECT_EQ(SplitPath("/"), V{});
  EXPECT_EQ(SplitPath(""), V{});
  EXPECT_EQ(SplitPath("?q"), V{});
  EXPECT_EQ(SplitPath("/a//b/"), (V{"a", "b"}));
}

// Routes `req` as is (headers included).
Response RouteRequest(const Router& router, Request& req) {
  boost::asio::io_context ctx;
  std::optional<Response> out;
  boost::asio::co_spawn(ctx, router.Route(req), [&](std::exception_ptr e, Response res) {
    if (e) std::rethrow_exception(e);
    out = std::move(res);
  });
  ctx.run();
  return std::move(*out);
}

TEST_F(RouterTest, EchoesAPlausibleRequestIdAndGeneratesOneOtherwise) {
  Request req{Verb::get, "/v1/jobs/abc", 11};
  req.set("X-Request-Id", "trace-42:abc/def");
  EXPECT_EQ(RouteRequest(router_, req)["X-Request-Id"], "trace-42:abc/def");

  for (const std::string& bad :
       {std::string("has space"), std::string(129, 'a'), std::string("quote\""), std::string("")}) {
    Request other{Verb::get, "/v1/jobs/abc", 11};
    if (!bad.empty()) other.set("X-Request-Id", bad);
    const std::string id(RouteRequest(router_, other)["X-Request-Id"]);
    EXPECT_EQ(id.size(), 16u) << "for '" << bad << "'";
    EXPECT_NE(id, bad);
  }
  Request a{Verb::get, "/healthz", 11}, b{Verb::get, "/healthz", 11};
  EXPECT_NE(RouteRequest(router_, a)["X-Request-Id"], RouteRequest(router_, b)["X-Request-Id"]);
  EXPECT_FALSE(RouteRequest(router_, a)["X-Request-Id"].empty()) << "404s get one too";
}

TEST_F(RouterTest, CountsRequestsByRoutePatternNotByPath) {
  Route(Verb::get, "/v1/jobs/aaaa");
  Route(Verb::get, "/v1/jobs/bbbb");
  Route(Verb::get, "/nowhere");
  Route(Verb::put, "/v1/jobs/aaaa");  // 405: unmatched
  metrics::MetricsText out;
  router_.WriteMetrics(out);
  const std::string& text = out.text();
  EXPECT_NE(text.find("acceptd_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\","
                      "status=\"2xx\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("acceptd_http_requests_total{method=\"\",route=\"unmatched\","
                      "status=\"4xx\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("acceptd_http_request_duration_seconds_count{method=\"GET\","
                      "route=\"/v1/jobs/{id}\"} 2\n"),
            std::string::npos);
  EXPECT_EQ(text.find("aaaa"), std::string::npos) << "a path's id is never a label";
}

TEST_F(RouterTest, TheAccessLogGetsThePatternStatusBytesAndRequestId) {
  std::vector<std::string> lines;
  router_.SetAccessLog([&](const AccessRecord& r) {
    lines.push_back(fmt::format("{} {} {} {} {} key={}", r.method, r.route, r.status,
                                r.bytes ? std::to_string(*r.bytes) : "-", r.request_id, r.key));
  });
  Request req{Verb::get, "/v1/jobs/0123abcd/result", 11};
  req.set("X-Request-Id", "r1");
  RouteRequest(router_, req);
  Route(Verb::get, "/missing");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "GET /v1/jobs/{id}/result 200 " +
                          std::to_string(std::string("result id=0123abcd").size()) + " r1 key=");
  EXPECT_TRUE(lines[1].starts_with("GET - 404 ")) << lines[1];
}

}  // namespace
}  // namespace acceptd::http
