// The operator's reads against the real binary: GET /v1/jobs searches (id
// prefix, payload/result substring, JSON field, time range, order, the scan
// bound's cursor), GET /v1/jobs/{id}/attempts and GET /v1/stats, with either
// store (ACCEPTD_TEST_STORE), tenants included.
#include <array>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

// Every page of `query` (which has a '?'), following next_cursor.
std::vector<std::string> AllPages(const ServerProcess& s, const std::string& query,
                                  int* pages = nullptr, int* limited = nullptr) {
  std::vector<std::string> all;
  std::string cursor;
  int n = 0, scan_limited = 0;
  for (;;) {
    json::value page = s.ListJobs(query + (cursor.empty() ? "" : "&cursor=" + cursor));
    ++n;
    if (page.at("scan_limited").as_bool()) ++scan_limited;
    for (const std::string& id : JobIds(page)) all.push_back(id);
    const json::value& next = page.at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
    if (n > 1000) throw std::runtime_error("pagination does not end");
  }
  if (pages) *pages = n;
  if (limited) *limited = scan_limited;
  return all;
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

TEST(IntegrationSearchTest, SearchesByPayloadResultFieldIdAndTime) {
  ServerProcess s;
  // echo's result is its payload; greeting's result says hello to the name.
  const std::string acme = s.SubmitOk("echo", R"({"customer":{"id":"42","name":"ACME"}})");
  const std::string num = s.SubmitOk("echo", R"({"customer":{"id":42}})");
  const std::string text = s.SubmitOk("echo", "customer 42, not JSON", "", "text/plain");
  const std::string greet = s.SubmitOk("greeting", R"({"name":"Zaphod"})");
  for (const std::string& id : {acme, num, text, greet}) s.WaitState(id, "succeeded");

  EXPECT_EQ(AllPages(s, "?field=customer.id&value=42"), (std::vector<std::string>{num, acme}));
  EXPECT_EQ(AllPages(s, "?field=customer.name&value=ACME"), std::vector<std::string>{acme});
  EXPECT_EQ(AllPages(s, "?q=" + UrlEncode("customer 42")), std::vector<std::string>{text});
  EXPECT_EQ(AllPages(s, "?q=ACME&order=oldest"), std::vector<std::string>{acme});
  EXPECT_TRUE(AllPages(s, "?q=acme").empty()) << "case-sensitive";
  // In the result only: greeting answers "Hello, Zaphod!"-like text.
  json::value doc = s.ListJobs("?q=Zaphod&queue=greeting");
  EXPECT_EQ(JobIds(doc), std::vector<std::string>{greet});
  for (const json::value& d : doc.at("jobs").as_array()) ExpectValidJobDocument(d, "searched");

  EXPECT_EQ(AllPages(s, "?id=" + acme.substr(0, 12) + "&q=ACME"), std::vector<std::string>{acme});
  EXPECT_EQ(AllPages(s, "?id=" + acme), std::vector<std::string>{acme});
  std::string upper = acme;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(AllPages(s, "?id=" + upper), std::vector<std::string>{acme});

  const json::object num_doc = s.Job(num);
  const int64_t num_created = TimeField(num_doc, "created_at");
  const std::string at = UrlEncode(Str(num_doc, "created_at"));
  std::vector<std::string> since = AllPages(s, "?created_after=" + at + "&order=oldest");
  ASSERT_FALSE(since.empty());
  EXPECT_EQ(since.front(), num) << "created_after is inclusive";
  EXPECT_EQ(std::set<std::string>(since.begin(), since.end()).count(acme), 0u);
  std::vector<std::string> before =
      AllPages(s, "?created_before=" + std::to_string(num_created) + "&order=oldest");
  EXPECT_EQ(std::set<std::string>(before.begin(), before.end()).count(num), 0u)
      << "created_before is exclusive";
  EXPECT_EQ(before.front(), acme);

  // Empty boxes of a search form are no filter.
  EXPECT_EQ(AllPages(s, "?q=&id=&field=").size(), 4u);
  EXPECT_EQ(AllPages(s, "?order=oldest"), (std::vector<std::string>{acme, num, text, greet}));
}

TEST(IntegrationSearchTest, BadSearchOptionsAre400NamingTheOption) {
  ServerProcess s;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"?id=xyz", "id"},
      {"?id=" + std::string(33, 'a'), "id"},
      {"?field=a..b&value=1", "field"},
      {"?field=a&x=1", "x"},
      {"?field=a", "value"},
      {"?value=1", "value"},
      {"?created_after=yesterday", "created_after"},
      {"?created_before=2026-13-01T00:00:00Z", "created_before"},
      {"?order=random", "order"},
  };
  for (const auto& [query, option] : bad) {
    HttpResponse r = s.Get("/v1/jobs" + query);
    ExpectProblem(r, 400, query);
    EXPECT_EQ(Str(r.Json(), "option"), option) << query;
  }
}

