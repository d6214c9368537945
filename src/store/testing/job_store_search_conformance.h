// The operator's reads of the JobStore contract (store/job_store.h): list
// searches (ListParams), attempt histories (GetAttempts) and throughput
// (Throughput). A second typed suite on the fixture of the conformance suite
// (job_store_conformance.h), instantiated per backend in the same test
// sources; kept apart so the main suite's registration list stays short.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "store/testing/job_store_conformance.h"

namespace acceptd::store_testing {

template <typename Factory>
class JobStoreSearchConformanceTest : public JobStoreConformanceTest<Factory> {
 protected:
  struct SearchResult {
    std::vector<JobId> ids;  // every page's jobs, in order
    int pages = 0;
    int scan_limited_pages = 0;
  };
  // Follows the cursor through every page of `p`.
  SearchResult SearchAll(ListParams p) {
    SearchResult out;
    for (;;) {
      JobPage page = Must(this->store().List(p), "List");
      ++out.pages;
      if (page.scan_limited) ++out.scan_limited_pages;
      EXPECT_LE(static_cast<int>(page.jobs.size()), p.limit);
      for (const Job& j : page.jobs) out.ids.push_back(j.id);
      if (!page.next_cursor) return out;
      if (out.pages > 1000) {
        ADD_FAILURE() << "the cursor does not end";
        return out;
      }
      if (p.order == ListOrder::kNewest) {
        p.before_seq = page.next_cursor;
      } else {
        p.after_seq = page.next_cursor;
      }
    }
  }
  std::vector<JobId> SearchIds(ListParams p) { return SearchAll(std::move(p)).ids; }

  Job SubmitPayload(std::string payload, std::string queue = "q", UnixMillis now = kT0) {
    NewJob n = this->MakeJob(std::move(queue), now);
    n.payload = std::move(payload);
    return this->Insert(n);
  }
  Job SubmitWithId(std::string_view hex, UnixMillis now = kT0) {
    NewJob n = this->MakeJob("q", now);
    n.id = *JobId::Parse(hex);
    return this->Insert(n);
  }
  AttemptHistory Attempts(const JobId& id) {
    return Must(this->store().GetAttempts(id), "GetAttempts");
  }
};

TYPED_TEST_SUITE_P(JobStoreSearchConformanceTest);

TYPED_TEST_P(JobStoreSearchConformanceTest, ListOldestFirstPaginatesWithTheCursor) {
  auto& t = *this;
  std::vector<JobId> oldest_first;
  for (int i = 0; i < 9; ++i) oldest_first.push_back(t.Submit("q", kT0 + i).id);
  t.Submit("other", kT0 + 100);
  ListParams p;
  p.queue = "q";
  p.limit = 4;
  p.order = ListOrder::kOldest;
  auto r = t.SearchAll(p);
  EXPECT_EQ(r.ids, oldest_first);
  EXPECT_EQ(r.pages, 3);
  EXPECT_EQ(r.scan_limited_pages, 0);
}

TYPED_TEST_P(JobStoreSearchConformanceTest, SearchByTextMatchesPayloadOrResultBytes) {
  auto& t = *this;
  Job in_payload = t.SubmitPayload("order 4711 for ACME");
  Job binary =
      t.SubmitPayload(std::string("\x00\xff"
                                  "4711\x01",
                                  7));
  t.SubmitPayload("order 4712");
  Job in_result = t.SubmitPayload("nothing here");
  // Finish them all, one with the text in its result.
  for (const Job& running : t.Claim("q", 10, kT0 + 1)) {
    const std::string result = running.id == in_result.id ? "ref=4711" : "ok";
    t.MustFinish(
        AttemptOutcome::Succeeded(running.id, running.lease_token, kT0 + 5, result, "text/plain"));
  }
  ListParams p;
  p.text = "4711";
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{in_result.id, binary.id, in_payload.id}));
  p.text = "acme";  // byte-wise: case-sensitive
  EXPECT_TRUE(t.SearchIds(p).empty());
  p.text = std::string("\x00\xff", 2);
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{binary.id});
}

