// Every documented error status: each is an application/problem+json
// document with type, title, status and detail.
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

const std::string kUnknownId = "0123456789abcdef0123456789abcdef";

std::set<std::string> SplitAllow(const std::string& allow) {
  std::set<std::string> out;
  std::stringstream in(allow);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(' ');
    const auto e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.insert(item.substr(b, e - b + 1));
  }
  return out;
}

// How many jobs the server holds (all queues, all states).
size_t JobCount(const ServerProcess& s) {
  HttpResponse r = s.Get("/v1/jobs?limit=1000");
  if (r.status != 200) throw std::runtime_error("list: " + Describe(r));
  return r.Json().at("jobs").as_array().size();
}

TEST(IntegrationErrorsTest, UnknownQueueIs404) {
  ServerProcess s;
  HttpResponse r = s.Submit("no-such-queue", R"({"name":"x"})");
  ExpectProblem(r, 404);
  EXPECT_NE(Str(r.Json(), "detail").find("no-such-queue"), std::string::npos) << r.body;
  EXPECT_EQ(JobCount(s), 0u);
}

TEST(IntegrationErrorsTest, UnknownJobIs404OnEveryJobEndpoint) {
  ServerProcess s;
  ExpectProblem(s.Get("/v1/jobs/" + kUnknownId), 404, "status");
  ExpectProblem(s.Get("/v1/jobs/" + kUnknownId + "/result"), 404, "result");
  ExpectProblem(s.Post("/v1/jobs/" + kUnknownId + "/cancel"), 404, "cancel");
  ExpectProblem(s.Delete("/v1/jobs/" + kUnknownId), 404, "delete");
}

TEST(IntegrationErrorsTest, MalformedJobIdsAre404) {
  ServerProcess s;
  const std::string real = s.SubmitOk("echo", "x");
  std::string upper = real;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::vector<std::string> bad = {
      "xyz",
      real.substr(0, 31),
      real + "0",
      "g" + real.substr(1),
      upper == real ? "ABCDEF0123456789ABCDEF0123456789" : upper,  // one spelling per id
      "%30" + real.substr(1),
  };
  for (const std::string& id : bad) {
    SCOPED_TRACE("id " + id);
    ExpectProblem(s.Get("/v1/jobs/" + id), 404, "status");
    ExpectProblem(s.Get("/v1/jobs/" + id + "/result"), 404, "result");
    ExpectProblem(s.Post("/v1/jobs/" + id + "/cancel"), 404, "cancel");
    ExpectProblem(s.Delete("/v1/jobs/" + id), 404, "delete");
  }
  // The real id still answers.
  EXPECT_NE(s.Get("/v1/jobs/" + real).status, 404);
}

TEST(IntegrationErrorsTest, EachBadSubmitOptionIs400NamingIt) {
  ServerProcess s;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"max_attempts", "?max_attempts=0"},
      {"max_attempts", "?max_attempts=1001"},
      {"max_attempts", "?max_attempts=abc"},
      {"max_attempts", "?max_attempts=2.5"},
      {"max_attempts", "?max_attempts="},
      {"timeout", "?timeout=0"},
      {"timeout", "?timeout=-1"},
      {"timeout", "?timeout=soon"},
      {"timeout", "?timeout=604801"},
      {"timeout", "?timeout=nan"},
      {"delay", "?delay=-1"},
      {"delay", "?delay=later"},
      {"delay", "?delay=31536001"},
      {"delay", "?delay=inf"},
      {"priority", "?priority=high"},
      {"priority", "?priority=1000001"},
      {"priority", "?priority=-1000001"},
      {"priority", "?priority=1.5"},
      {"bogus", "?bogus=1"},
      {"bogus", "?max_attempts=2&bogus=1"},
      {"timeout", "?priority=3&timeout=x"},
  };
  for (const auto& [option, query] : cases) {
    SCOPED_TRACE(query);
    HttpResponse r = s.Submit("echo", "payload", query);
    ExpectProblem(r, 400);
    if (r.status == 400) {
      EXPECT_EQ(Str(r.Json(), "option"), option) << r.body;
    }
  }
  EXPECT_EQ(JobCount(s), 0u) << "a rejected submit must not create a job";
}

