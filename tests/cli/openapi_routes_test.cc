// docs/openapi.json (as embedded in the binary) against the route table of
// a server wired like `acceptd serve` (cli/server_routes.h): every route is
// documented, every documented operation is routed, and each operation's
// security requirement says the scope the route asks for. The live answers
// are checked against the document by tests/openapi/check_openapi.py.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "../engine/engine_test_util.h"
#include "api/openapi_api.h"
#include "cli/server_routes.h"
#include "http/auth.h"
#include "http/router.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

namespace json = boost::json;
using store_testing::Must;
using store_testing::TempDir;

// What an operation needs, spelled as in the document's security
// requirement: "public" (security: []), "any key" ([{"bearer": []}]) or a
// scope name ([{"bearer": ["read"]}]).
std::string AccessName(const http::Access& access) {
  if (access.is_public()) return "public";
  if (auto scope = access.scope()) return std::string(http::ToString(*scope));
  return "any key";
}

// "GET /v1/jobs/{id}" -> access name, from the router.
std::map<std::string, std::string> RoutedOperations(const http::Router& router) {
  std::map<std::string, std::string> out;
  for (const http::RouteInfo& r : router.Routes()) {
    const std::string key = std::string(http::beast_http::to_string(r.method)) + " " + r.pattern;
    EXPECT_TRUE(out.emplace(key, AccessName(r.access)).second) << "routed twice: " << key;
  }
  return out;
}

// The same, from the document; a security requirement of another form is
// a test failure.
std::map<std::string, std::string> DocumentedOperations(const json::object& doc) {
  static const std::set<std::string> kMethods = {"get",     "put",  "post",  "delete",
                                                 "options", "head", "patch", "trace"};
  std::map<std::string, std::string> out;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [key, operation] : item.as_object()) {
      if (!kMethods.count(std::string(key))) continue;
      std::string method(key);
      for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const std::string name = method + " " + std::string(path);
      const json::value* security = operation.as_object().if_contains("security");
      if (!security) {
        ADD_FAILURE() << name << ": no security requirement (use [] for a public route)";
        continue;
      }
      const json::array& requirements = security->as_array();
      std::string access;
      if (requirements.empty()) {
        access = "public";
      } else if (requirements.size() == 1 && requirements[0].as_object().size() == 1 &&
                 requirements[0].as_object().contains("bearer")) {
        const json::array& scopes = requirements[0].at("bearer").as_array();
        if (scopes.empty()) {
          access = "any key";
        } else if (scopes.size() == 1) {
          access = std::string(scopes[0].as_string());
        }
      }
      if (access.empty()) {
        ADD_FAILURE() << name << ": security must be [], [{\"bearer\": []}] or "
                      << "[{\"bearer\": [\"<scope>\"]}], not " << json::serialize(*security);
        continue;
      }
      out.emplace(name, access);
    }
  }
  return out;
}

class OpenApiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open store");
    std::vector<QueueSpec> queues;
    queues.push_back(engine_testing::Queue(
        "q", engine_testing::MakeHandler([](std::string_view, std::string_view, JobContext&) {
          return HandlerSuccess{"{}", "application/json"};
        })));
    engine_ = std::make_unique<Engine>(engine_testing::Options(), std::move(store),
                                       std::move(queues), SystemClock::Instance());
    routes_ = std::make_unique<ServerRoutes>(*engine_, router_, api_options_, api::CompatOptions{});
    routes_->Register(router_);
  }

  static json::object Document() {
    boost::system::error_code ec;
    json::value doc = json::parse(api::OpenApiDocument(), ec);
    if (ec || !doc.is_object()) {
      ADD_FAILURE() << "docs/openapi.json is not a JSON object: " << ec.message();
      return {};
    }
    return std::move(doc.as_object());
  }

  TempDir dir_;
  api::ApiOptions api_options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ServerRoutes> routes_;
  http::Router router_;
};

TEST_F(OpenApiRoutesTest, EveryRouteIsDocumentedAndEveryDocumentedOperationRouted) {
  const json::object doc = Document();
  ASSERT_FALSE(doc.empty());
  const auto routed = RoutedOperations(router_);
  const auto documented = DocumentedOperations(doc);
  ASSERT_FALSE(routed.empty());
  for (const auto& [op, access] : routed) {
    EXPECT_TRUE(documented.count(op)) << op << " is routed but not in docs/openapi.json";
  }
  for (const auto& [op, access] : documented) {
    EXPECT_TRUE(routed.count(op)) << op << " is in docs/openapi.json but no route answers it";
  }
}

TEST_F(OpenApiRoutesTest, EachOperationDocumentsTheScopeItsRouteNeeds) {
  const auto routed = RoutedOperations(router_);
  const auto documented = DocumentedOperations(Document());
  for (const auto& [op, access] : routed) {
    auto it = documented.find(op);
    if (it == documented.end()) continue;  // the test above reports it
    EXPECT_EQ(it->second, access) << op << ": the document's security requirement";
  }
}

TEST_F(OpenApiRoutesTest, TheDocumentIsOpenApi31) {
  const json::object doc = Document();
  ASSERT_TRUE(doc.contains("openapi"));
  EXPECT_TRUE(doc.at("openapi").as_string().starts_with("3.1.")) << doc.at("openapi");
  ASSERT_TRUE(doc.contains("paths"));
  ASSERT_TRUE(doc.contains("components"));
}

// GET /openapi.json answers the embedded document, with API keys configured
// and no credentials: it is public.
TEST_F(OpenApiRoutesTest, ServedWithoutAKeyAsJson) {
  http::ApiKey key;
  key.name = "reader";
  key.sha256 = http::HashKey("acd_secret");
  key.scopes = {http::Scope::kRead};
  const http::Authenticator auth({key});
  router_.SetAuthenticator(&auth);
  boost::asio::io_context ctx;
  http::Request req{http::Verb::get, "/openapi.json", 11};
  std::optional<http::Response> res;
  boost::asio::co_spawn(ctx, router_.Route(req), [&](std::exception_ptr e, http::Response r) {
    ASSERT_FALSE(e);
    res = std::move(r);
  });
  ctx.run();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), http::Status::ok);
  EXPECT_EQ((*res)[http::Field::content_type], "application/json");
  EXPECT_EQ(res->body(), api::OpenApiDocument());
}

}  // namespace
}  // namespace acceptd