TYPED_TEST_P(JobStoreSearchConformanceTest, SearchByFieldMatchesJsonStringsNumbersAndBools) {
  auto& t = *this;
  Job str = t.SubmitPayload(R"({"customer":{"id":"42","tier":"gold"}})");
  Job num = t.SubmitPayload(R"({"customer":{"id":42}})");
  Job boolean = t.SubmitPayload(R"( {"customer":{"vip":true,"id":"7"}} )");
  t.SubmitPayload(R"({"customer":[{"id":"42"}]})");  // an array on the way: no match
  t.SubmitPayload(R"({"customer":{"id":"420"}})");   // not equal
  t.SubmitPayload(R"({"customer":{"id":"42"})");     // not JSON (unclosed)
  t.SubmitPayload(std::string("\xff\xfe{\"customer\":{\"id\":\"42\"}}", 27));  // not UTF-8
  t.SubmitPayload("42");
  t.SubmitPayload(R"({"customer":{"id":null}})");
  t.SubmitPayload(R"({"customer.id":"42"})");  // a member whose name has a dot
  ListParams p;
  p.field = FieldMatch{{"customer", "id"}, "42"};
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{num.id, str.id}));
  p.field = FieldMatch{{"customer", "vip"}, "true"};
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{boolean.id});
  p.field = FieldMatch{{"customer", "tier"}, "gold"};
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{str.id});
  p.field = FieldMatch{{"customer", "id"}, "null"};
  EXPECT_TRUE(t.SearchIds(p).empty());
  p.field = FieldMatch{{"customer"}, R"({"id":"42","tier":"gold"})"};  // objects never match
  EXPECT_TRUE(t.SearchIds(p).empty());
  p.field = FieldMatch{{"customer", ""}, "42"};
  EXPECT_TRUE(IsError(t.store().List(p), ErrorCode::kInvalidArgument));
  p.field = FieldMatch{{"a\"b"}, "42"};
  EXPECT_TRUE(IsError(t.store().List(p), ErrorCode::kInvalidArgument));
}

TYPED_TEST_P(JobStoreSearchConformanceTest, SearchByIdPrefixWithAndWithoutTheIdIndex) {
  auto& t = *this;
  Job a = t.SubmitWithId("0123456789abcdef0123456789abcdef");
  Job b = t.SubmitWithId("0123ffff000000000000000000000000");
  Job c = t.SubmitWithId("0124000000000000000000000000000a");
  Job d = t.SubmitWithId("ffffffffffffffffffffffffffffffff");
  Job e = t.SubmitWithId("00000000000000000000000000000000");
  ListParams p;
  p.id_prefix = "0123";
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{b.id, a.id}));
  p.id_prefix = "012";  // odd length
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{c.id, b.id, a.id}));
  p.id_prefix = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{a.id});
  p.id_prefix = "f";
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{d.id});
  p.id_prefix = "0000";
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{e.id});
  // More jobs carry the prefix than a page may examine: the scan instead,
  // with the same answer over its pages.
  p.id_prefix = "0";
  p.max_examined = 2;
  p.limit = 1;
  auto r = t.SearchAll(p);
  EXPECT_EQ(r.ids, (std::vector<JobId>{e.id, c.id, b.id, a.id}));
  EXPECT_GT(r.scan_limited_pages, 0);
  p.order = ListOrder::kOldest;
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{a.id, b.id, c.id, e.id}));
  p.id_prefix = "01G";
  EXPECT_TRUE(IsError(t.store().List(p), ErrorCode::kInvalidArgument));
}

TYPED_TEST_P(JobStoreSearchConformanceTest, SearchByCreatedAtIsHalfOpen) {
  auto& t = *this;
  std::vector<JobId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(t.Submit("q", kT0 + i * 1000).id);
  ListParams p;
  p.created_after = kT0 + 1000;
  p.created_before = kT0 + 4000;
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{ids[3], ids[2], ids[1]}));
  p.order = ListOrder::kOldest;
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{ids[1], ids[2], ids[3]}));
  p.created_before.reset();
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{ids[1], ids[2], ids[3], ids[4], ids[5]}));
}

