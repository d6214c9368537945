// GET /v1/jobs: newest first, cursor pagination, queue and state filters.
#include <set>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

// Follows next_cursor from `query` to the end; every page has at most `limit` jobs.
std::vector<std::string> AllPages(const ServerProcess& s, const std::string& query, size_t limit,
                                  int* pages) {
  std::vector<std::string> all;
  std::string cursor;
  *pages = 0;
  for (;;) {
    json::value page = s.ListJobs(query + (cursor.empty() ? "" : "&cursor=" + cursor));
    ++*pages;
    auto ids = JobIds(page);
    EXPECT_LE(ids.size(), limit);
    all.insert(all.end(), ids.begin(), ids.end());
    const json::value& next = page.at("next_cursor");
    if (next.is_null()) break;
    if (!next.is_string()) throw std::runtime_error("next_cursor is not a string");
    cursor = std::string(next.as_string());
    if (*pages > 100) throw std::runtime_error("pagination does not end");
  }
  return all;
}

TEST(IntegrationListTest, EmptyServerListsNothing) {
  ServerProcess s;
  json::value page = s.ListJobs("");
  EXPECT_EQ(page.at("jobs").as_array().size(), 0u);
  EXPECT_TRUE(page.at("next_cursor").is_null());
}

TEST(IntegrationListTest, NewestFirstWithCursorPagination) {
  ServerProcess s;
  std::vector<std::string> submitted;
  for (int i = 0; i < 7; ++i) {
    submitted.push_back(s.SubmitOk(i % 2 ? "echo" : "greeting", R"({"name":"x"})"));
  }
  const std::vector<std::string> newest_first(submitted.rbegin(), submitted.rend());

  json::value all = s.ListJobs("");
  EXPECT_EQ(JobIds(all), newest_first);
  EXPECT_TRUE(all.at("next_cursor").is_null());
  for (const json::value& doc : all.at("jobs").as_array()) ExpectValidJobDocument(doc, "listed");

  json::value first = s.ListJobs("?limit=3");
  EXPECT_EQ(JobIds(first),
            std::vector<std::string>(newest_first.begin(), newest_first.begin() + 3));
  ASSERT_TRUE(first.at("next_cursor").is_string()) << json::serialize(first);

  int pages = 0;
  EXPECT_EQ(AllPages(s, "?limit=3", 3, &pages), newest_first);
  EXPECT_EQ(pages, 3);  // 3 + 3 + 1
}

TEST(IntegrationListTest, LastFullPageHasNoNextCursor) {
  ServerProcess s;
  std::vector<std::string> submitted;
  for (int i = 0; i < 6; ++i) submitted.push_back(s.SubmitOk("echo", "x"));
  int pages = 0;
  std::vector<std::string> all = AllPages(s, "?limit=3", 3, &pages);
  EXPECT_EQ(all, std::vector<std::string>(submitted.rbegin(), submitted.rend()));
  EXPECT_EQ(pages, 2) << "a page that ends exactly at the last job has next_cursor null";
}

TEST(IntegrationListTest, PaginationIsStableWhileNewJobsArrive) {
  ServerProcess s;
  std::vector<std::string> before;
  for (int i = 0; i < 5; ++i) before.push_back(s.SubmitOk("echo", "x"));
  json::value first = s.ListJobs("?limit=2");
  const std::string cursor = std::string(first.at("next_cursor").as_string());
  s.SubmitOk("echo", "newer");  // must not show up on later pages
  json::value second = s.ListJobs("?limit=2&cursor=" + cursor);
  EXPECT_EQ(JobIds(second), (std::vector<std::string>{before[2], before[1]}));
}

TEST(IntegrationListTest, FiltersByQueueAndState) {
  ServerProcess s;
  std::set<std::string> greetings, echoes, fails, delayed;
  for (int i = 0; i < 3; ++i) greetings.insert(s.SubmitOk("greeting", R"({"name":"g"})"));
  for (int i = 0; i < 2; ++i) echoes.insert(s.SubmitOk("echo", "e"));
  fails.insert(s.SubmitOk("fail", "{}", "?max_attempts=1"));
  for (int i = 0; i < 2; ++i) delayed.insert(s.SubmitOk("echo", "d", "?delay=60"));
  for (const std::string& id : greetings) s.WaitState(id, "succeeded");
  for (const std::string& id : echoes) s.WaitState(id, "succeeded");
  for (const std::string& id : fails) s.WaitState(id, "failed");

  auto as_set = [](const std::vector<std::string>& v) {
    return std::set<std::string>(v.begin(), v.end());
  };
  EXPECT_EQ(as_set(JobIds(s.ListJobs("?queue=greeting"))), greetings);
  std::set<std::string> all_echo = echoes;
  all_echo.insert(delayed.begin(), delayed.end());
  EXPECT_EQ(as_set(JobIds(s.ListJobs("?queue=echo"))), all_echo);
  EXPECT_EQ(as_set(JobIds(s.ListJobs("?state=failed"))), fails);
  EXPECT_EQ(as_set(JobIds(s.ListJobs("?state=queued"))), delayed);
  EXPECT_EQ(as_set(JobIds(s.ListJobs("?queue=echo&state=succeeded"))), echoes);
  EXPECT_EQ(as_set(JobIds(s.ListJobs("?queue=greeting&state=queued"))), std::set<std::string>{});
  EXPECT_EQ(JobIds(s.ListJobs("?queue=no-such-queue")).size(), 0u);
  EXPECT_EQ(JobIds(s.ListJobs("?state=running")).size(), 0u);
  EXPECT_EQ(JobIds(s.ListJobs("?state=canceled")).size(), 0u);
  const json::value failed_page = s.ListJobs("?state=failed");
  for (const json::value& doc : failed_page.at("jobs").as_array()) {
    EXPECT_EQ(Str(doc, "state"), "failed");
    EXPECT_EQ(Str(doc, "queue"), "fail");
  }

  // Filters combine with pagination.
  int pages = 0;
  std::vector<std::string> paged =
      AllPages(s, "?queue=greeting&state=succeeded&limit=1", 1, &pages);
  EXPECT_EQ(as_set(paged), greetings);
  EXPECT_EQ(pages, 3);
}

TEST(IntegrationListTest, DefaultLimitIs50AndMaxIs1000) {
  ServerProcess s;
  HttpClient c(s.port());
  for (int i = 0; i < 55; ++i) {
    HttpResponse r = c.Post("/v1/queues/echo/jobs", "x", "text/plain");
    ASSERT_EQ(r.status, 202) << Describe(r);
  }
  json::value page = s.ListJobs("");
  EXPECT_EQ(page.at("jobs").as_array().size(), 50u);
  EXPECT_TRUE(page.at("next_cursor").is_string());
  json::value rest = s.ListJobs("?cursor=" + std::string(page.at("next_cursor").as_string()));
  EXPECT_EQ(rest.at("jobs").as_array().size(), 5u);
  EXPECT_TRUE(rest.at("next_cursor").is_null());
  json::value big = s.ListJobs("?limit=1000");
  EXPECT_EQ(big.at("jobs").as_array().size(), 55u);
  EXPECT_TRUE(big.at("next_cursor").is_null());
  ExpectProblem(s.Get("/v1/jobs?limit=1001"), 400);
}

}  // namespace
}  // namespace acceptd::itest
