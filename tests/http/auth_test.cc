#include "http/auth.h"

#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <set>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "http/router.h"

namespace acceptd::http {
namespace {

ApiKey Key(std::string name, std::string_view secret, Scopes scopes, std::string tenant = "") {
  return ApiKey{std::move(name), HashKey(secret), scopes, std::move(tenant)};
}

Authenticator ThreeKeys() {
  return Authenticator({Key("frontend", "acd_front", {Scope::kSubmit, Scope::kRead}, "acme"),
                        Key("ops", "acd_ops", {Scope::kAdmin}),
                        Key("reader", "acd_read", {Scope::kRead}, "globex")});
}

TEST(AuthenticatorTest, NoKeysMeansDisabled) {
  EXPECT_FALSE(Authenticator().enabled());
  EXPECT_TRUE(ThreeKeys().enabled());
}

TEST(AuthenticatorTest, MissingCredentialsAreKMissing) {
  auto r = ThreeKeys().Authenticate("");
  ASSERT_TRUE(std::holds_alternative<AuthFailure>(r));
  EXPECT_EQ(std::get<AuthFailure>(r), AuthFailure::kMissing);
}

TEST(AuthenticatorTest, WrongKeysAndOtherSchemesAreKInvalid) {
  for (const char* header :
       {"Bearer acd_nope", "Bearer ", "Bearer", "Basic YWxhZGRpbjpv", "acd_front",
        "Bearer acd_front2", "Bearer acd_fron", "Beareracd_front"}) {
    auto r = ThreeKeys().Authenticate(header);
    ASSERT_TRUE(std::holds_alternative<AuthFailure>(r)) << header;
    EXPECT_EQ(std::get<AuthFailure>(r), AuthFailure::kInvalid) << header;
  }
  EXPECT_TRUE(std::holds_alternative<AuthFailure>(
      ThreeKeys().Authenticate("Bearer " + std::string(4096, 'x'))));
}

TEST(AuthenticatorTest, EachKeyMapsToItsPrincipalWhateverItsPosition) {
  const Authenticator auth = ThreeKeys();
  auto front = auth.Authenticate("Bearer acd_front");
  ASSERT_TRUE(std::holds_alternative<Principal>(front));
  EXPECT_EQ(std::get<Principal>(front).name, "frontend");
  EXPECT_EQ(std::get<Principal>(front).tenant, "acme");
  EXPECT_EQ(std::get<Principal>(front).scopes, (Scopes{Scope::kSubmit, Scope::kRead}));
  auto ops = auth.Authenticate("Bearer acd_ops");
  ASSERT_TRUE(std::holds_alternative<Principal>(ops));
  EXPECT_EQ(std::get<Principal>(ops).name, "ops");
  EXPECT_EQ(std::get<Principal>(ops).tenant, "");
  // The last key too: the loop does not stop early, nor miss the end.
  auto reader = auth.Authenticate("Bearer acd_read");
  ASSERT_TRUE(std::holds_alternative<Principal>(reader));
  EXPECT_EQ(std::get<Principal>(reader).name, "reader");
}

TEST(AuthenticatorTest, SchemeIsCaseInsensitiveAndSpacesAroundTheTokenAreIgnored) {
  for (const char* header :
       {"bearer acd_ops", "BEARER acd_ops", "Bearer   acd_ops ", "Bearer acd_ops\t"}) {
    EXPECT_TRUE(std::holds_alternative<Principal>(ThreeKeys().Authenticate(header))) << header;
  }
}

TEST(ScopesTest, AdminImpliesEveryScope) {
  const Scopes admin{Scope::kAdmin};
  for (int i = 0; i < kScopeCount; ++i) EXPECT_TRUE(admin.Allows(static_cast<Scope>(i)));
  const Scopes some{Scope::kSubmit, Scope::kRead};
  EXPECT_TRUE(some.Allows(Scope::kSubmit));
  EXPECT_TRUE(some.Allows(Scope::kRead));
  EXPECT_FALSE(some.Allows(Scope::kCancel));
  EXPECT_FALSE(some.Allows(Scope::kWorker));
  EXPECT_FALSE(some.Allows(Scope::kAdmin));
  EXPECT_EQ(some.ToString(), "submit,read");
}

TEST(ScopesTest, ParseScopeKnowsExactlyTheFiveNames) {
  for (const char* name : {"submit", "read", "cancel", "worker", "admin"}) {
    auto s = ParseScope(name);
    ASSERT_TRUE(s) << name;
    EXPECT_EQ(ToString(*s), name);
  }
  for (const char* name : {"", "Submit", "write", "admin "}) EXPECT_FALSE(ParseScope(name));
}

TEST(KeyHashTest, HashKeyIsSha256AndHexRoundTrips) {
  // FIPS 180-2 test vector.
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(ToHex(HashKey("abc")), abc);
  auto parsed = ParseKeyHash(abc);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, HashKey("abc"));
  std::string upper = abc;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(ParseKeyHash(upper), parsed);
  EXPECT_FALSE(ParseKeyHash(abc.substr(1)));
  EXPECT_FALSE(ParseKeyHash(abc + "0"));
  EXPECT_FALSE(ParseKeyHash("g" + abc.substr(1)));
  EXPECT_FALSE(ParseKeyHash(""));
}

TEST(KeyHashTest, GeneratedKeysAreRandomBase64UrlWithPrefix) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto key = GenerateKey();
    ASSERT_TRUE(key.ok());
    ASSERT_EQ(key->size(), 4u + 43u) << *key;
    EXPECT_EQ(key->substr(0, 4), "acd_");
    for (char c : key->substr(4))
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << *key;
    EXPECT_TRUE(seen.insert(*key).second) << "a repeated key";
  }
}

