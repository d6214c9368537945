// API keys, scopes and tenants against the real binary (docs/api.md,
// "Authentication"): keys come from `acceptd keygen`, as an operator would
// make them.
#include <gtest/gtest.h>

#include <set>

#include "harness.h"

namespace acceptd::itest {
namespace {

struct Key {
  std::string key;   // what the client sends
  std::string toml;  // the [[api_keys]] lines keygen printed
};

// `acceptd keygen`: the key on the first line, config lines after it.
Key Keygen(const std::string& name, const std::string& scopes, const std::string& tenant = "") {
  std::vector<std::string> args = {"keygen", "--name", name, "--scopes", scopes};
  if (!tenant.empty()) args.insert(args.end(), {"--tenant", tenant});
  ProcessResult r = RunAcceptd(args);
  if (r.exit_code != 0) throw std::runtime_error("keygen failed: " + r.err);
  const size_t eol = r.out.find('\n');
  return Key{r.out.substr(0, eol), r.out.substr(eol + 1)};
}

Headers Bearer(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }

// The whole response as it came off the wire: one request on a connection the
// server closes afterwards.
std::string RawResponse(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& key, const std::string& body = "") {
  RawConnection c(port);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  // A fixed request id: the server echoes it, so equal answers stay byte-identical.
  req += "Authorization: Bearer " + key + "\r\nConnection: close\r\nX-Request-Id: probe\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!c.Send(req)) throw std::runtime_error("send failed");
  if (!c.WaitClosed(10s)) throw std::runtime_error("the server did not close");
  return c.received();
}

class IntegrationAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    acme_ = new Key(Keygen("acme-app", "submit,read,cancel", "acme"));
    globex_ = new Key(Keygen("globex-app", "submit,read,cancel", "globex"));
    reader_ = new Key(Keygen("acme-reader", "read", "acme"));
    ops_ = new Key(Keygen("ops", "admin"));
    worker_ = new Key(Keygen("resizer", "worker"));
    tenant_worker_ = new Key(Keygen("acme-worker", "worker", "acme"));
  }
  static void TearDownTestSuite() {
    for (Key* k : {acme_, globex_, reader_, ops_, worker_, tenant_worker_}) delete k;
  }
  static ServerOptions WithKeys() {
    return ServerOptions().WithQueues(acme_->toml + globex_->toml + reader_->toml + ops_->toml +
                                      worker_->toml + tenant_worker_->toml +
                                      R"(
[queues.greeting]
handler = "greeting"
[queues.echo]
handler = "echo"
[queues.sleep]
handler = "sleep"
[queues.fail]
handler = "fail"
[queues.work]
handler = "external"
)");
  }

  HttpResponse As(const Key& k, std::string_view method, std::string_view target,
                  std::string body = {}) {
    Headers h = Bearer(k.key);
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    return Http(s_.port(), method, target, std::move(body), h);
  }
  std::string SubmitAs(const Key& k, std::string_view queue, std::string body) {
    HttpResponse r = As(k, "POST", "/v1/queues/" + std::string(queue) + "/jobs", std::move(body));
    if (r.status != 202) throw std::runtime_error("submit: " + Describe(r));
    return Str(r.Json(), "id");
  }

  static Key* acme_;
  static Key* globex_;
  static Key* reader_;
  static Key* ops_;
  static Key* worker_;
  static Key* tenant_worker_;
  ServerProcess s_{WithKeys()};
};
Key* IntegrationAuthTest::acme_ = nullptr;
Key* IntegrationAuthTest::globex_ = nullptr;
Key* IntegrationAuthTest::reader_ = nullptr;
Key* IntegrationAuthTest::ops_ = nullptr;
Key* IntegrationAuthTest::worker_ = nullptr;
Key* IntegrationAuthTest::tenant_worker_ = nullptr;

const std::string kSomeId = "0123456789abcdef0123456789abcdef";