TEST(IntegrationErrorsTest, GoodSubmitOptionsAreApplied) {
  ServerProcess s;
  HttpResponse r = s.Submit("echo", "x", "?max_attempts=7&priority=-3&timeout=2.5&delay=0");
  ASSERT_EQ(r.status, 202) << Describe(r);
  EXPECT_EQ(Int(r.Json(), "max_attempts"), 7);
  EXPECT_EQ(Int(r.Json(), "priority"), -3);
  r = s.Submit("echo", "x", "?max_attempts=1000&priority=1000000&timeout=604800");
  ASSERT_EQ(r.status, 202) << Describe(r);
  EXPECT_EQ(Int(r.Json(), "max_attempts"), 1000);
  EXPECT_EQ(Int(r.Json(), "priority"), 1000000);
}

TEST(IntegrationErrorsTest, BodyAtTheLimitIsAcceptedButContentLengthOverItIs413) {
  ServerProcess s(ServerOptions().Set("body_limit", "4096"));
  // Exactly at the limit is fine.
  HttpResponse ok = s.Submit("echo", std::string(4096, 'a'), "", "text/plain");
  EXPECT_EQ(ok.status, 202) << Describe(ok);

  // Declared with Content-Length: refused from the headers alone.
  RawConnection c(s.port());
  c.Send(
      "POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      "Content-Length: 4097\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value()) << "no response to an oversized Content-Length";
  ExpectProblem(*r, 413, "content-length");
  EXPECT_EQ(JobCount(s), 1u);
}

TEST(IntegrationErrorsTest, OversizedBodySentInFullIs413) {
  ServerProcess s(ServerOptions().Set("body_limit", "4096"));
  HttpResponse r = s.Submit("echo", std::string(5000, 'b'), "", "text/plain");
  ExpectProblem(r, 413);
  EXPECT_EQ(JobCount(s), 0u);
}

TEST(IntegrationErrorsTest, ChunkedBodyOverTheLimitIs413) {
  ServerProcess s(ServerOptions().Set("body_limit", "4096"));
  RawConnection c(s.port());
  const std::string chunk(3000, 'c');
  std::ostringstream req;
  req << "POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      << "Transfer-Encoding: chunked\r\n\r\n"
      << std::hex << chunk.size() << "\r\n"
      << chunk << "\r\n"
      << std::hex << chunk.size() << "\r\n"
      << chunk << "\r\n0\r\n\r\n";
  c.Send(req.str());
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value()) << "no response to an oversized chunked body";
  ExpectProblem(*r, 413);
  EXPECT_EQ(JobCount(s), 0u);

  // A chunked body within the limit is accepted.
  RawConnection c2(s.port());
  c2.Send(
      "POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto ok = c2.ReadResponse();
  ASSERT_TRUE(ok.has_value());
  ASSERT_EQ(ok->status, 202) << Describe(*ok);
  const std::string id = Str(ok->Json(), "id");
  ASSERT_EQ(Str(s.WaitTerminal(id), "state"), "succeeded");
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, "hello world");
}

TEST(IntegrationErrorsTest, OversizedHeadersAre431) {
  ServerProcess s;  // header_limit defaults to 16384
  RawConnection c(s.port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value()) << "no response to oversized headers";
  ExpectProblem(*r, 431);
  EXPECT_TRUE(c.WaitClosed()) << "the connection should be closed after a 431";

  // Headers just under the limit pass.
  HttpResponse ok = Http(s.port(), "GET", "/healthz", "", {{"X-Big", std::string(8000, 'h')}});
  EXPECT_EQ(ok.status, 200) << Describe(ok);
}

