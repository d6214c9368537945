#include "http/router.h"

#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <string>

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

}  // namespace
}  // namespace acceptd::http