// A search that finds little examines at most 10,000 jobs per page: the
// page says so (scan_limited) and the cursor goes on from there. 10,001 jobs
// make the bound reachable; they are submitted with delay so that nothing
// runs, from several connections at once (group commit).
TEST(IntegrationSearchTest, ASearchPageExaminesAtMost10000JobsAndTheCursorResumes) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.hold]
handler = "echo"
max_depth = 20000
)"));
  const std::string needle = s.SubmitOk("hold", "the needle", "?delay=3600");
  constexpr int kThreads = 16;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      HttpClient c(s.port());
      for (int i = 0; i < 10'000 / kThreads; ++i) {
        if (c.Post("/v1/queues/hold/jobs?delay=3600", "hay").status != 202) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failed.load(), 0);
  json::value first = s.ListJobs("?q=needle");
  EXPECT_TRUE(JobIds(first).empty());
  EXPECT_TRUE(first.at("scan_limited").as_bool());
  ASSERT_TRUE(first.at("next_cursor").is_string());
  json::value second =
      s.ListJobs("?q=needle&cursor=" + std::string(first.at("next_cursor").as_string()));
  EXPECT_EQ(JobIds(second), std::vector<std::string>{needle});
  EXPECT_FALSE(second.at("scan_limited").as_bool());
  EXPECT_TRUE(second.at("next_cursor").is_null());
  // Oldest first, the needle is the first job examined: one page.
  json::value oldest = s.ListJobs("?q=needle&order=oldest&limit=1");
  EXPECT_EQ(JobIds(oldest), std::vector<std::string>{needle});
  // A full id is looked up in the id index: found on the first page.
  EXPECT_EQ(JobIds(s.ListJobs("?id=" + needle)), std::vector<std::string>{needle});
  // The plain list is not bounded: 10,001 jobs, 1,000 a page.
  int pages = 0, limited = 0;
  EXPECT_EQ(AllPages(s, "?limit=1000", &pages, &limited).size(), 10'001u);
  EXPECT_EQ(pages, 11);
  EXPECT_EQ(limited, 0);
}

TEST(IntegrationSearchTest, AttemptsShowEachAttemptWithItsErrorAndWorker) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.flaky]
handler = "fail"
max_attempts = 2
backoff = { base = 0.1, max = 10, jitter = 0 }
[queues.echo]
handler = "echo"
[queues.sleep]
handler = "sleep"
)"));
  const std::string id = s.SubmitOk("flaky", R"({"message":"boom"})");
  s.WaitState(id, "failed");
  HttpResponse r = s.Get("/v1/jobs/" + id + "/attempts");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  json::value doc = r.Json();
  EXPECT_EQ(Str(doc, "job_id"), id);
  EXPECT_EQ(Str(doc, "state"), "failed");
  EXPECT_EQ(Int(doc, "dropped"), 0);
  EXPECT_TRUE(IsNull(doc, "callback"));
  const json::array& attempts = doc.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 2u) << json::serialize(doc);
  for (size_t i = 0; i < attempts.size(); ++i) {
    const json::value& a = attempts[i];
    EXPECT_EQ(Int(a, "attempt"), static_cast<int64_t>(i + 1));
    EXPECT_EQ(Str(a, "outcome"), "failed");
    EXPECT_TRUE(IsTimestamp(Str(a, "started_at")));
    EXPECT_TRUE(IsTimestamp(Str(a, "ended_at")));
    EXPECT_EQ(Int(a, "duration_ms"), TimeField(a, "ended_at") - TimeField(a, "started_at"));
    EXPECT_EQ(Str(a.at("error"), "type"), "handler_error");
    EXPECT_EQ(Str(a.at("error"), "message"), "boom");
    EXPECT_FALSE(Str(a, "worker").empty());
  }
  EXPECT_GE(TimeField(attempts[1], "started_at"), TimeField(attempts[0], "ended_at") + 100)
      << "the backoff lies between the attempts";

  // A running attempt: no end yet.
  const std::string slow = s.SubmitOk("sleep", R"({"ms":60000})");
  s.WaitState(slow, "running");
  json::value running = s.Get("/v1/jobs/" + slow + "/attempts").Json();
  ASSERT_EQ(running.at("attempts").as_array().size(), 1u);
  const json::value& now = running.at("attempts").as_array()[0];
  EXPECT_EQ(Str(now, "outcome"), "running");
  EXPECT_TRUE(IsNull(now, "ended_at"));
  EXPECT_TRUE(IsNull(now, "duration_ms"));
  EXPECT_TRUE(IsNull(now, "error"));
  ASSERT_EQ(s.Post("/v1/jobs/" + slow + "/cancel").status, 202);
  s.WaitState(slow, "canceled");
  json::value canceled = s.Get("/v1/jobs/" + slow + "/attempts").Json();
  ASSERT_EQ(canceled.at("attempts").as_array().size(), 1u);
  EXPECT_EQ(Str(canceled.at("attempts").as_array()[0], "outcome"), "canceled");

  // A job that never ran has none; unknown ids and malformed ones are 404.
  const std::string later = s.SubmitOk("echo", "x", "?delay=600");
  json::value none = s.Get("/v1/jobs/" + later + "/attempts").Json();
  EXPECT_TRUE(none.at("attempts").as_array().empty());
  ExpectProblem(s.Get("/v1/jobs/" + std::string(32, '0') + "/attempts"), 404);
  ExpectProblem(s.Get("/v1/jobs/nope/attempts"), 404);
}