TEST(IntegrationErrorsTest, ConfiguredHeaderLimitApplies) {
  ServerProcess s(ServerOptions().Set("header_limit", "2048"));
  RawConnection c(s.port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(3000, 'h') + "\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  ExpectProblem(*r, 431);
}

TEST(IntegrationErrorsTest, WrongMethodIs405WithAllow) {
  ServerProcess s;
  const std::string id = s.SubmitOk("echo", "x");
  struct Case {
    std::string method, target;
    std::set<std::string> allow;
  };
  const std::vector<Case> cases = {
      {"PUT", "/v1/jobs/" + id, {"GET", "DELETE"}},
      {"POST", "/v1/jobs/" + id, {"GET", "DELETE"}},
      {"GET", "/v1/queues/echo/jobs", {"POST"}},
      {"DELETE", "/v1/queues/echo/jobs", {"POST"}},
      {"POST", "/v1/jobs", {"GET"}},
      {"DELETE", "/v1/queues", {"GET"}},
      {"POST", "/v1/jobs/" + id + "/result", {"GET"}},
      {"GET", "/v1/jobs/" + id + "/cancel", {"POST"}},
      {"PATCH", "/healthz", {"GET"}},
      {"POST", "/readyz", {"GET"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target);
    HttpResponse r = Http(s.port(), c.method, c.target);
    ExpectProblem(r, 405);
    EXPECT_EQ(SplitAllow(r.Header("Allow")), c.allow) << "Allow: " << r.Header("Allow");
  }
  // None of that touched the job.
  EXPECT_NE(s.Get("/v1/jobs/" + id).status, 404);
}

TEST(IntegrationErrorsTest, UnknownPathIs404) {
  ServerProcess s;
  for (const std::string& target :
       std::vector<std::string>{"/", "/v2/jobs", "/v1", "/v1/jobs/" + kUnknownId + "/nope",
                                "/v1/queues/echo", "/v1/queues/echo/jobs/extra", "/healthz/x"}) {
    SCOPED_TRACE(target);
    ExpectProblem(s.Get(target), 404);
  }
}

TEST(IntegrationErrorsTest, ResultOfAJobWithoutResultIs409WithState) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
[queues.fail]
handler = "fail"
max_attempts = 1
[queues.echo]
handler = "echo"
)"));
  const std::string running = s.SubmitOk("slow", R"({"ms":20000})");
  s.WaitState(running, "running");
  const std::string queued = s.SubmitOk("echo", "x", "?delay=60");
  const std::string failed = s.SubmitOk("fail", "{}");
  s.WaitState(failed, "failed");

  for (const auto& [id, state] : std::vector<std::pair<std::string, std::string>>{
           {queued, "queued"}, {running, "running"}, {failed, "failed"}}) {
    SCOPED_TRACE(state);
    HttpResponse r = s.Get("/v1/jobs/" + id + "/result");
    ExpectProblem(r, 409);
    EXPECT_EQ(Str(r.Json(), "state"), state) << r.body;
  }

  ASSERT_EQ(s.Post("/v1/jobs/" + running + "/cancel").status, 202);
  s.WaitState(running, "canceled");
  HttpResponse r = s.Get("/v1/jobs/" + running + "/result");
  ExpectProblem(r, 409);
  EXPECT_EQ(Str(r.Json(), "state"), "canceled") << r.body;
}

TEST(IntegrationErrorsTest, CancelOfATerminalJobIs409) {
  ServerProcess s;
  const std::string ok = s.SubmitOk("greeting", R"({"name":"a"})");
  const std::string failed = s.SubmitOk("fail", "{}", "?max_attempts=1");
  const std::string canceled = s.SubmitOk("echo", "x", "?delay=60");
  ASSERT_EQ(s.Post("/v1/jobs/" + canceled + "/cancel").status, 200);
  s.WaitState(ok, "succeeded");
  s.WaitState(failed, "failed");
  for (const auto& [id, state] : std::vector<std::pair<std::string, std::string>>{
           {ok, "succeeded"}, {failed, "failed"}, {canceled, "canceled"}}) {
    SCOPED_TRACE(state);
    HttpResponse r = s.Post("/v1/jobs/" + id + "/cancel");
    ExpectProblem(r, 409);
    EXPECT_EQ(Str(r.Json(), "state"), state) << r.body;
    // Nothing changed.
    EXPECT_EQ(Str(s.Job(id), "state"), state);
  }
}

TEST(IntegrationErrorsTest, BadListOptionsAre400NamingThem) {
  ServerProcess s;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"limit", "?limit=0"},    {"limit", "?limit=1001"}, {"limit", "?limit=ten"},
      {"state", "?state=done"}, {"state", "?state="},     {"cursor", "?cursor=abc"},
      {"cursor", "?cursor=-5"}, {"sort", "?sort=asc"},    {"limit", "?queue=echo&limit=-1"},
  };
  for (const auto& [option, query] : cases) {
    SCOPED_TRACE(query);
    HttpResponse r = s.Get("/v1/jobs" + query);
    ExpectProblem(r, 400);
    if (r.status == 400) {
      EXPECT_EQ(Str(r.Json(), "option"), option) << r.body;
    }
  }
}

TEST(IntegrationErrorsTest, MalformedRequestIs400) {
  ServerProcess s;
  RawConnection c(s.port());
  c.Send("THIS IS NOT HTTP\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value()) << "no response to a malformed request";
  ExpectProblem(*r, 400);
  EXPECT_TRUE(c.WaitClosed());
  // The server is fine afterwards.
  EXPECT_EQ(s.Get("/healthz").status, 200);
}

}  // namespace
}  // namespace acceptd::itest