// Every route of the API, with a body where it needs one.
const std::vector<std::tuple<std::string, std::string, std::string>>& AllRoutes() {
  static const std::vector<std::tuple<std::string, std::string, std::string>> routes = {
      {"POST", "/v1/queues/echo/jobs", "{}"},
      {"GET", "/v1/jobs/" + kSomeId, ""},
      {"DELETE", "/v1/jobs/" + kSomeId, ""},
      {"GET", "/v1/jobs/" + kSomeId + "/result", ""},
      {"GET", "/v1/jobs/" + kSomeId + "/events", ""},
      {"POST", "/v1/jobs/" + kSomeId + "/cancel", ""},
      {"GET", "/v1/jobs", ""},
      {"GET", "/v1/jobs?q=x", ""},
      {"GET", "/v1/jobs/" + kSomeId + "/attempts", ""},
      {"GET", "/v1/stats", ""},
      {"GET", "/v1/queues", ""},
      {"GET", "/readyz", ""},
      {"POST", "/v1/queues/work/leases?wait=0", ""},
      {"POST", "/v1/leases/" + kSomeId + ".1/heartbeat", ""},
      {"POST", "/v1/submit-job", R"({"name":"x"})"},
      {"POST", "/v1/pool-job", R"({"message_token":")" + kSomeId + "\"}"},
      {"GET", "/no/such/route", ""},
  };
  return routes;
}

TEST_F(IntegrationAuthTest, HealthzIsOpenAndEveryOtherRouteNeedsAKey) {
  EXPECT_EQ(s_.Get("/healthz").status, 200);
  for (const auto& [method, target, body] : AllRoutes()) {
    HttpResponse none =
        Http(s_.port(), method, target, body, {{"Content-Type", "application/json"}});
    ExpectProblem(none, 401, method + " " + target);
    EXPECT_EQ(none.Header("WWW-Authenticate"), R"(Bearer realm="acceptd")") << target;
    HttpResponse wrong =
        Http(s_.port(), method, target, body, {{"Authorization", "Bearer acd_not-a-key"}});
    ExpectProblem(wrong, 401, method + " " + target);
    EXPECT_EQ(wrong.Header("WWW-Authenticate"), R"(Bearer realm="acceptd", error="invalid_token")")
        << target;
  }
  EXPECT_EQ(As(*reader_, "GET", "/readyz").status, 200) << "any valid key may ask readiness";
  // Keys never reach the log; key names do.
  const std::string log = s_.Stderr();
  for (const Key* k : {acme_, globex_, reader_, ops_}) {
    EXPECT_EQ(log.find(k->key), std::string::npos);
  }
  EXPECT_EQ(log.find("acd_not-a-key"), std::string::npos);
}

TEST_F(IntegrationAuthTest, AKeyWithoutTheRoutesScopeIs403NamingIt) {
  const std::string id = SubmitAs(*acme_, "sleep", R"({"ms":60000})");
  struct Case {
    std::string method, target, body, scope;
  };
  for (const Case& c : std::vector<Case>{
           {"POST", "/v1/queues/echo/jobs", "{}", "submit"},
           {"POST", "/v1/submit-job", R"({"name":"x"})", "submit"},
           {"POST", "/v1/jobs/" + id + "/cancel", "", "cancel"},
           {"DELETE", "/v1/jobs/" + id, "", "cancel"},
       }) {
    HttpResponse r = As(*reader_, c.method, c.target, c.body);
    ExpectProblem(r, 403, c.method + " " + c.target);
    EXPECT_EQ(Str(r.Json(), "scope"), c.scope) << c.target;
  }
  EXPECT_EQ(As(*reader_, "GET", "/v1/jobs/" + id).status, 202) << "read is enough for status";
  EXPECT_NE(s_.Stderr().find("key 'acme-reader' lacks scope 'cancel'"), std::string::npos);
  // admin is every scope, and sees every tenant's jobs.
  EXPECT_EQ(As(*ops_, "POST", "/v1/jobs/" + id + "/cancel").status, 202);
  EXPECT_EQ(As(*ops_, "POST", "/v1/queues/echo/jobs", "{}").status, 202);
}