TEST(IntegrationSearchTest, StatsCountFinishedJobsPerQueueAndMinute) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.echo]
handler = "echo"
[queues.flaky]
handler = "fail"
max_attempts = 1
[queues.idle]
handler = "echo"
)"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(s.SubmitOk("echo", "x"));
  ids.push_back(s.SubmitOk("flaky", "{}"));
  const std::string queued = s.SubmitOk("echo", "y", "?delay=600");
  ASSERT_EQ(s.Post("/v1/jobs/" + queued + "/cancel").status, 200);
  for (const std::string& id : ids) s.WaitTerminal(id);

  HttpResponse r = s.Get("/v1/stats?window=120");
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::value doc = r.Json();
  EXPECT_EQ(Int(doc, "step_seconds"), 60);
  const int64_t since = TimeField(doc, "since");
  EXPECT_EQ(since % 60'000, 0) << "whole minutes";
  EXPECT_LE(since, NowMillis() - 60'000);
  EXPECT_GT(since, NowMillis() - 120'000 - 5'000);
  std::map<std::string, std::array<int64_t, 3>> totals;
  for (const json::value& q : doc.at("queues").as_array()) {
    std::array<int64_t, 3> t{};
    int k = 0;
    for (const char* key : {"succeeded", "failed", "canceled"}) {
      const json::array& a = q.at(key).as_array();
      EXPECT_EQ(a.size(), 2u) << key;
      for (const json::value& n : a) t[static_cast<size_t>(k)] += n.as_int64();
      ++k;
    }
    totals[Str(q, "queue")] = t;
  }
  EXPECT_EQ(totals["echo"], (std::array<int64_t, 3>{3, 0, 1}));
  EXPECT_EQ(totals["flaky"], (std::array<int64_t, 3>{0, 1, 0}));
  ASSERT_TRUE(totals.count("idle")) << "configured queues are listed, idle or not";
  EXPECT_EQ(totals["idle"], (std::array<int64_t, 3>{0, 0, 0}));

  json::value hour = s.Get("/v1/stats").Json();
  EXPECT_EQ(hour.at("queues").as_array()[0].at("succeeded").as_array().size(), 60u);
  for (const char* bad : {"?window=59", "?window=86401", "?window=1h", "?x=1"}) {
    HttpResponse b = s.Get(std::string("/v1/stats") + bad);
    ExpectProblem(b, 400, bad);
  }
}

TEST(IntegrationSearchTest, ATenantsKeySearchesAndReadsAttemptsOfItsOwnJobsOnly) {
  auto keygen = [](const std::string& name, const std::string& tenant) {
    ProcessResult r =
        RunAcceptd({"keygen", "--name", name, "--scopes", "submit,read", "--tenant", tenant});
    if (r.exit_code != 0) throw std::runtime_error("keygen failed: " + r.err);
    const size_t eol = r.out.find('\n');
    return std::make_pair(r.out.substr(0, eol), r.out.substr(eol + 1));
  };
  auto [acme, acme_toml] = keygen("acme", "acme");
  auto [globex, globex_toml] = keygen("globex", "globex");
  ServerProcess s(ServerOptions().WithQueues(acme_toml + globex_toml + R"(
[queues.echo]
handler = "echo"
)"));
  auto as = [&](const std::string& key, const std::string& method, const std::string& target,
                std::string body = {}) {
    Headers h = {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
    return Http(s.port(), method, target, std::move(body), h);
  };
  HttpResponse mine = as(acme, "POST", "/v1/queues/echo/jobs", R"({"secret":"shared"})");
  HttpResponse theirs = as(globex, "POST", "/v1/queues/echo/jobs", R"({"secret":"shared"})");
  ASSERT_EQ(mine.status, 202);
  ASSERT_EQ(theirs.status, 202);
  const std::string mine_id = Str(mine.Json(), "id");
  const std::string theirs_id = Str(theirs.Json(), "id");
  HttpResponse found = as(acme, "GET", "/v1/jobs?field=secret&value=shared");
  ASSERT_EQ(found.status, 200);
  EXPECT_EQ(JobIds(found.Json()), std::vector<std::string>{mine_id});
  HttpResponse by_id = as(acme, "GET", "/v1/jobs?id=" + theirs_id);
  EXPECT_TRUE(JobIds(by_id.Json()).empty());
  EXPECT_EQ(as(acme, "GET", "/v1/jobs/" + mine_id + "/attempts").status, 200);
  HttpResponse other = as(acme, "GET", "/v1/jobs/" + theirs_id + "/attempts");
  HttpResponse unknown = as(acme, "GET", "/v1/jobs/" + std::string(32, 'f') + "/attempts");
  ExpectProblem(other, 404);
  EXPECT_EQ(Str(other.Json(), "detail"), Str(unknown.Json(), "detail"))
      << "another tenant's job reads as an unknown one";
  EXPECT_EQ(as(acme, "GET", "/v1/stats").status, 200);
}

}  // namespace
}  // namespace acceptd::itest