TEST(AuthResponsesTest, UnauthorizedCarriesWwwAuthenticatePerRfc6750) {
  Response missing = Unauthorized(AuthFailure::kMissing);
  EXPECT_EQ(missing.result(), Status::unauthorized);
  EXPECT_EQ(missing[Field::www_authenticate], R"(Bearer realm="acceptd")");
  EXPECT_EQ(missing[Field::content_type], "application/problem+json");
  Response invalid = Unauthorized(AuthFailure::kInvalid);
  EXPECT_EQ(invalid[Field::www_authenticate], R"(Bearer realm="acceptd", error="invalid_token")");
  EXPECT_EQ(boost::json::parse(invalid.body()).at("code"), "unauthorized");
}

TEST(AuthResponsesTest, ForbiddenNamesTheMissingScope) {
  Response res = Forbidden(Scope::kCancel);
  EXPECT_EQ(res.result(), Status::forbidden);
  auto doc = boost::json::parse(res.body());
  EXPECT_EQ(doc.at("scope"), "cancel");
  EXPECT_EQ(doc.at("code"), "forbidden");
  EXPECT_NE(doc.at("detail").as_string().find("cancel"), boost::json::string::npos);
}

// The router enforces each route's Access and hands the handler the caller.
class RouterAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto who = [](Request&, const PathParams& p) -> boost::asio::awaitable<Response> {
      Response res{Status::ok, 11};
      res.body() = p.principal ? p.principal->name + "@" + p.principal->tenant : "(nobody)";
      co_return res;
    };
    router_.Add(Verb::get, "/healthz", Access::Public(), who);
    router_.Add(Verb::get, "/readyz", Access::AnyKey(), who);
    router_.Add(Verb::post, "/v1/queues/{queue}/jobs", Access::Need(Scope::kSubmit), who);
    router_.Add(Verb::post, "/v1/jobs/{id}/cancel", Access::Need(Scope::kCancel), who);
    router_.Add(Verb::get, "/undeclared", who);
  }

  Response Route(Verb method, std::string target, std::string authorization = "") {
    boost::asio::io_context ctx;
    Request req{method, target, 11};
    if (!authorization.empty()) req.set(Field::authorization, authorization);
    std::optional<Response> out;
    std::exception_ptr error;
    boost::asio::co_spawn(ctx, router_.Route(req), [&](std::exception_ptr e, Response res) {
      error = e;
      out = std::move(res);
    });
    ctx.run();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
  }

  Authenticator auth_ = ThreeKeys();
  Router router_;
};

TEST_F(RouterAuthTest, WithoutAnAuthenticatorNothingIsCheckedAndThereIsNoPrincipal) {
  Response r = Route(Verb::post, "/v1/jobs/x/cancel");
  EXPECT_EQ(r.result(), Status::ok);
  EXPECT_EQ(r.body(), "(nobody)");
}

TEST_F(RouterAuthTest, PublicRoutesNeedNoKey) {
  router_.SetAuthenticator(&auth_);
  Response r = Route(Verb::get, "/healthz");
  EXPECT_EQ(r.result(), Status::ok);
  EXPECT_EQ(r.body(), "(nobody)");
}

TEST_F(RouterAuthTest, OtherRoutesAndUnknownPathsNeedAValidKey) {
  router_.SetAuthenticator(&auth_);
  for (auto [verb, target] :
       {std::pair{Verb::get, "/readyz"}, std::pair{Verb::post, "/v1/queues/q/jobs"},
        std::pair{Verb::get, "/no/such/path"}, std::pair{Verb::delete_, "/healthz/x"}}) {
    Response missing = Route(verb, target);
    EXPECT_EQ(missing.result(), Status::unauthorized) << target;
    EXPECT_EQ(missing[Field::www_authenticate], R"(Bearer realm="acceptd")") << target;
    Response wrong = Route(verb, target, "Bearer acd_wrong");
    EXPECT_EQ(wrong.result(), Status::unauthorized) << target;
    EXPECT_EQ(wrong[Field::www_authenticate], R"(Bearer realm="acceptd", error="invalid_token")");
  }
  EXPECT_EQ(Route(Verb::get, "/no/such/path", "Bearer acd_read").result(), Status::not_found);
  EXPECT_EQ(Route(Verb::get, "/readyz", "Bearer acd_read").result(), Status::ok);
}

TEST_F(RouterAuthTest, AKeyWithoutTheRoutesScopeIs403AndTheHandlerSeesThePrincipal) {
  router_.SetAuthenticator(&auth_);
  Response denied = Route(Verb::post, "/v1/jobs/x/cancel", "Bearer acd_front");
  EXPECT_EQ(denied.result(), Status::forbidden);
  EXPECT_EQ(boost::json::parse(denied.body()).at("scope"), "cancel");
  Response ok = Route(Verb::post, "/v1/queues/q/jobs", "Bearer acd_front");
  EXPECT_EQ(ok.result(), Status::ok);
  EXPECT_EQ(ok.body(), "frontend@acme");
  EXPECT_EQ(Route(Verb::post, "/v1/jobs/x/cancel", "Bearer acd_ops").body(), "ops@");
}

TEST_F(RouterAuthTest, ARouteThatDeclaresNoAccessIsForAdminsOnly) {
  router_.SetAuthenticator(&auth_);
  EXPECT_EQ(Route(Verb::get, "/undeclared", "Bearer acd_front").result(), Status::forbidden);
  EXPECT_EQ(Route(Verb::get, "/undeclared", "Bearer acd_ops").result(), Status::ok);
}

}  // namespace
}  // namespace acceptd::http