// A job of another tenant is answered byte for byte as an id that never
// existed, on every route that takes an id.
TEST_F(IntegrationAuthTest, WorkerRoutesNeedTheWorkerScopeAndAKeyWithoutATenant) {
  const std::string id = SubmitAs(*acme_, "work", R"({"n":1})");
  // An application key may submit, but not lease.
  HttpResponse app = As(*acme_, "POST", "/v1/queues/work/leases?wait=0");
  ExpectProblem(app, 403);
  // A worker key with a tenant would see every tenant's payloads.
  ExpectProblem(As(*tenant_worker_, "POST", "/v1/queues/work/leases?wait=0"), 403);
  // A worker key leases, and may not read or submit.
  HttpResponse leased = As(*worker_, "POST", "/v1/queues/work/leases?wait=5");
  ASSERT_EQ(leased.status, 200) << Describe(leased);
  EXPECT_EQ(leased.Header("Acceptd-Job-Id"), id);
  ExpectProblem(As(*worker_, "GET", "/v1/jobs/" + id), 403);
  ExpectProblem(As(*worker_, "POST", "/v1/queues/echo/jobs", "{}"), 403);
  const std::string lease = leased.Header("Acceptd-Lease");
  ExpectProblem(As(*acme_, "POST", "/v1/leases/" + lease + "/complete", "{}"), 403);
  HttpResponse done = As(*worker_, "POST", "/v1/leases/" + lease + "/complete", R"({"ok":1})");
  ASSERT_EQ(done.status, 200) << Describe(done);
  EXPECT_EQ(As(*acme_, "GET", "/v1/jobs/" + id).status, 302);
  // The admin key may do anything a worker key may.
  SubmitAs(*acme_, "work", "{}");
  EXPECT_EQ(As(*ops_, "POST", "/v1/queues/work/leases?wait=5").status, 200);
}

TEST_F(IntegrationAuthTest, AnotherTenantsJobIs404ByteIdenticalToAnUnknownId) {
  const std::string running = SubmitAs(*acme_, "sleep", R"({"ms":60000})");
  const std::string done = SubmitAs(*acme_, "echo", R"({"x":1})");
  ASSERT_TRUE(WaitFor(
      [&] { return Str(As(*acme_, "GET", "/v1/jobs/" + running).Json(), "state") == "running"; },
      20s));
  ASSERT_TRUE(WaitFor(
      [&] { return As(*acme_, "GET", "/v1/jobs/" + done + "/result").status == 200; }, 20s));
  const std::string unknown = "fedcba9876543210fedcba9876543210";
  struct Case {
    std::string method, suffix;
  };
  const std::vector<Case> cases = {{"GET", ""},        {"GET", "?wait=5"},  {"GET", "/result"},
                                   {"GET", "/events"}, {"POST", "/cancel"}, {"DELETE", ""}};
  for (const std::string& job : {running, done}) {
    for (const Case& c : cases) {
      const std::string theirs =
          RawResponse(s_.port(), c.method, "/v1/jobs/" + job + c.suffix, globex_->key);
      const std::string never =
          RawResponse(s_.port(), c.method, "/v1/jobs/" + unknown + c.suffix, globex_->key);
      EXPECT_EQ(theirs, never) << c.method << " " << c.suffix;
      EXPECT_EQ(theirs.substr(0, 22), "HTTP/1.1 404 Not Found") << theirs;
    }
    const std::string pool_theirs = RawResponse(s_.port(), "POST", "/v1/pool-job", globex_->key,
                                                R"({"message_token":")" + job + "\"}");
    const std::string pool_never = RawResponse(s_.port(), "POST", "/v1/pool-job", globex_->key,
                                               R"({"message_token":")" + unknown + "\"}");
    EXPECT_EQ(pool_theirs, pool_never);
  }
  // None of that touched acme's jobs.
  HttpResponse still = As(*acme_, "GET", "/v1/jobs/" + running);
  EXPECT_EQ(still.status, 202) << Describe(still);
  EXPECT_EQ(Str(still.Json(), "state"), "running");
  EXPECT_FALSE(still.Json().at("cancel_requested").as_bool());
  EXPECT_EQ(As(*acme_, "GET", "/v1/jobs/" + done + "/result").status, 200);
  EXPECT_EQ(As(*acme_, "POST", "/v1/jobs/" + running + "/cancel").status, 202);
}

