// UiApi through the router: the embedded dashboard files (Content-Type,
// ETag/304, the /ui redirect), its access rules (loopback only without keys
// unless [ui] open; public files with keys, /v1/events for admin keys), and
// [ui] enabled = false.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "../engine/engine_test_util.h"
#include "api/ui_api.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::api {
namespace {

using http::Field;
using http::Request;
using http::Response;
using http::Status;
using http::Verb;
using store_testing::Must;
using store_testing::TempDir;

class UiApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = std::make_unique<Engine>(engine_testing::Options(),
                                       Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open"),
                                       std::vector<QueueSpec>{}, SystemClock::Instance());
  }
  // A router with the UI routes of `options` (and `keys`, if any).
  void Build(ApiOptions options, std::vector<http::ApiKey> keys = {}) {
    options.keys_enabled = !keys.empty();
    auth_ = std::make_unique<http::Authenticator>(std::move(keys));
    router_ = std::make_unique<http::Router>();
    router_->SetAuthenticator(auth_.get());
    ui_ = std::make_unique<UiApi>(*engine_, options, streams_);
    ui_->Register(*router_);
  }
  Response Get(std::string target, bool loopback = true,
               std::vector<std::pair<Field, std::string>> headers = {}) {
    boost::asio::io_context ctx;
    Request req{Verb::get, target, 11};
    for (auto& [f, v] : headers) req.set(f, v);
    std::optional<Response> out;
    boost::asio::co_spawn(ctx, router_->Route(req, http::Peer{loopback}),
                          [&](std::exception_ptr, Response res) { out = std::move(res); });
    ctx.run();
    return std::move(*out);
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<http::Authenticator> auth_;
  std::unique_ptr<http::Router> router_;
  StreamSlots streams_;  // declared before ui_: outlives it
  std::unique_ptr<UiApi> ui_;
};

TEST_F(UiApiTest, ServesTheEmbeddedFilesWithTypeAndValidators) {
  Build({});
  Response index = Get("/ui/");
  EXPECT_EQ(index.result(), Status::ok);
  EXPECT_EQ(index[Field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(index.body().find("<!doctype html>"), std::string::npos);
  EXPECT_EQ(index.body(), std::string(FindUiAsset("index.html")->body));
  EXPECT_EQ(index[Field::cache_control], "no-cache");
  EXPECT_NE(index["Content-Security-Policy"].find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(index["X-Content-Type-Options"], "nosniff");
  const std::string etag(index[Field::etag]);
  ASSERT_EQ(etag.size(), 18u) << etag;  // "16 hex digits"

  EXPECT_EQ(Get("/ui/app.js")[Field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(Get("/ui/style.css")[Field::content_type], "text/css; charset=utf-8");
  EXPECT_EQ(Get("/ui/favicon.svg")[Field::content_type], "image/svg+xml");
  EXPECT_EQ(Get("/ui/index.html").body(), index.body());
  EXPECT_EQ(Get("/ui/nope.js").result(), Status::not_found);

  Response again = Get("/ui/", true, {{Field::if_none_match, etag}});
  EXPECT_EQ(again.result(), Status::not_modified);
  EXPECT_TRUE(again.body().empty());
  EXPECT_EQ(again[Field::etag], etag);
  EXPECT_EQ(Get("/ui/", true, {{Field::if_none_match, "\"other\", W/" + etag}}).result(),
            Status::not_modified);
  EXPECT_EQ(Get("/ui/app.js", true, {{Field::if_none_match, etag}}).result(), Status::ok)
      << "another file's tag";
}

TEST_F(UiApiTest, EveryPageUsesRelativeUrlsOnly) {
  // Behind a reverse proxy under a path prefix, an absolute "/..." would leave it.
  for (const UiAsset& a : UiAssets()) {
    std::string body(a.body);
    // The SVG namespace is a name, not an address.
    for (size_t p; (p = body.find("http://www.w3.org/2000/svg")) != std::string::npos;) {
      body.erase(p, 26);
    }
    for (const char* bad :
         {"src=\"/", "href=\"/", "url(/", "fetch('/", "from '/", "http://", "https://"}) {
      EXPECT_EQ(body.find(bad), std::string::npos) << a.name << " contains " << bad;
    }
  }
}

TEST_F(UiApiTest, SlashlessUiRedirectsRelatively) {
  Build({});
  Response r = Get("/ui");
  EXPECT_EQ(r.result(), Status::permanent_redirect);
  EXPECT_EQ(r[Field::location], "ui/");
}

TEST_F(UiApiTest, WithoutKeysOnlyLoopbackClientsUnlessOpened) {
  Build({});
  EXPECT_EQ(Get("/ui/", true).result(), Status::ok);
  Response remote = Get("/ui/", false);
  EXPECT_EQ(remote.result(), Status::forbidden);
  EXPECT_NE(remote.body().find("[ui] open"), std::string::npos) << remote.body();
  EXPECT_EQ(Get("/ui/app.js", false).result(), Status::forbidden);
  EXPECT_EQ(Get("/ui", false).result(), Status::forbidden) << "not even the redirect";

  ApiOptions open;
  open.ui_open = true;
  Build(open);
  EXPECT_EQ(Get("/ui/", false).result(), Status::ok);
}

TEST_F(UiApiTest, WithKeysTheFilesArePublicAndEventsNeedAdmin) {
  http::ApiKey admin{"ops", http::HashKey("k-admin"), {http::Scope::kAdmin}, ""};
  http::ApiKey reader{"reader", http::HashKey("k-read"), {http::Scope::kRead}, ""};
  http::ApiKey tenant_admin{"acme-ops", http::HashKey("k-acme"), {http::Scope::kAdmin}, "acme"};
  Build({}, {admin, reader, tenant_admin});
  EXPECT_EQ(Get("/ui/", false).result(), Status::ok) << "the page asks for a key itself";
  EXPECT_EQ(Get("/v1/events").result(), Status::unauthorized);
  EXPECT_EQ(Get("/v1/events", true, {{Field::authorization, "Bearer k-read"}}).result(),
            Status::forbidden);
  EXPECT_EQ(Get("/v1/events", true, {{Field::authorization, "Bearer k-acme"}}).result(),
            Status::forbidden)
      << "a tenant's key would see every tenant's jobs";
  Response ok = Get("/v1/events", true, {{Field::authorization, "Bearer k-admin"}});
  EXPECT_EQ(ok.result(), Status::ok);
  EXPECT_EQ(ok[Field::content_type], "text/event-stream");
  EXPECT_TRUE(ok.stream);
}

TEST_F(UiApiTest, DisabledUiHasNoRoutesButEventsStay) {
  ApiOptions off;
  off.ui_enabled = false;
  Build(off);
  EXPECT_EQ(Get("/ui/").result(), Status::not_found);
  EXPECT_EQ(Get("/ui/app.js").result(), Status::not_found);
  EXPECT_EQ(Get("/v1/events").result(), Status::ok);
}

}  // namespace
}  // namespace acceptd::api