TYPED_TEST_P(JobStoreSearchConformanceTest, SearchCombinesFiltersWithQueueStateAndTenant) {
  auto& t = *this;
  NewJob n1 = t.MakeJob("a");
  n1.payload = R"({"k":"x"})";
  n1.tenant = "acme";
  Job j1 = t.Insert(n1);
  NewJob n2 = n1;
  n2.id = JobId::Random();
  n2.tenant = "other";
  t.Insert(n2);
  NewJob n3 = n1;
  n3.id = JobId::Random();
  n3.queue = "b";
  Job j3 = t.Insert(n3);
  Job running = t.ClaimOne("b");
  ASSERT_EQ(running.id, j3.id);
  ListParams p;
  p.text = "x";
  p.tenant = "acme";
  EXPECT_EQ(t.SearchIds(p), (std::vector<JobId>{j3.id, j1.id}));
  p.queue = "a";
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{j1.id});
  p.queue.reset();
  p.state = JobState::kRunning;
  EXPECT_EQ(t.SearchIds(p), std::vector<JobId>{j3.id});
  p.field = FieldMatch{{"k"}, "y"};
  EXPECT_TRUE(t.SearchIds(p).empty());
}

// A search that finds few matches examines at most max_examined jobs per
// page: a page may be short (or empty) and say so, and the cursor resumes
// where the scan stopped, so following it still finds every match once.
TYPED_TEST_P(JobStoreSearchConformanceTest, SearchExaminesAtMostMaxExaminedPerPage) {
  auto& t = *this;
  std::vector<JobId> matches;  // oldest first
  for (int i = 0; i < 20; ++i) {
    const bool needle = i == 3 || i == 9;
    Job j = t.SubmitPayload(needle ? "needle" : "hay");
    if (needle) matches.push_back(j.id);
  }
  ListParams p;
  p.text = "needle";
  p.max_examined = 4;
  p.limit = 2;
  JobPage first = Must(t.store().List(p), "List");
  EXPECT_TRUE(first.scan_limited);
  EXPECT_TRUE(first.next_cursor.has_value());
  EXPECT_TRUE(first.jobs.empty()) << "the newest 4 jobs hold no needle";
  auto r = t.SearchAll(p);
  EXPECT_EQ(r.ids, std::vector<JobId>(matches.rbegin(), matches.rend()));
  // 20 jobs, 4 examined per page; the last page sees that nothing is left.
  EXPECT_EQ(r.pages, 5);
  EXPECT_EQ(r.scan_limited_pages, 4);
  p.order = ListOrder::kOldest;
  EXPECT_EQ(t.SearchIds(p), matches);
  // With room to examine everything: one page, no scan limit.
  p.max_examined = kListMaxExamined;
  p.limit = 10;
  auto all = t.SearchAll(p);
  EXPECT_EQ(all.ids, matches);
  EXPECT_EQ(all.pages, 1);
  EXPECT_EQ(all.scan_limited_pages, 0);
}