TEST_F(IntegrationAuthTest, ListShowsATenantOnlyItsOwnJobs) {
  std::set<std::string> acme_ids = {SubmitAs(*acme_, "echo", "{}"), SubmitAs(*acme_, "echo", "{}")};
  std::set<std::string> globex_ids = {SubmitAs(*globex_, "echo", "{}")};
  // The compat submit belongs to its key's tenant too.
  HttpResponse compat = As(*globex_, "POST", "/v1/submit-job", R"({"name":"g"})");
  ASSERT_EQ(compat.status, 202) << Describe(compat);
  globex_ids.insert(Str(compat.Json(), "message_token"));
  auto listed = [&](const Key& k) {
    HttpResponse r = As(k, "GET", "/v1/jobs?limit=1000");
    EXPECT_EQ(r.status, 200) << Describe(r);
    std::set<std::string> ids;
    const json::value doc = r.Json();
    for (const json::value& j : doc.at("jobs").as_array()) ids.insert(Str(j, "id"));
    return ids;
  };
  EXPECT_EQ(listed(*acme_), acme_ids);
  EXPECT_EQ(listed(*reader_), acme_ids) << "every key of the tenant sees its jobs";
  EXPECT_EQ(listed(*globex_), globex_ids);
  EXPECT_EQ(listed(*ops_).size(), 4u) << "a key without a tenant sees every job";
  for (const std::string& id : globex_ids) {
    EXPECT_EQ(As(*acme_, "GET", "/v1/jobs/" + id).status, 404);
    EXPECT_NE(As(*globex_, "GET", "/v1/jobs/" + id).status, 404);
  }
}

TEST_F(IntegrationAuthTest, IdempotencyKeysOfTwoTenantsDoNotCollide) {
  auto submit = [&](const Key& k) {
    Headers h = Bearer(k.key);
    h.emplace_back("Content-Type", "application/json");
    h.emplace_back("Idempotency-Key", "order-17");
    return Http(s_.port(), "POST", "/v1/queues/echo/jobs", R"({"n":1})", h);
  };
  HttpResponse a = submit(*acme_);
  HttpResponse g = submit(*globex_);
  ASSERT_EQ(a.status, 202) << Describe(a);
  ASSERT_EQ(g.status, 202) << Describe(g);
  EXPECT_NE(Str(a.Json(), "id"), Str(g.Json(), "id")) << "same key, two tenants: two jobs";
  EXPECT_TRUE(g.Header("Idempotent-Replayed").empty());
  HttpResponse again = submit(*acme_);
  EXPECT_EQ(Str(again.Json(), "id"), Str(a.Json(), "id"));
  EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
}

TEST_F(IntegrationAuthTest, TheClientCommandsSendTheApiKey) {
  const std::string server = "http://127.0.0.1:" + std::to_string(s_.port());
  ProcessResult ok = RunAcceptd({"submit", "echo", "--data", R"({"hi":1})", "--wait", "--server",
                                 server, "--api-key", acme_->key});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find(R"({"hi":1})"), std::string::npos) << ok.out;
  ProcessResult refused = RunAcceptd({"list", "--server", server});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("401"), std::string::npos) << refused.err;
  ProcessResult forbidden =
      RunAcceptd({"submit", "echo", "--data", "{}", "--server", server, "--api-key", reader_->key});
  EXPECT_EQ(forbidden.exit_code, 2);
  EXPECT_NE(forbidden.err.find("403"), std::string::npos) << forbidden.err;
}

}  // namespace
}  // namespace acceptd::itest