TYPED_TEST_P(JobStoreSearchConformanceTest, AttemptHistoryRecordsHowEachAttemptEnded) {
  auto& t = *this;
  NewJob n = t.MakeJob("q", kT0);
  n.max_attempts = 5;
  Job j = t.Insert(n);
  EXPECT_TRUE(t.Attempts(j.id).attempts.empty());

  Job a1 = t.ClaimOne("q", kT0 + 10, "node-a");
  {
    AttemptHistory h = t.Attempts(j.id);
    ASSERT_EQ(h.attempts.size(), 1u);
    EXPECT_EQ(h.attempts[0].end, AttemptEnd::kRunning);
    EXPECT_EQ(h.attempts[0].attempt, 1);
    EXPECT_EQ(h.attempts[0].started_at, kT0 + 10);
    EXPECT_EQ(h.attempts[0].ended_at, std::nullopt);
    EXPECT_EQ(h.attempts[0].worker, "node-a");
  }
  t.MustFinish(AttemptOutcome::Retry(j.id, a1.lease_token, kT0 + 20, kT0 + 20,
                                     JobError{"handler_error", "boom \"quoted\"\nline"}));
  Job a2 = t.ClaimOne("q", kT0 + 30, "node-b");
  t.MustFinish(
      AttemptOutcome::Retry(j.id, a2.lease_token, kT0 + 40, kT0 + 40, JobError{"timeout", "slow"}));
  Job a3 = t.ClaimOne("q", kT0 + 50, "node-c");
  ASSERT_EQ(t.Rescue(a3.lease_expires_at + 1).size(), 1u);  // lease expired
  const UnixMillis t4 = a3.lease_expires_at + 10;
  Job a4 = t.ClaimOne("q", t4, "node-d");
  ASSERT_TRUE(IsOk(t.ReleaseOne(a4, t4 + 5)));  // released: attempt 4 again next
  Job a5 = t.ClaimOne("q", t4 + 10, "node-e");
  EXPECT_EQ(a5.attempts, 4);
  t.MustFinish(AttemptOutcome::Succeeded(j.id, a5.lease_token, t4 + 20, "r", "text/plain"));

  AttemptHistory h = t.Attempts(j.id);
  EXPECT_EQ(h.job.state, JobState::kSucceeded);
  EXPECT_EQ(h.dropped, 0);
  ASSERT_EQ(h.attempts.size(), 5u);
  const std::vector<std::tuple<int, AttemptEnd, std::string>> expected = {
      {1, AttemptEnd::kFailed, "node-a"},       {2, AttemptEnd::kTimeout, "node-b"},
      {3, AttemptEnd::kLeaseExpired, "node-c"}, {4, AttemptEnd::kReleased, "node-d"},
      {4, AttemptEnd::kSucceeded, "node-e"},
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(h.attempts[i].attempt, std::get<0>(expected[i]));
    EXPECT_EQ(h.attempts[i].end, std::get<1>(expected[i]));
    EXPECT_EQ(h.attempts[i].worker, std::get<2>(expected[i]));
  }
  EXPECT_EQ(h.attempts[0].started_at, kT0 + 10);
  EXPECT_EQ(h.attempts[0].ended_at, kT0 + 20);
  ASSERT_TRUE(h.attempts[0].error.has_value());
  EXPECT_EQ(h.attempts[0].error->type, "handler_error");
  EXPECT_EQ(h.attempts[0].error->message, "boom \"quoted\"\nline");
  ASSERT_TRUE(h.attempts[1].error.has_value());
  EXPECT_EQ(h.attempts[1].error->type, "timeout");
  ASSERT_TRUE(h.attempts[2].error.has_value());
  EXPECT_EQ(h.attempts[2].error->type, "lease_expired");
  EXPECT_EQ(h.attempts[2].ended_at, a3.lease_expires_at + 1);
  EXPECT_FALSE(h.attempts[3].error.has_value());
  EXPECT_FALSE(h.attempts[4].error.has_value());
  EXPECT_EQ(h.attempts[4].started_at, t4 + 10);
  EXPECT_EQ(h.attempts[4].ended_at, t4 + 20);

  // Canceled attempts, and ReleaseLeases (a node's shutdown), are recorded too.
  Job k = t.Running("q", kT0 + 100, "node-x");
  ASSERT_TRUE(IsOk(t.Cancel(k.id, kT0 + 101)));
  t.MustFinish(AttemptOutcome::Canceled(k.id, k.lease_token, kT0 + 102));
  AttemptHistory hk = t.Attempts(k.id);
  ASSERT_EQ(hk.attempts.size(), 1u);
  EXPECT_EQ(hk.attempts[0].end, AttemptEnd::kCanceled);
  Job r = t.Running("q", kT0 + 200, "node-y");
  EXPECT_EQ(t.Release("node-y", kT0 + 201), 1);
  AttemptHistory hr = t.Attempts(r.id);
  ASSERT_EQ(hr.attempts.size(), 1u);
  EXPECT_EQ(hr.attempts[0].end, AttemptEnd::kReleased);
  EXPECT_EQ(hr.attempts[0].worker, "node-y");

  EXPECT_TRUE(IsError(t.store().GetAttempts(JobId::Random()), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreSearchConformanceTest, AttemptHistoryKeepsTheLastAttemptsAndCountsDropped) {
  auto& t = *this;
  Job j = t.Submit();
  const int n = kAttemptHistoryCap + 5;
  for (int i = 0; i < n; ++i) {
    Job c = t.ClaimOne("q", kT0 + i * 10, "node-" + std::to_string(i));
    ASSERT_TRUE(IsOk(t.ReleaseOne(c, kT0 + i * 10 + 1)));
  }
  Job last = t.ClaimOne("q", kT0 + 1000, "node-last");
  AttemptHistory h = t.Attempts(j.id);
  EXPECT_EQ(h.dropped, 5);
  ASSERT_EQ(h.attempts.size(), static_cast<size_t>(kAttemptHistoryCap + 1));
  EXPECT_EQ(h.attempts.front().worker, "node-5");
  EXPECT_EQ(h.attempts[kAttemptHistoryCap - 1].worker, "node-" + std::to_string(n - 1));
  EXPECT_EQ(h.attempts.back().end, AttemptEnd::kRunning);
  EXPECT_EQ(h.attempts.back().worker, "node-last");
  EXPECT_EQ(h.attempts.back().attempt, last.attempts);
}

TYPED_TEST_P(JobStoreSearchConformanceTest, ThroughputCountsFinishedJobsPerQueueStateAndBucket) {
  auto& t = *this;
  constexpr Millis kStep = 60'000;
  const UnixMillis since = kT0;
  auto finish = [&](const std::string& queue, UnixMillis at, AttemptOutcome::Kind kind) {
    Job r = t.Running(queue, at - 1);
    switch (kind) {
      case AttemptOutcome::Kind::kSucceeded:
        t.MustFinish(AttemptOutcome::Succeeded(r.id, r.lease_token, at, "r", "t"));
        break;
      case AttemptOutcome::Kind::kFailed:
        t.MustFinish(AttemptOutcome::Failed(r.id, r.lease_token, at, JobError{"e", "m"}));
        break;
      default:
        t.MustFinish(AttemptOutcome::Canceled(r.id, r.lease_token, at));
        break;
    }
  };
  using K = AttemptOutcome::Kind;
  finish("a", since - 1, K::kSucceeded);  // before the window
  finish("a", since, K::kSucceeded);
  finish("a", since + kStep - 1, K::kSucceeded);
  finish("a", since + kStep, K::kFailed);
  finish("a", since + 2 * kStep + 5, K::kCanceled);
  finish("b", since + 2 * kStep + 7, K::kSucceeded);
  finish("b", since + 3 * kStep, K::kSucceeded);  // after the window
  Job retried = t.Running("c", since + 20);       // failed, then queued again: not finished
  t.MustFinish(AttemptOutcome::Retry(retried.id, retried.lease_token, since + 30, since + 30,
                                     JobError{"e", "m"}));
  t.Submit("c", since + 10);  // not finished
  auto rows = Must(t.store().Throughput(since, kStep, 3), "Throughput");
  std::sort(rows.begin(), rows.end(),
            [](const QueueThroughput& x, const QueueThroughput& y) { return x.queue < y.queue; });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].queue, "a");
  EXPECT_EQ(rows[0].succeeded, (std::vector<int64_t>{2, 0, 0}));
  EXPECT_EQ(rows[0].failed, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(rows[0].canceled, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(rows[1].queue, "b");
  EXPECT_EQ(rows[1].succeeded, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(rows[1].failed, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_TRUE(Must(t.store().Throughput(since + 10 * kStep, kStep, 3), "Throughput").empty());
}

REGISTER_TYPED_TEST_SUITE_P(JobStoreSearchConformanceTest, ListOldestFirstPaginatesWithTheCursor,
                            SearchByTextMatchesPayloadOrResultBytes,
                            SearchByFieldMatchesJsonStringsNumbersAndBools,
                            SearchByIdPrefixWithAndWithoutTheIdIndex, SearchByCreatedAtIsHalfOpen,
                            SearchCombinesFiltersWithQueueStateAndTenant,
                            SearchExaminesAtMostMaxExaminedPerPage,
                            AttemptHistoryRecordsHowEachAttemptEnded,
                            AttemptHistoryKeepsTheLastAttemptsAndCountsDropped,
                            ThroughputCountsFinishedJobsPerQueueStateAndBucket);

}  // namespace acceptd::store_testing
