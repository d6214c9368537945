// JobStore conformance suite: the contract of store/job_store.h, written once
// against the JobStore / WriteTx interface and run against every backend.
//
// It checks behaviour only (what the comments in job_store.h and core/job.h
// promise), never SQL or backend internals. Times are explicit `now`
// arguments, so no test depends on the wall clock.
//
// To run it against a backend, write a factory type and instantiate the
// typed test suite in one test source file:
//
//   struct MyBackendFactory {
//     MyBackendFactory();   // prepares a fresh, empty database for one test
//     ~MyBackendFactory();  // removes it
//     // Opens a store object on that database. Called again after the
//     // previous store object was destroyed, it must see the same data
//     // (durability across reopen); called while one is open, it opens a
//     // second one on the same database (another node: OpenAnother).
//     Result<std::unique_ptr<JobStore>> Open();
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(MyBackend, JobStoreConformanceTest,
//                                  ::testing::Types<MyBackendFactory>);
//
// A fresh factory object is constructed for every test. A backend that needs
// a server may give its factory `static std::string SkipReason();`: when it
// returns non-empty (no server configured), every test is skipped with that
// message (SkipReason itself may ADD_FAILURE when skipping is not allowed).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/job_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::store_testing {

inline constexpr UnixMillis kT0 = 1'700'000'000'000;
inline constexpr Millis kLease = 30'000;
inline constexpr Millis kRetention = 60'000;

using StateCounts = std::array<int64_t, kJobStateCount>;

inline StateCounts Tally(std::initializer_list<std::pair<JobState, int64_t>> counts) {
  StateCounts out{};
  for (auto [state, n] : counts) out[static_cast<size_t>(state)] = n;
  return out;
}

// Every field a store keeps for a job, except the payload (not returned by reads).
inline void ExpectSameJob(const Job& a, const Job& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.queue, b.queue);
  EXPECT_EQ(a.tenant, b.tenant);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.content_type, b.content_type);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.run_at, b.run_at);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.finished_at, b.finished_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.max_attempts, b.max_attempts);
  EXPECT_EQ(a.timeout, b.timeout);
  EXPECT_EQ(a.retention, b.retention);
  EXPECT_EQ(a.progress.has_value(), b.progress.has_value());
  if (a.progress && b.progress) {
    EXPECT_EQ(a.progress->percent, b.progress->percent);
    EXPECT_EQ(a.progress->message, b.progress->message);
  }
  EXPECT_EQ(a.error.has_value(), b.error.has_value());
  if (a.error && b.error) {
    EXPECT_EQ(a.error->type, b.error->type);
    EXPECT_EQ(a.error->message, b.error->message);
  }
  EXPECT_EQ(a.cancel_requested, b.cancel_requested);
  EXPECT_EQ(a.delete_requested, b.delete_requested);
  EXPECT_EQ(a.has_result, b.has_result);
  EXPECT_EQ(a.lease_owner, b.lease_owner);
  EXPECT_EQ(a.lease_token, b.lease_token);
  EXPECT_EQ(a.lease_expires_at, b.lease_expires_at);
  EXPECT_EQ(a.callback.has_value(), b.callback.has_value());
  if (a.callback && b.callback) {
    EXPECT_EQ(a.callback->url, b.callback->url);
    EXPECT_EQ(a.callback->attempts, b.callback->attempts);
    EXPECT_EQ(a.callback->last_status, b.callback->last_status);
    EXPECT_EQ(a.callback->last_error, b.callback->last_error);
    EXPECT_EQ(a.callback->delivered_at, b.callback->delivered_at);
    EXPECT_EQ(a.callback->next_attempt_at, b.callback->next_attempt_at);
  }
}

template <typename Factory>
class JobStoreConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires { Factory::SkipReason(); }) {
      if (std::string why = Factory::SkipReason(); !why.empty()) GTEST_SKIP() << why;
    }
    OpenObserved("open store");
  }
  // Every state change any test made the store attempt must have been legal
  // by core's transition table (the store refuses illegal ones; this catches
  // a store statement that tries one, even where the test did not look).
  void TearDown() override {
    if (!store_) return;  // skipped
    store_.reset();
    std::lock_guard lock(transitions_mu_);
    for (const StateTransition& t : transitions_) {
      EXPECT_TRUE(t.legal) << "illegal state change attempted: "
                           << (t.from ? ToString(*t.from) : "(new)") << " -> " << ToString(t.to);
      const bool legal = t.from ? IsLegalTransition(*t.from, t.to) : IsLegalInitialState(t.to);
      EXPECT_EQ(t.legal, legal) << "the store misreported a transition's legality";
    }
  }

  // Closes the store object and opens the same database again.
  void Reopen() {
    store_.reset();
    OpenObserved("reopen store");
  }

  // The state changes the store reported so far, in order.
  std::vector<StateTransition> Transitions() {
    std::lock_guard lock(transitions_mu_);
    return transitions_;
  }

  JobStore& store() { return *store_; }
  // A second store object on the same database, as another node has.
  std::unique_ptr<JobStore> OpenAnother() { return Must(factory_.Open(), "open another store"); }

  // Fires `tick` of `schedule` in its own transaction: a new job for `queue`.
  static ScheduleFire MakeFire(std::string schedule, UnixMillis tick, std::string queue = "q") {
    ScheduleFire f;
    f.schedule = std::move(schedule);
    f.tick = tick;
    f.job = MakeJob(std::move(queue), tick);
    return f;
  }
  Result<Job> Fire(const ScheduleFire& f) {
    return Write([&](WriteTx& tx) { return tx.FireSchedule(f); });
  }
  std::map<std::string, ScheduleState> States(JobStore* other = nullptr) {
    std::map<std::string, ScheduleState> out;
    for (ScheduleState& st : Must((other ? *other : store()).ScheduleStates(), "ScheduleStates")) {
      EXPECT_EQ(out.count(st.schedule), 0u) << "schedule listed twice: " << st.schedule;
      out[st.schedule] = std::move(st);
    }
    return out;
  }

  // A job for `queue`, due at `now`, with room in the queue.
  static NewJob MakeJob(std::string queue = "q", UnixMillis now = kT0) {
    NewJob n;
    n.id = JobId::Random();
    n.queue = std::move(queue);
    n.payload = R"({"n":1})";
    n.content_type = "application/json";
    n.priority = 0;
    n.max_attempts = 3;
    n.timeout = 5'000;
    n.retention = kRetention;
    n.now = now;
    n.run_at = now;
    n.max_depth = 1'000;
    return n;
  }

  // Runs `f` in its own write transaction and commits it unless the result is
  // an error after which the transaction must be abandoned.
  template <typename F>
  auto Write(F&& f) {
    auto tx = Must(store().BeginWrite(), "BeginWrite");
    auto r = f(*tx);
    if (r.ok() ||
        (r.error().code != ErrorCode::kInternal && r.error().code != ErrorCode::kUnavailable)) {
      Must(tx->Commit(), "Commit");
    }
    return r;
  }

  Job Insert(const NewJob& n) {
    return Must(Write([&](WriteTx& tx) { return tx.Insert(n); }), "Insert");
  }
  Job Submit(std::string queue = "q", UnixMillis now = kT0) {
    return Insert(MakeJob(std::move(queue), now));
  }

  std::vector<Job> Claim(std::string queue, int limit, UnixMillis now = kT0,
                         std::string owner = "node-a", std::optional<UnixMillis> lease = {}) {
    ClaimParams p;
    p.queue = std::move(queue);
    p.limit = limit;
    p.owner = std::move(owner);
    p.now = now;
    p.lease_expires_at = lease.value_or(now + kLease);
    return Must(Write([&](WriteTx& tx) { return tx.Claim(p); }), "Claim");
  }
  // Claims exactly one job (throws otherwise).
  Job ClaimOne(std::string queue = "q", UnixMillis now = kT0, std::string owner = "node-a",
               std::optional<UnixMillis> lease = {}) {
    auto jobs = Claim(std::move(queue), 1, now, std::move(owner), lease);
    if (jobs.size() != 1) throw MustFailed(fmt::format("claimed {} jobs, not 1", jobs.size()));
    return std::move(jobs.front());
  }
  // Ids of claimable jobs, claiming them one by one (limit 1 each time).
  std::vector<JobId> ClaimAllOneByOne(const std::string& queue, UnixMillis now) {
    std::vector<JobId> ids;
    for (;;) {
      auto jobs = Claim(queue, 1, now);
      if (jobs.empty()) return ids;
      EXPECT_EQ(jobs.size(), 1u);
      ids.push_back(jobs.front().id);
    }
  }

  Result<Job> Finish(const AttemptOutcome& o) {
    return Write([&](WriteTx& tx) { return tx.Finish(o); });
  }
  Job MustFinish(const AttemptOutcome& o) { return Must(Finish(o), "Finish"); }
  Result<CancelOutcome> Cancel(const JobId& id, UnixMillis now = kT0) {
    return Write([&](WriteTx& tx) { return tx.Cancel(id, now); });
  }
  Result<CancelOutcome> Delete(const JobId& id, UnixMillis now = kT0) {
    return Write([&](WriteTx& tx) { return tx.Delete(id, now); });
  }
  Status SetProgress(const JobId& id, int64_t token, Progress p, UnixMillis now = kT0) {
    auto tx = Must(store().BeginWrite(), "BeginWrite");
    auto st = tx->SetProgress(id, token, p, now);
    if (st.ok()) Must(tx->Commit(), "Commit");
    return st;
  }
  LeaseRenewal ExtendLeases(const std::vector<Job>& jobs, UnixMillis expires, UnixMillis now) {
    std::vector<LeaseRef> leases;
    for (const Job& j : jobs) leases.push_back(LeaseRef{j.id, j.lease_token});
    return Must(Write([&](WriteTx& tx) { return tx.ExtendLeases(leases, expires, now); }),
                "ExtendLeases");
  }
  Result<HeartbeatResult> Heartbeat(const Job& j, UnixMillis until, UnixMillis now,
                                    std::optional<Progress> progress = {}) {
    return Write([&](WriteTx& tx) {
      return tx.Heartbeat(LeaseRef{j.id, j.lease_token}, until, now, progress);
    });
  }
  Result<Job> ReleaseOne(const Job& j, UnixMillis now) {
    return Write([&](WriteTx& tx) { return tx.ReleaseLease(LeaseRef{j.id, j.lease_token}, now); });
  }
  // An external worker's claim: the lease stays within the job's timeout.
  Job ClaimExternal(std::string queue, UnixMillis now, UnixMillis lease_until) {
    ClaimParams p;
    p.queue = std::move(queue);
    p.limit = 1;
    p.owner = "worker";
    p.now = now;
    p.lease_expires_at = lease_until;
    p.lease_within_timeout = true;
    auto jobs = Must(Write([&](WriteTx& tx) { return tx.Claim(p); }), "Claim");
    if (jobs.size() != 1) throw MustFailed(fmt::format("claimed {} jobs, not 1", jobs.size()));
    return std::move(jobs.front());
  }
  std::vector<Job> Rescue(UnixMillis now, int limit = 100) {
    return Must(Write([&](WriteTx& tx) { return tx.RescueExpiredLeases(now, limit); }),
                "RescueExpiredLeases");
  }
  int64_t Release(const std::string& owner, UnixMillis now) {
    return Must(Write([&](WriteTx& tx) { return tx.ReleaseLeases(owner, now); }), "ReleaseLeases");
  }
  std::set<std::string> Promote(UnixMillis now, int limit = 100) {
    auto queues =
        Must(Write([&](WriteTx& tx) { return tx.PromoteDueJobs(now, limit); }), "PromoteDueJobs");
    std::set<std::string> out(queues.begin(), queues.end());
    EXPECT_EQ(out.size(), queues.size()) << "PromoteDueJobs returns distinct queues";
    return out;
  }
  std::vector<Job> ClaimCallbacks(UnixMillis now, int limit = 100,
                                  std::optional<UnixMillis> lease_until = {}) {
    return Must(Write([&](WriteTx& tx) {
                  return tx.ClaimCallbacks(now, limit, lease_until.value_or(now + kLease));
                }),
                "ClaimCallbacks");
  }
  Job RecordCallback(const CallbackAttempt& a) {
    return Must(Write([&](WriteTx& tx) { return tx.RecordCallbackAttempt(a); }),
                "RecordCallbackAttempt");
  }
  int64_t Purge(UnixMillis now, int limit = 100) {
    return Total(
        Must(Write([&](WriteTx& tx) { return tx.PurgeExpired(now, limit, 0); }), "PurgeExpired"));
  }
  static int64_t Total(const std::vector<QueueValue>& per_queue) {
    int64_t n = 0;
    for (const QueueValue& q : per_queue) n += q.value;
    return n;
  }
  // Sorted by queue, for comparisons.
  static std::vector<QueueValue> Sorted(std::vector<QueueValue> v) {
    std::sort(v.begin(), v.end(),
              [](const QueueValue& a, const QueueValue& b) { return a.queue < b.queue; });
    return v;
  }

  Job Get(const JobId& id) { return Must(store().Get(id), "Get"); }
  bool Exists(const JobId& id) {
    auto r = store().Get(id);
    if (r.ok()) return true;
    if (r.error().code != ErrorCode::kNotFound) throw MustFailed("Get: " + Describe(r.error()));
    return false;
  }

  // A running job that has been through Insert + Claim.
  Job Running(std::string queue = "q", UnixMillis now = kT0, std::string owner = "node-a",
              int max_attempts = 3) {
    NewJob n = MakeJob(queue, now);
    n.max_attempts = max_attempts;
    Job j = Insert(n);
    Job c = ClaimOne(queue, now, std::move(owner));
    if (c.id != j.id) throw MustFailed("claimed another job than the one just inserted");
    return c;
  }

  std::map<std::string, StateCounts> CountsByQueue() {
    std::map<std::string, StateCounts> out;
    for (const QueueCounts& c : Must(store().Counts(), "Counts")) {
      StateCounts s{};
      std::copy(std::begin(c.counts), std::end(c.counts), s.begin());
      EXPECT_EQ(out.count(c.queue), 0u) << "queue listed twice by Counts(): " << c.queue;
      out[c.queue] = s;
    }
    return out;
  }
  StateCounts CountsOf(const std::string& queue) {
    auto all = CountsByQueue();
    auto it = all.find(queue);
    return it == all.end() ? StateCounts{} : it->second;
  }

  // Every job of the store matching `p` (all pages), newest first.
  std::vector<Job> ListAll(ListParams p = {}) {
    std::vector<Job> out;
    p.limit = 7;  // several pages for the larger tests
    for (;;) {
      JobPage page = Must(store().List(p), "List");
      for (Job& j : page.jobs) out.push_back(std::move(j));
      if (!page.next_cursor) return out;
      p.before_seq = page.next_cursor;
    }
  }

  // The invariant behind load leveling: Counts() agrees with the jobs present.
  void ExpectCountsMatchJobs(const std::string& when) {
    SCOPED_TRACE("after " + when);
    std::map<std::string, StateCounts> expected;
    for (const Job& j : ListAll()) ++expected[j.queue][static_cast<size_t>(j.state)];
    auto actual = CountsByQueue();
    for (const auto& [queue, counts] : expected) {
      ASSERT_TRUE(actual.count(queue)) << "Counts() lacks queue " << queue;
      EXPECT_EQ(actual[queue], counts) << "queue " << queue;
    }
    for (const auto& [queue, counts] : actual) {
      if (!expected.count(queue)) {
        EXPECT_EQ(counts, StateCounts{}) << "queue " << queue;
      }
    }
  }

  void OpenObserved(std::string_view what) {
    store_ = Must(factory_.Open(), what);
    store_->SetTransitionObserver([this](const StateTransition& t) {
      std::lock_guard lock(transitions_mu_);
      transitions_.push_back(t);
    });
  }

  Factory factory_;
  std::unique_ptr<JobStore> store_;
  std::mutex transitions_mu_;
  std::vector<StateTransition> transitions_;  // guarded by transitions_mu_
};

TYPED_TEST_SUITE_P(JobStoreConformanceTest);

// ---------------------------------------------------------------------------
// The transition table is the authority

TYPED_TEST_P(JobStoreConformanceTest, EveryStateChangeIsReportedAndCheckedAgainstTheTable) {
  auto& t = *this;
  Job done = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(done.id, done.lease_token, kT0 + 1, "r", "text/plain"));
  Job queued = t.Submit();
  ASSERT_TRUE(IsOk(t.Cancel(queued.id, kT0 + 2)));
  using S = JobState;
  std::vector<std::pair<std::optional<S>, S>> seen;
  for (const StateTransition& tr : t.Transitions()) {
    EXPECT_TRUE(tr.legal);
    seen.emplace_back(tr.from, tr.to);
  }
  const std::vector<std::pair<std::optional<S>, S>> expected = {{std::nullopt, S::kQueued},
                                                                {S::kQueued, S::kRunning},
                                                                {S::kRunning, S::kSucceeded},
                                                                {std::nullopt, S::kQueued},
                                                                {S::kQueued, S::kCanceled}};
  EXPECT_EQ(seen, expected);
}

// ---------------------------------------------------------------------------
// Insert and Get

TYPED_TEST_P(JobStoreConformanceTest, InsertThenGetRoundTripsEveryField) {
  auto& t = *this;
  NewJob n = t.MakeJob("emails", kT0);
  n.content_type = "text/plain; charset=utf-8";
  n.priority = -7;
  n.max_attempts = 5;
  n.timeout = 1'234;
  n.retention = 98'765;
  n.run_at = kT0 + 4'000;
  n.tenant = "acme";
  Job inserted = t.Insert(n);

  EXPECT_GT(inserted.seq, 0);
  EXPECT_EQ(inserted.tenant, "acme");
  EXPECT_EQ(inserted.id, n.id);
  EXPECT_EQ(inserted.queue, "emails");
  EXPECT_EQ(inserted.state, JobState::kQueued);

  Job got = t.Get(n.id);
  ExpectSameJob(got, inserted);
  EXPECT_EQ(got.id, n.id);
  EXPECT_EQ(got.queue, "emails");
  EXPECT_EQ(got.state, JobState::kQueued);
  EXPECT_EQ(got.priority, -7);
  EXPECT_EQ(got.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(got.created_at, kT0);
  EXPECT_EQ(got.updated_at, kT0);
  EXPECT_EQ(got.run_at, kT0 + 4'000);
  EXPECT_EQ(got.started_at, std::nullopt);
  EXPECT_EQ(got.finished_at, std::nullopt);
  EXPECT_EQ(got.expires_at, std::nullopt);
  EXPECT_EQ(got.attempts, 0);
  EXPECT_EQ(got.max_attempts, 5);
  EXPECT_EQ(got.timeout, 1'234);
  EXPECT_EQ(got.retention, 98'765);
  EXPECT_FALSE(got.progress.has_value());
  EXPECT_FALSE(got.error.has_value());
  EXPECT_FALSE(got.cancel_requested);
  EXPECT_FALSE(got.delete_requested);
  EXPECT_FALSE(got.has_result);
  EXPECT_TRUE(got.payload.empty()) << "Get returns the job without its payload";

  StoredResult r = Must(t.store().GetResult(n.id), "GetResult");
  EXPECT_EQ(r.state, JobState::kQueued);
  EXPECT_FALSE(r.has_result);
}

TYPED_TEST_P(JobStoreConformanceTest, PayloadBytesRoundTripIncludingNulAndEmpty) {
  auto& t = *this;
  const std::string binary("\0\x01pay\0load\xff\xfe\0", 13);
  NewJob a = t.MakeJob("bin", kT0);
  a.payload = binary;
  a.content_type = "application/octet-stream";
  t.Insert(a);
  NewJob b = t.MakeJob("bin", kT0 + 1);
  b.payload = "";
  t.Insert(b);

  auto jobs = t.Claim("bin", 10, kT0 + 10);
  ASSERT_EQ(jobs.size(), 2u);
  for (const Job& j : jobs) {
    if (j.id == a.id) {
      EXPECT_EQ(j.payload.size(), binary.size());
      EXPECT_EQ(j.payload, binary);
      EXPECT_EQ(j.content_type, "application/octet-stream");
    } else {
      EXPECT_EQ(j.id, b.id);
      EXPECT_EQ(j.payload, "");
    }
  }
}

TYPED_TEST_P(JobStoreConformanceTest, GetAndGetResultOfUnknownIdAreNotFound) {
  auto& t = *this;
  t.Submit();
  JobId unknown = JobId::Random();
  EXPECT_TRUE(IsError(t.store().Get(unknown), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(t.store().GetResult(unknown), ErrorCode::kNotFound));
}

// An idempotency key binds a queue's job to a request digest: the same key
// and digest return the original job, another digest is refused, another
// queue is independent; all of it durable.
TYPED_TEST_P(JobStoreConformanceTest, IdempotencyKeyReplaysOrRefuses) {
  auto& t = *this;
  NewJob first = t.MakeJob("q", kT0);
  first.idempotency_key = "key-1";
  first.request_digest = std::string("digest\0A", 8);
  Job original = t.Insert(first);
  EXPECT_EQ(original.id, first.id);

  t.Reopen();
  NewJob again = t.MakeJob("q", kT0 + 10);
  again.idempotency_key = "key-1";
  again.request_digest = first.request_digest;
  Job replayed = t.Insert(again);
  EXPECT_EQ(replayed.id, first.id) << "a replay returns the original job";
  EXPECT_FALSE(t.Exists(again.id)) << "a replay inserts nothing";

  NewJob other_request = t.MakeJob("q", kT0 + 20);
  other_request.idempotency_key = "key-1";
  other_request.request_digest = std::string("digest\0B", 8);
  {
    auto tx = Must(t.store().BeginWrite(), "BeginWrite");
    EXPECT_TRUE(IsError(tx->Insert(other_request), ErrorCode::kIdempotencyMismatch));
    Must(tx->Commit(), "Commit");
  }
  EXPECT_FALSE(t.Exists(other_request.id));

  NewJob other_queue = t.MakeJob("q2", kT0 + 30);
  other_queue.idempotency_key = "key-1";
  other_queue.request_digest = std::string("digest\0B", 8);
  EXPECT_EQ(t.Insert(other_queue).id, other_queue.id) << "keys are per queue";
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}}));
  t.ExpectCountsMatchJobs("idempotent inserts");
}

// Idempotency keys are scoped per tenant: two tenants using the same key (and
// the same request) get two jobs; within a tenant the key still replays.
TYPED_TEST_P(JobStoreConformanceTest, IdempotencyKeysAreScopedPerTenant) {
  auto& t = *this;
  NewJob acme = t.MakeJob("q", kT0);
  acme.tenant = "acme";
  acme.idempotency_key = "order-1";
  acme.request_digest = "same request";
  NewJob globex = t.MakeJob("q", kT0 + 1);
  globex.tenant = "globex";
  globex.idempotency_key = acme.idempotency_key;
  globex.request_digest = acme.request_digest;
  NewJob none = t.MakeJob("q", kT0 + 2);
  none.idempotency_key = acme.idempotency_key;
  none.request_digest = acme.request_digest;
  EXPECT_EQ(t.Insert(acme).id, acme.id);
  EXPECT_EQ(t.Insert(globex).id, globex.id) << "another tenant's key does not collide";
  EXPECT_EQ(t.Insert(none).id, none.id) << "nor does the same key without a tenant";

  NewJob again = t.MakeJob("q", kT0 + 3);
  again.tenant = "globex";
  again.idempotency_key = acme.idempotency_key;
  again.request_digest = acme.request_digest;
  Job replayed = t.Insert(again);
  EXPECT_EQ(replayed.id, globex.id) << "within a tenant, the key replays its own job";
  EXPECT_EQ(replayed.tenant, "globex");
  EXPECT_FALSE(t.Exists(again.id));
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 3}}));
}

// A job's tenant is stored and returned by every read, and List can filter by it.
TYPED_TEST_P(JobStoreConformanceTest, TenantRoundTripsAndListFiltersByIt) {
  auto& t = *this;
  NewJob a1 = t.MakeJob("q", kT0);
  a1.tenant = "acme";
  NewJob b1 = t.MakeJob("q", kT0 + 1);
  b1.tenant = "globex";
  NewJob n1 = t.MakeJob("r", kT0 + 2);
  NewJob a2 = t.MakeJob("r", kT0 + 3);
  a2.tenant = "acme";
  for (const NewJob* n : {&a1, &b1, &n1, &a2}) EXPECT_EQ(t.Insert(*n).tenant, n->tenant);
  t.Reopen();
  EXPECT_EQ(Must(t.store().Get(a1.id), "Get").tenant, "acme");
  EXPECT_EQ(Must(t.store().Get(n1.id), "Get").tenant, "");

  auto ids = [&](std::optional<std::string> tenant, std::optional<std::string> queue = {}) {
    ListParams p;
    p.tenant = std::move(tenant);
    p.queue = std::move(queue);
    std::vector<JobId> out;
    for (const Job& j : t.ListAll(p)) out.push_back(j.id);
    return out;
  };
  EXPECT_EQ(ids("acme"), (std::vector<JobId>{a2.id, a1.id}));
  EXPECT_EQ(ids("globex"), (std::vector<JobId>{b1.id}));
  EXPECT_EQ(ids(""), (std::vector<JobId>{n1.id})) << "\"\" lists the jobs of no tenant";
  EXPECT_EQ(ids("acme", "r"), (std::vector<JobId>{a2.id}));
  EXPECT_TRUE(ids("initech").empty());
  EXPECT_EQ(ids(std::nullopt).size(), 4u) << "no filter: every tenant's jobs";
}

TYPED_TEST_P(JobStoreConformanceTest, DuplicateIdIsConflictAndLeavesTxUsable) {
  auto& t = *this;
  NewJob first = t.MakeJob("q", kT0);
  t.Insert(first);

  NewJob dup = t.MakeJob("other", kT0 + 5);
  dup.id = first.id;
  NewJob fresh = t.MakeJob("q", kT0 + 6);
  {
    auto tx = Must(t.store().BeginWrite(), "BeginWrite");
    EXPECT_TRUE(IsError(tx->Insert(dup), ErrorCode::kConflict));
    // "changed nothing and leaves the transaction usable"
    EXPECT_TRUE(IsOk(tx->Insert(fresh)));
    Must(tx->Commit(), "Commit");
  }
  Job kept = t.Get(first.id);
  EXPECT_EQ(kept.queue, "q");
  EXPECT_EQ(kept.created_at, kT0);
  EXPECT_TRUE(t.Exists(fresh.id));
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 2}}));
  EXPECT_EQ(t.CountsOf("other"), StateCounts{});
  t.ExpectCountsMatchJobs("duplicate insert");
}

TYPED_TEST_P(JobStoreConformanceTest, MaxDepthCountsQueuedAndRunningOnly) {
  auto& t = *this;
  auto job = [&](std::string queue, UnixMillis now) {
    NewJob n = t.MakeJob(std::move(queue), now);
    n.max_depth = 3;
    return n;
  };
  Job a = t.Insert(job("q", kT0));
  t.Insert(job("q", kT0 + 1));
  NewJob delayed = job("q", kT0 + 2);
  delayed.run_at = kT0 + 1'000'000;  // a delayed job is queued, so it counts
  t.Insert(delayed);

  NewJob refused = job("q", kT0 + 3);
  auto full = t.Write([&](WriteTx& tx) { return tx.Insert(refused); });
  EXPECT_TRUE(IsError(full, ErrorCode::kQueueFull));
  EXPECT_FALSE(t.Exists(refused.id));

  // Another queue has its own depth.
  t.Insert(job("elsewhere", kT0 + 3));

  // A running job still counts.
  Job running = t.ClaimOne("q", kT0 + 10);
  EXPECT_EQ(running.id, a.id);
  EXPECT_TRUE(IsError(t.Write([&](WriteTx& tx) { return tx.Insert(job("q", kT0 + 11)); }),
                      ErrorCode::kQueueFull));

  // A terminal job does not.
  t.MustFinish(AttemptOutcome::Succeeded(running.id, running.lease_token, kT0 + 12, "ok", "t/p"));
  Job after = t.Insert(job("q", kT0 + 13));
  EXPECT_TRUE(IsError(t.Write([&](WriteTx& tx) { return tx.Insert(job("q", kT0 + 14)); }),
                      ErrorCode::kQueueFull));
  // Canceling a queued job frees its place too.
  ASSERT_TRUE(IsOk(t.Cancel(after.id, kT0 + 15)));
  EXPECT_TRUE(IsOk(t.Write([&](WriteTx& tx) { return tx.Insert(job("q", kT0 + 16)); })));

  // kQueueFull changed nothing and left the transaction usable.
  {
    auto tx = Must(t.store().BeginWrite(), "BeginWrite");
    EXPECT_TRUE(IsError(tx->Insert(job("q", kT0 + 17)), ErrorCode::kQueueFull));
    NewJob other = job("other", kT0 + 17);
    EXPECT_TRUE(IsOk(tx->Insert(other)));
    Must(tx->Commit(), "Commit");
    EXPECT_TRUE(t.Exists(other.id));
  }
  EXPECT_EQ(t.CountsOf("q"),
            Tally({{JobState::kQueued, 3}, {JobState::kSucceeded, 1}, {JobState::kCanceled, 1}}));
  t.ExpectCountsMatchJobs("queue full refusals");
}

// InsertMany: each job gets exactly what Insert would have returned at its
// place in the sequence, seeing the jobs before it in the same call: a key
// used twice in one call replays (or refuses) the first, a queue crossing
// max_depth mid-way refuses the rest, an id taken earlier is a conflict.
// Refusals change nothing and do not stop the jobs after them.
TYPED_TEST_P(JobStoreConformanceTest, InsertManyAppliesEachJobInOrderAsInsertWould) {
  auto& t = *this;
  auto job = [&](std::string queue, UnixMillis now, std::string key = "", std::string digest = "") {
    NewJob n = t.MakeJob(std::move(queue), now);
    n.max_depth = 4;
    n.idempotency_key = std::move(key);
    n.request_digest = std::move(digest);
    return n;
  };
  NewJob existing = job("q", kT0, "k0", std::string("d\0zero", 6));
  t.Insert(existing);
  EXPECT_TRUE(Must(t.Write([](WriteTx& tx) { return tx.InsertMany({}); }), "empty").empty());

  std::vector<NewJob> batch;
  batch.push_back(job("q", kT0 + 1));                                  // 0 inserted
  batch.push_back(job("q", kT0 + 2, "k1", std::string("d\0one", 5)));  // 1 inserted
  batch.push_back(job("q", kT0 + 3, "k1", batch[1].request_digest));   // 2 replays 1
  batch.push_back(job("q", kT0 + 4, "k1", "another request"));         // 3 mismatch
  batch.push_back(job("q", kT0 + 5, "k0", existing.request_digest));   // 4 replays existing
  batch.push_back(job("r", kT0 + 6));                                  // 5 id of 0: conflict
  batch[5].id = batch[0].id;
  batch.push_back(job("q", kT0 + 7));                 // 6 inserted: q is now at its depth (4)
  batch.push_back(job("q", kT0 + 8));                 // 7 full
  batch.push_back(job("q", kT0 + 9, "k7", "seven"));  // 8 full: its key stays unused
  NewJob odd = job("r", kT0 + 10);                    // 9 inserted, every field unusual
  odd.payload = std::string("\0\xff\x01", 3);
  odd.content_type = "application/octet-stream";
  odd.priority = -7;
  odd.max_attempts = 9;
  odd.timeout = 1'234;
  odd.run_at = kT0 + 1'000'000;
  odd.tenant = "t\xc3\xa9nant";
  odd.callback_url = "http://127.0.0.1:1/cb";
  batch.push_back(odd);
  batch.push_back(job("r", kT0 + 11, "k7", "seven"));  // 10 inserted: k7 is per queue

  std::vector<Result<Job>> out;
  {
    auto tx = Must(t.store().BeginWrite(), "BeginWrite");
    out = Must(tx->InsertMany(batch), "InsertMany");
    // The transaction stays usable after the refusals.
    NewJob after = job("r", kT0 + 12);
    EXPECT_TRUE(IsOk(tx->Insert(after)));
    Must(tx->Commit(), "Commit");
  }
  ASSERT_EQ(out.size(), batch.size());
  for (size_t i : {0u, 1u, 6u, 9u, 10u}) {
    ASSERT_TRUE(IsOk(out[i])) << "job " << i;
    EXPECT_EQ(out[i]->id, batch[i].id) << "job " << i;
    EXPECT_EQ(out[i]->state, JobState::kQueued);
    EXPECT_TRUE(t.Exists(batch[i].id)) << "job " << i;
  }
  ASSERT_TRUE(IsOk(out[2]));
  EXPECT_EQ(out[2]->id, batch[1].id) << "a key used twice in one call replays the first";
  EXPECT_TRUE(IsError(out[3], ErrorCode::kIdempotencyMismatch));
  ASSERT_TRUE(IsOk(out[4]));
  EXPECT_EQ(out[4]->id, existing.id);
  EXPECT_EQ(out[4]->created_at, kT0) << "the original job, as stored";
  EXPECT_TRUE(IsError(out[5], ErrorCode::kConflict));
  EXPECT_TRUE(IsError(out[7], ErrorCode::kQueueFull));
  EXPECT_TRUE(IsError(out[8], ErrorCode::kQueueFull));
  for (size_t i : {2u, 3u, 4u, 7u, 8u}) EXPECT_FALSE(t.Exists(batch[i].id)) << "job " << i;
  EXPECT_EQ(t.Get(batch[0].id).queue, "q") << "the conflicting job changed nothing";

  EXPECT_EQ(out[9]->priority, -7);
  EXPECT_EQ(out[9]->tenant, odd.tenant);
  Job stored = t.Get(odd.id);
  EXPECT_EQ(stored.priority, -7);
  EXPECT_EQ(stored.max_attempts, 9);
  EXPECT_EQ(stored.timeout, 1'234);
  EXPECT_EQ(stored.run_at, kT0 + 1'000'000);
  EXPECT_EQ(stored.tenant, odd.tenant);
  ASSERT_TRUE(stored.callback.has_value());
  EXPECT_EQ(stored.callback->url, odd.callback_url);
  StoredPayload payload = Must(t.store().GetPayload(odd.id), "GetPayload");
  EXPECT_EQ(payload.body, odd.payload);
  EXPECT_EQ(payload.content_type, odd.content_type);
  EXPECT_TRUE(t.ClaimAllOneByOne("r", kT0 + 20).size() == 2u) << "the delayed job waits";

  // A later call still sees the first call's keys.
  NewJob replay = job("q", kT0 + 30, "k1", batch[1].request_digest);
  auto again = Must(t.Write([&](WriteTx& tx) { return tx.InsertMany({replay}); }), "again");
  ASSERT_EQ(again.size(), 1u);
  ASSERT_TRUE(IsOk(again[0]));
  EXPECT_EQ(again[0]->id, batch[1].id);
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 4}}));
  t.ExpectCountsMatchJobs("insert many");
}

// ---------------------------------------------------------------------------
// Claim

TYPED_TEST_P(JobStoreConformanceTest, ClaimOrderIsPriorityThenRunAtThenInsertion) {
  auto& t = *this;
  auto job = [&](int priority, UnixMillis run_at) {
    NewJob n = t.MakeJob("q", kT0);
    n.priority = priority;
    n.run_at = run_at;
    return t.Insert(n).id;
  };
  JobId a = job(0, kT0);
  JobId b = job(5, kT0 + 10);
  JobId c = job(5, kT0);
  JobId d = job(0, kT0 - 50);
  JobId e = job(0, kT0);
  JobId f = job(-1, kT0 - 1'000);
  JobId g = job(0, kT0);

  // b was inserted not yet due: it is claimable once promoted.
  EXPECT_EQ(t.Promote(kT0 + 100), std::set<std::string>{"q"});
  std::vector<JobId> expected = {c, b, d, a, e, g, f};
  EXPECT_EQ(t.ClaimAllOneByOne("q", kT0 + 100), expected);
}

TYPED_TEST_P(JobStoreConformanceTest, ClaimWithLimitTakesTheFirstJobsInClaimOrder) {
  auto& t = *this;
  std::vector<JobId> ids;
  for (int i = 0; i < 5; ++i) {
    NewJob n = t.MakeJob("q", kT0 + i);
    n.priority = i;  // the later, the more urgent
    ids.push_back(t.Insert(n).id);
  }
  auto jobs = t.Claim("q", 2, kT0 + 100);
  std::set<JobId> got;
  for (const Job& j : jobs) got.insert(j.id);
  EXPECT_EQ(got, (std::set<JobId>{ids[4], ids[3]}));

  jobs = t.Claim("q", 10, kT0 + 100);
  EXPECT_EQ(jobs.size(), 3u);
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 100).empty());
}

TYPED_TEST_P(JobStoreConformanceTest, DelayedJobIsClaimableOnlyAfterPromotion) {
  auto& t = *this;
  NewJob delayed = t.MakeJob("q", kT0);
  delayed.run_at = kT0 + 1'000;
  t.Insert(delayed);
  Job other = t.Submit("other", kT0);

  EXPECT_TRUE(t.Claim("q", 10, kT0).empty());
  EXPECT_TRUE(t.Claim("nope", 10, kT0 + 5'000).empty());
  // Not claimable until PromoteDueJobs() has seen its run_at pass.
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 5'000).empty());
  EXPECT_TRUE(t.Promote(kT0 + 999).empty());
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 5'000).empty());
  EXPECT_EQ(t.Get(delayed.id).state, JobState::kQueued);

  EXPECT_EQ(t.Promote(kT0 + 1'000), std::set<std::string>{"q"});  // due exactly at run_at
  Job claimed = t.ClaimOne("q", kT0 + 1'000);
  EXPECT_EQ(claimed.id, delayed.id);
  EXPECT_EQ(claimed.attempts, 1);
  EXPECT_EQ(t.Get(other.id).state, JobState::kQueued);
  EXPECT_EQ(t.ClaimOne("other", kT0 + 1'000).id, other.id);
}

TYPED_TEST_P(JobStoreConformanceTest, ClaimLeasesTheJob) {
  auto& t = *this;
  NewJob n = t.MakeJob("q", kT0);
  n.payload = "the payload";
  n.content_type = "text/plain";
  t.Insert(n);

  Job c = t.ClaimOne("q", kT0 + 20, "node-a", kT0 + 20 + kLease);
  EXPECT_EQ(c.id, n.id);
  EXPECT_EQ(c.state, JobState::kRunning);
  EXPECT_EQ(c.attempts, 1);
  EXPECT_EQ(c.lease_owner, "node-a");
  EXPECT_EQ(c.lease_expires_at, kT0 + 20 + kLease);
  EXPECT_GT(c.lease_token, 0);
  EXPECT_EQ(c.started_at, kT0 + 20);
  EXPECT_EQ(c.payload, "the payload");
  EXPECT_EQ(c.content_type, "text/plain");
  EXPECT_EQ(c.max_attempts, 3);

  Job got = t.Get(n.id);
  EXPECT_EQ(got.state, JobState::kRunning);
  EXPECT_EQ(got.attempts, 1);
  EXPECT_EQ(got.lease_owner, "node-a");
  EXPECT_EQ(got.lease_token, c.lease_token);
  EXPECT_EQ(got.lease_expires_at, kT0 + 20 + kLease);
  EXPECT_EQ(got.started_at, kT0 + 20);
  EXPECT_EQ(got.finished_at, std::nullopt);

  // A running job is not claimed again.
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 1'000'000, "node-b").empty());
}

TYPED_TEST_P(JobStoreConformanceTest, LeaseTokenGrowsOnEveryClaim) {
  auto& t = *this;
  NewJob n = t.MakeJob("q", kT0);
  n.max_attempts = 10;
  t.Insert(n);

  Job c1 = t.ClaimOne("q", kT0);
  t.MustFinish(AttemptOutcome::Retry(n.id, c1.lease_token, kT0 + 1, kT0 + 1, {"e", "retry"}));
  Job c2 = t.ClaimOne("q", kT0 + 2);
  EXPECT_GT(c2.lease_token, c1.lease_token);
  EXPECT_EQ(c2.attempts, 2);

  ASSERT_EQ(t.Release("node-a", kT0 + 3), 1);
  Job c3 = t.ClaimOne("q", kT0 + 4, "node-a", kT0 + 10);
  EXPECT_GT(c3.lease_token, c2.lease_token);

  ASSERT_EQ(t.Rescue(kT0 + 11).size(), 1u);
  Job c4 = t.ClaimOne("q", kT0 + 12);
  EXPECT_GT(c4.lease_token, c3.lease_token);
}

// ---------------------------------------------------------------------------
// Finish

TYPED_TEST_P(JobStoreConformanceTest, FinishSucceededStoresTheResult) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  const std::string body("{\"r\":\0\x01}", 8);
  Job done = t.MustFinish(
      AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 500, body, "application/x-test"));
  EXPECT_EQ(done.id, c.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_TRUE(done.has_result);
  EXPECT_EQ(done.finished_at, kT0 + 500);
  EXPECT_EQ(done.expires_at, kT0 + 500 + kRetention);
  EXPECT_EQ(done.attempts, 1);

  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kSucceeded);
  EXPECT_TRUE(got.has_result);
  EXPECT_EQ(got.started_at, kT0);
  EXPECT_EQ(got.finished_at, kT0 + 500);
  EXPECT_EQ(got.expires_at, kT0 + 500 + kRetention);

  StoredResult r = Must(t.store().GetResult(c.id), "GetResult");
  EXPECT_EQ(r.state, JobState::kSucceeded);
  EXPECT_TRUE(r.has_result);
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.content_type, "application/x-test");
}

TYPED_TEST_P(JobStoreConformanceTest, FinishSucceededWithEmptyBodyStillHasAResult) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 1, "", "text/plain"));
  StoredResult r = Must(t.store().GetResult(c.id), "GetResult");
  EXPECT_EQ(r.state, JobState::kSucceeded);
  EXPECT_TRUE(r.has_result);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_TRUE(t.Get(c.id).has_result);
}

TYPED_TEST_P(JobStoreConformanceTest, FinishFailedRecordsTheError) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  Job done = t.MustFinish(
      AttemptOutcome::Failed(c.id, c.lease_token, kT0 + 300, {"bad_input", "no such user"}));
  EXPECT_EQ(done.state, JobState::kFailed);
  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kFailed);
  ASSERT_TRUE(got.error.has_value());
  EXPECT_EQ(got.error->type, "bad_input");
  EXPECT_EQ(got.error->message, "no such user");
  EXPECT_EQ(got.finished_at, kT0 + 300);
  EXPECT_EQ(got.expires_at, kT0 + 300 + kRetention);
  EXPECT_FALSE(got.has_result);
  StoredResult r = Must(t.store().GetResult(c.id), "GetResult");
  EXPECT_EQ(r.state, JobState::kFailed);
  EXPECT_FALSE(r.has_result);
}

TYPED_TEST_P(JobStoreConformanceTest, FinishRetryRequeuesTheJobUntilRetryAt) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  Job back = t.MustFinish(
      AttemptOutcome::Retry(c.id, c.lease_token, kT0 + 100, kT0 + 5'000, {"flaky", "try again"}));
  EXPECT_EQ(back.state, JobState::kQueued);
  EXPECT_EQ(back.run_at, kT0 + 5'000);

  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kQueued);
  EXPECT_EQ(got.run_at, kT0 + 5'000);
  EXPECT_EQ(got.attempts, 1) << "the failed attempt stays spent";
  ASSERT_TRUE(got.error.has_value()) << "the last error is kept for the status document";
  EXPECT_EQ(got.error->type, "flaky");
  EXPECT_EQ(got.error->message, "try again");
  EXPECT_EQ(got.finished_at, std::nullopt);
  EXPECT_EQ(got.expires_at, std::nullopt);

  EXPECT_TRUE(t.Claim("q", 10, kT0 + 4'999).empty());
  EXPECT_TRUE(t.Promote(kT0 + 4'999).empty());
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 5'000).empty()) << "not claimable before promotion";
  EXPECT_EQ(t.Promote(kT0 + 5'000), std::set<std::string>{"q"});
  Job again = t.ClaimOne("q", kT0 + 5'000);
  EXPECT_EQ(again.id, c.id);
  EXPECT_EQ(again.attempts, 2);
  EXPECT_GT(again.lease_token, c.lease_token);
  EXPECT_EQ(again.payload, c.payload);

  // The first attempt's lease is void now.
  EXPECT_TRUE(IsError(
      t.Finish(AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 5'001, "late", "text/plain")),
      ErrorCode::kStaleLease));
  EXPECT_EQ(t.Get(c.id).state, JobState::kRunning);
}

// Regression (cancel lost on retry): a cancel requested while the attempt
// ran (here or through another process) must win over a retry.
TYPED_TEST_P(JobStoreConformanceTest, CancelLostOnRetryFinishRetryAfterCancelRequestCancels) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  ASSERT_EQ(Must(t.Cancel(c.id, kT0 + 1), "Cancel").kind, CancelOutcome::Kind::kSignalled);
  Job out = t.MustFinish(
      AttemptOutcome::Retry(c.id, c.lease_token, kT0 + 100, kT0 + 5'000, {"timeout", "slow"}));
  EXPECT_EQ(out.state, JobState::kCanceled);
  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kCanceled);
  EXPECT_TRUE(got.cancel_requested);
  EXPECT_EQ(got.attempts, 1);
  EXPECT_EQ(got.finished_at, kT0 + 100);
  EXPECT_EQ(got.expires_at, kT0 + 100 + kRetention);
  EXPECT_EQ(got.lease_owner, "");
  EXPECT_TRUE(t.Promote(kT0 + 10'000).empty());
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 10'000).empty()) << "a canceled job never runs again";
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kCanceled, 1}}));
  t.ExpectCountsMatchJobs("retry after cancel request");
}

TYPED_TEST_P(JobStoreConformanceTest, CancelLostOnRetryFinishRetryAfterDeleteRequestRemoves) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  ASSERT_EQ(Must(t.Delete(c.id, kT0 + 1), "Delete").kind, CancelOutcome::Kind::kSignalled);
  Job out = t.MustFinish(
      AttemptOutcome::Retry(c.id, c.lease_token, kT0 + 100, kT0 + 100, {"handler_error", "x"}));
  EXPECT_EQ(out.state, JobState::kCanceled);
  EXPECT_FALSE(t.Exists(c.id)) << "a job whose delete was requested is removed once terminal";
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 200).empty());
}

TYPED_TEST_P(JobStoreConformanceTest, FinishCanceledEndsTheJob) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  Job done = t.MustFinish(AttemptOutcome::Canceled(c.id, c.lease_token, kT0 + 40));
  EXPECT_EQ(done.state, JobState::kCanceled);
  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kCanceled);
  EXPECT_EQ(got.finished_at, kT0 + 40);
  EXPECT_EQ(got.expires_at, kT0 + 40 + kRetention);
  EXPECT_FALSE(got.has_result);
}

TYPED_TEST_P(JobStoreConformanceTest, FinishWithStaleTokenIsStaleLeaseAndChangesNothing) {
  auto& t = *this;
  Job c = t.Running("q", kT0);

  // Not the current token.
  for (auto o : {AttemptOutcome::Succeeded(c.id, c.lease_token + 1, kT0 + 1, "x", "t/p"),
                 AttemptOutcome::Failed(c.id, c.lease_token - 1, kT0 + 1, {"e", "m"}),
                 AttemptOutcome::Retry(c.id, c.lease_token + 7, kT0 + 1, kT0 + 2, {"e", "m"}),
                 AttemptOutcome::Canceled(c.id, 0, kT0 + 1)}) {
    EXPECT_TRUE(IsError(t.Finish(o), ErrorCode::kStaleLease));
  }
  ExpectSameJob(t.Get(c.id), c);

  // Kept usable: a stale outcome and then the real one in one transaction.
  {
    auto tx = Must(t.store().BeginWrite(), "BeginWrite");
    EXPECT_TRUE(IsError(tx->Finish(AttemptOutcome::Canceled(c.id, c.lease_token + 1, kT0 + 2)),
                        ErrorCode::kStaleLease));
    EXPECT_TRUE(IsOk(tx->Finish(
        AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 2, "result", "text/plain"))));
    Must(tx->Commit(), "Commit");
  }
  // The job is no longer running under any token.
  EXPECT_TRUE(IsError(t.Finish(AttemptOutcome::Failed(c.id, c.lease_token, kT0 + 3, {"e", "m"})),
                      ErrorCode::kStaleLease));
  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kSucceeded);
  EXPECT_FALSE(got.error.has_value());
  EXPECT_EQ(Must(t.store().GetResult(c.id), "GetResult").body, "result");

  // A queued job was never leased under any token.
  Job q = t.Submit("q", kT0 + 4);
  EXPECT_TRUE(IsError(t.Finish(AttemptOutcome::Succeeded(q.id, 0, kT0 + 5, "x", "t/p")),
                      ErrorCode::kStaleLease));
  EXPECT_EQ(t.Get(q.id).state, JobState::kQueued);
  t.ExpectCountsMatchJobs("stale outcomes");
}

TYPED_TEST_P(JobStoreConformanceTest, FinishOfUnknownJobIsNotFound) {
  auto& t = *this;
  t.Running("q", kT0);
  JobId unknown = JobId::Random();
  for (auto o : {AttemptOutcome::Succeeded(unknown, 1, kT0, "x", "t/p"),
                 AttemptOutcome::Failed(unknown, 1, kT0, {"e", "m"}),
                 AttemptOutcome::Retry(unknown, 1, kT0, kT0, {"e", "m"}),
                 AttemptOutcome::Canceled(unknown, 1, kT0)}) {
    EXPECT_TRUE(IsError(t.Finish(o), ErrorCode::kNotFound));
  }
}

// ---------------------------------------------------------------------------
// Cancel and Delete

TYPED_TEST_P(JobStoreConformanceTest, CancelQueuedJobCancelsItAtOnce) {
  auto& t = *this;
  Job q = t.Submit("q", kT0);
  CancelOutcome out = Must(t.Cancel(q.id, kT0 + 70), "Cancel");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kCanceled);
  EXPECT_EQ(out.job.id, q.id);
  EXPECT_EQ(out.job.state, JobState::kCanceled);

  Job got = t.Get(q.id);
  EXPECT_EQ(got.state, JobState::kCanceled);
  EXPECT_EQ(got.finished_at, kT0 + 70);
  EXPECT_EQ(got.expires_at, kT0 + 70 + kRetention);
  EXPECT_EQ(got.attempts, 0);
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 100).empty());
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kCanceled, 1}}));
}

TYPED_TEST_P(JobStoreConformanceTest, CancelRunningJobOnlySignalsIt) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  CancelOutcome out = Must(t.Cancel(c.id, kT0 + 5), "Cancel");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
  EXPECT_EQ(out.job.state, JobState::kRunning);
  EXPECT_TRUE(out.job.cancel_requested);

  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kRunning);
  EXPECT_TRUE(got.cancel_requested);
  EXPECT_FALSE(got.delete_requested);
  EXPECT_EQ(got.lease_token, c.lease_token) << "the runner's lease stays valid";

  // Signalling again is harmless.
  EXPECT_EQ(Must(t.Cancel(c.id, kT0 + 6), "Cancel").kind, CancelOutcome::Kind::kSignalled);

  // The runner stops it.
  t.MustFinish(AttemptOutcome::Canceled(c.id, c.lease_token, kT0 + 9));
  got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kCanceled);
  EXPECT_EQ(got.finished_at, kT0 + 9);
  EXPECT_EQ(got.expires_at, kT0 + 9 + kRetention);
}

TYPED_TEST_P(JobStoreConformanceTest, CancelTerminalJobIsConflictNamingTheState) {
  auto& t = *this;
  Job s = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(s.id, s.lease_token, kT0 + 1, "x", "t/p"));
  Job f = t.Running("q", kT0 + 2);
  t.MustFinish(AttemptOutcome::Failed(f.id, f.lease_token, kT0 + 3, {"e", "m"}));
  Job c = t.Submit("q", kT0 + 4);
  ASSERT_TRUE(IsOk(t.Cancel(c.id, kT0 + 5)));

  for (auto [id, state] :
       {std::pair{s.id, JobState::kSucceeded}, std::pair{f.id, JobState::kFailed},
        std::pair{c.id, JobState::kCanceled}}) {
    auto r = t.Cancel(id, kT0 + 10);
    ASSERT_TRUE(IsError(r, ErrorCode::kConflict)) << ToString(state);
    EXPECT_NE(r.error().detail.find(ToString(state)), std::string::npos)
        << "detail should name the state: " << r.error().detail;
    EXPECT_EQ(t.Get(id).state, state);
  }
}

TYPED_TEST_P(JobStoreConformanceTest, CancelUnknownJobIsNotFound) {
  auto& t = *this;
  t.Submit();
  EXPECT_TRUE(IsError(t.Cancel(JobId::Random()), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, DeleteTerminalJobRemovesIt) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 1, "result", "text/plain"));
  CancelOutcome out = Must(t.Delete(c.id, kT0 + 2), "Delete");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kDeleted);
  EXPECT_EQ(out.job.id, c.id);
  EXPECT_EQ(out.job.state, JobState::kSucceeded);
  EXPECT_FALSE(t.Exists(c.id));
  EXPECT_TRUE(IsError(t.store().GetResult(c.id), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(t.Delete(c.id, kT0 + 3), ErrorCode::kNotFound));
  EXPECT_EQ(t.CountsOf("q"), StateCounts{});
}

TYPED_TEST_P(JobStoreConformanceTest, DeleteQueuedJobCancelsAndRemovesIt) {
  auto& t = *this;
  Job q = t.Submit("q", kT0);
  CancelOutcome out = Must(t.Delete(q.id, kT0 + 2), "Delete");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kCanceled);
  EXPECT_EQ(out.job.id, q.id);
  EXPECT_EQ(out.job.state, JobState::kCanceled);
  EXPECT_FALSE(t.Exists(q.id));
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 10).empty());
  EXPECT_EQ(t.CountsOf("q"), StateCounts{});
}

TYPED_TEST_P(JobStoreConformanceTest, DeleteRunningJobSignalsAndRemovesItOnceItStops) {
  auto& t = *this;
  // Each way the attempt can end makes the job terminal, and then it goes.
  const std::vector<AttemptOutcome::Kind> kinds = {AttemptOutcome::Kind::kCanceled,
                                                   AttemptOutcome::Kind::kSucceeded,
                                                   AttemptOutcome::Kind::kFailed};
  UnixMillis now = kT0;
  for (AttemptOutcome::Kind kind : kinds) {
    SCOPED_TRACE(static_cast<int>(kind));
    Job c = t.Running("q", now);
    CancelOutcome out = Must(t.Delete(c.id, now + 1), "Delete");
    EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
    EXPECT_EQ(out.job.state, JobState::kRunning);
    EXPECT_TRUE(out.job.cancel_requested);
    EXPECT_TRUE(out.job.delete_requested);

    Job got = t.Get(c.id);  // still there while it runs
    EXPECT_EQ(got.state, JobState::kRunning);
    EXPECT_TRUE(got.cancel_requested);
    EXPECT_TRUE(got.delete_requested);

    AttemptOutcome o = AttemptOutcome::Canceled(c.id, c.lease_token, now + 2);
    if (kind == AttemptOutcome::Kind::kSucceeded) {
      o = AttemptOutcome::Succeeded(c.id, c.lease_token, now + 2, "x", "t/p");
    } else if (kind == AttemptOutcome::Kind::kFailed) {
      o = AttemptOutcome::Failed(c.id, c.lease_token, now + 2, {"e", "m"});
    }
    Job finished = t.MustFinish(o);
    EXPECT_TRUE(IsTerminal(finished.state));
    EXPECT_FALSE(t.Exists(c.id));
    EXPECT_TRUE(IsError(t.store().GetResult(c.id), ErrorCode::kNotFound));
    now += 10;
  }
  EXPECT_EQ(t.CountsOf("q"), StateCounts{});
  t.ExpectCountsMatchJobs("deletes of running jobs");
}

TYPED_TEST_P(JobStoreConformanceTest, DeleteUnknownJobIsNotFound) {
  auto& t = *this;
  t.Submit();
  EXPECT_TRUE(IsError(t.Delete(JobId::Random()), ErrorCode::kNotFound));
}

// ---------------------------------------------------------------------------
// Progress and leases

TYPED_TEST_P(JobStoreConformanceTest, SetProgressRecordsClampsAndIgnoresStaleLeases) {
  auto& t = *this;
  Job c = t.Running("q", kT0);
  ASSERT_TRUE(IsOk(t.SetProgress(c.id, c.lease_token, {42, "half way"}, kT0 + 1)));
  Job got = t.Get(c.id);
  ASSERT_TRUE(got.progress.has_value());
  EXPECT_EQ(got.progress->percent, 42);
  EXPECT_EQ(got.progress->message, "half way");

  ASSERT_TRUE(IsOk(t.SetProgress(c.id, c.lease_token, {150, "over"}, kT0 + 2)));
  EXPECT_EQ(t.Get(c.id).progress->percent, 100);
  ASSERT_TRUE(IsOk(t.SetProgress(c.id, c.lease_token, {-5, "under"}, kT0 + 3)));
  EXPECT_EQ(t.Get(c.id).progress->percent, 0);
  EXPECT_EQ(t.Get(c.id).progress->message, "under");

  // Another token: ignored, but ok.
  EXPECT_TRUE(IsOk(t.SetProgress(c.id, c.lease_token + 1, {77, "stale"}, kT0 + 4)));
  EXPECT_EQ(t.Get(c.id).progress->message, "under");

  // A job that is no longer running under that token: ignored, but ok.
  t.MustFinish(AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 5, "x", "t/p"));
  EXPECT_TRUE(IsOk(t.SetProgress(c.id, c.lease_token, {99, "late"}, kT0 + 6)));
  EXPECT_EQ(t.Get(c.id).progress->message, "under");
  EXPECT_EQ(t.Get(c.id).state, JobState::kSucceeded);
}

TYPED_TEST_P(JobStoreConformanceTest, ExtendLeasesExtendsOwnJobsAndReportsCancelRequests) {
  auto& t = *this;
  Job a1 = t.Running("q", kT0, "node-a");
  Job a2 = t.Running("q", kT0, "node-a");
  Job b1 = t.Running("q", kT0, "node-b");
  Job b2 = t.Running("q", kT0, "node-b");
  ASSERT_EQ(Must(t.Cancel(a2.id, kT0 + 1), "Cancel").kind, CancelOutcome::Kind::kSignalled);
  ASSERT_EQ(Must(t.Cancel(b2.id, kT0 + 1), "Cancel").kind, CancelOutcome::Kind::kSignalled);

  LeaseRenewal renewal = t.ExtendLeases({a1, a2}, kT0 + 10'000 + kLease, kT0 + 10'000);
  EXPECT_EQ(renewal.cancel_requested, std::vector<JobId>{a2.id});
  EXPECT_TRUE(renewal.lost.empty());
  EXPECT_EQ(t.Get(a1.id).lease_expires_at, kT0 + 10'000 + kLease);
  EXPECT_EQ(t.Get(a2.id).lease_expires_at, kT0 + 10'000 + kLease);
  EXPECT_EQ(t.Get(b1.id).lease_expires_at, kT0 + kLease) << "another owner's lease";
  EXPECT_EQ(t.Get(a1.id).lease_token, a1.lease_token) << "extending is not a new lease";
  EXPECT_EQ(t.Get(a1.id).state, JobState::kRunning);

  // A stale token or an expired lease is lost, and not extended.
  Job stale_a1 = a1;
  stale_a1.lease_token -= 1;
  EXPECT_EQ(t.ExtendLeases({stale_a1}, kT0 + 20'000 + kLease, kT0 + 10'000).lost,
            std::vector<JobId>{a1.id});
  EXPECT_EQ(t.Get(a1.id).lease_expires_at, kT0 + 10'000 + kLease);
  EXPECT_EQ(t.ExtendLeases({b1}, kT0 + 20'000 + kLease, kT0 + kLease + 1).lost,
            std::vector<JobId>{b1.id})
      << "an expired lease is not revived";

  // The extension counts: only node-b's jobs expired.
  std::set<JobId> rescued;
  for (const Job& j : t.Rescue(kT0 + kLease + 1)) rescued.insert(j.id);
  EXPECT_EQ(rescued, (std::set<JobId>{b1.id, b2.id}));
  EXPECT_EQ(t.Get(a1.id).state, JobState::kRunning);
}

TYPED_TEST_P(JobStoreConformanceTest, HeartbeatExtendsOneLeaseRecordsProgressAndReportsCancel) {
  auto& t = *this;
  t.Insert(t.MakeJob("q", kT0));
  t.Insert(t.MakeJob("q", kT0));
  Job a = t.ClaimExternal("q", kT0, kT0 + 3'000);
  Job b = t.ClaimExternal("q", kT0, kT0 + 3'000);
  HeartbeatResult hb = Must(t.Heartbeat(a, kT0 + 1'000 + kLease, kT0 + 1'000), "Heartbeat");
  EXPECT_FALSE(hb.cancel_requested);
  // MakeJob's timeout is 5 s: an external lease is bounded by it.
  EXPECT_EQ(hb.lease_expires_at, kT0 + 5'000) << "never past the attempt's timeout";
  EXPECT_EQ(t.Get(a.id).lease_expires_at, kT0 + 5'000);
  EXPECT_FALSE(t.Get(a.id).progress.has_value()) << "no progress given, none recorded";

  hb = Must(t.Heartbeat(a, kT0 + 2'000, kT0 + 1'500, Progress{40, "resizing"}), "Heartbeat");
  EXPECT_EQ(hb.lease_expires_at, kT0 + 2'000);
  EXPECT_EQ(t.Get(a.id).progress->percent, 40);
  EXPECT_EQ(t.Get(a.id).progress->message, "resizing");
  EXPECT_EQ(t.Get(a.id).lease_token, a.lease_token) << "a heartbeat is not a new lease";

  ASSERT_EQ(Must(t.Cancel(b.id, kT0 + 1'600), "Cancel").kind, CancelOutcome::Kind::kSignalled);
  EXPECT_TRUE(Must(t.Heartbeat(b, kT0 + 3'000, kT0 + 1'700), "Heartbeat").cancel_requested);

  // Stale token, expired lease, finished job: kStaleLease, nothing changed.
  Job stale = a;
  stale.lease_token -= 1;
  EXPECT_TRUE(IsError(t.Heartbeat(stale, kT0 + 4'000, kT0 + 1'800), ErrorCode::kStaleLease));
  EXPECT_EQ(t.Get(a.id).lease_expires_at, kT0 + 2'000);
  EXPECT_TRUE(IsError(t.Heartbeat(a, kT0 + 9'000, kT0 + 2'001), ErrorCode::kStaleLease))
      << "an expired lease is not revived";
  t.MustFinish(AttemptOutcome::Succeeded(b.id, b.lease_token, kT0 + 1'900, "x", "t/p"));
  EXPECT_TRUE(IsError(t.Heartbeat(b, kT0 + 3'000, kT0 + 1'950), ErrorCode::kStaleLease));
  EXPECT_TRUE(IsError(t.Heartbeat(Job{}, kT0 + 3'000, kT0 + 1'950), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, ReleaseLeaseRequeuesWithoutSpendingTheAttempt) {
  auto& t = *this;
  Job a = t.Running("q", kT0, "worker");
  ASSERT_EQ(a.attempts, 1);
  Job released = Must(t.ReleaseOne(a, kT0 + 10), "ReleaseLease");
  EXPECT_EQ(released.state, JobState::kQueued);
  EXPECT_EQ(released.attempts, 0) << "the attempt is not spent";
  EXPECT_TRUE(released.lease_owner.empty());
  EXPECT_TRUE(IsError(t.ReleaseOne(a, kT0 + 11), ErrorCode::kStaleLease)) << "only once";
  Job again = t.ClaimOne("q", kT0 + 20, "worker");
  EXPECT_EQ(again.id, a.id) << "due at once";
  EXPECT_EQ(again.attempts, 1);
  EXPECT_GT(again.lease_token, a.lease_token);
  EXPECT_TRUE(IsError(t.ReleaseOne(a, kT0 + 21), ErrorCode::kStaleLease)) << "old token";

  // A requested cancel wins; a requested delete removes the job.
  ASSERT_EQ(Must(t.Cancel(again.id, kT0 + 30), "Cancel").kind, CancelOutcome::Kind::kSignalled);
  Job canceled = Must(t.ReleaseOne(again, kT0 + 31), "ReleaseLease");
  EXPECT_EQ(canceled.state, JobState::kCanceled);
  EXPECT_EQ(canceled.finished_at, kT0 + 31);
  Job d = t.Running("q", kT0 + 40, "worker");
  ASSERT_EQ(Must(t.Delete(d.id, kT0 + 41), "Delete").kind, CancelOutcome::Kind::kSignalled);
  EXPECT_EQ(Must(t.ReleaseOne(d, kT0 + 42), "ReleaseLease").state, JobState::kCanceled);
  EXPECT_TRUE(IsError(t.store().Get(d.id), ErrorCode::kNotFound)) << "removed";
  EXPECT_TRUE(IsError(t.ReleaseOne(Job{}, kT0 + 43), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, ExternalLeaseRunningIntoTheTimeoutIsRescuedAsATimeout) {
  auto& t = *this;
  NewJob n = t.MakeJob("q", kT0);  // timeout 5 s, 3 attempts
  t.Insert(n);
  Job c = t.ClaimExternal("q", kT0, kT0 + kLease);
  EXPECT_EQ(c.lease_expires_at, kT0 + 5'000) << "the claim's lease stops at the timeout";
  EXPECT_TRUE(t.Rescue(kT0 + 5'000).empty());
  auto rescued = t.Rescue(kT0 + 5'001);
  ASSERT_EQ(rescued.size(), 1u);
  EXPECT_EQ(rescued[0].state, JobState::kQueued);
  EXPECT_EQ(rescued[0].error->type, "timeout");
  // A lease that merely ran out (the worker vanished) is not a timeout.
  Job again = t.ClaimExternal("q", kT0 + 6'000, kT0 + 7'000);
  EXPECT_EQ(again.lease_expires_at, kT0 + 7'000);
  rescued = t.Rescue(kT0 + 7'001);
  ASSERT_EQ(rescued.size(), 1u);
  EXPECT_EQ(rescued[0].error->type, "lease_expired");
  // Without a timeout, nothing bounds the lease.
  NewJob unbounded = t.MakeJob("u", kT0);
  unbounded.timeout = 0;
  t.Insert(unbounded);
  EXPECT_EQ(t.ClaimExternal("u", kT0, kT0 + kLease).lease_expires_at, kT0 + kLease);
}

TYPED_TEST_P(JobStoreConformanceTest, RescueRequeuesExpiredLeaseWhenAttemptsRemain) {
  auto& t = *this;
  NewJob n = t.MakeJob("q", kT0);
  n.max_attempts = 2;
  t.Insert(n);
  Job c = t.ClaimOne("q", kT0, "node-a", kT0 + 1'000);

  EXPECT_TRUE(t.Rescue(kT0 + 999).empty());
  EXPECT_TRUE(t.Rescue(kT0 + 1'000).empty()) << "expired means: before now";
  EXPECT_EQ(t.Get(c.id).state, JobState::kRunning);

  auto rescued = t.Rescue(kT0 + 1'001);
  ASSERT_EQ(rescued.size(), 1u);
  EXPECT_EQ(rescued[0].id, c.id);
  EXPECT_EQ(rescued[0].state, JobState::kQueued);

  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kQueued);
  EXPECT_EQ(got.attempts, 1) << "the lost attempt is spent";
  ASSERT_TRUE(got.error.has_value());
  EXPECT_EQ(got.error->type, "lease_expired");
  EXPECT_EQ(got.finished_at, std::nullopt);
  EXPECT_EQ(got.expires_at, std::nullopt);
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}}));

  // The dead node's outcome is fenced off; the job runs again elsewhere.
  EXPECT_TRUE(
      IsError(t.Finish(AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 1'002, "late", "t/p")),
              ErrorCode::kStaleLease));
  Job again = t.ClaimOne("q", kT0 + 1'001, "node-b");
  EXPECT_EQ(again.id, c.id);
  EXPECT_EQ(again.attempts, 2);
  EXPECT_GT(again.lease_token, c.lease_token);
  EXPECT_EQ(again.payload, c.payload);
}

TYPED_TEST_P(JobStoreConformanceTest, RescueFailsExpiredLeaseWhenNoAttemptsLeft) {
  auto& t = *this;
  NewJob n = t.MakeJob("q", kT0);
  n.max_attempts = 1;
  t.Insert(n);
  Job c = t.ClaimOne("q", kT0, "node-a", kT0 + 1'000);

  auto rescued = t.Rescue(kT0 + 2'000);
  ASSERT_EQ(rescued.size(), 1u);
  EXPECT_EQ(rescued[0].id, c.id);
  EXPECT_EQ(rescued[0].state, JobState::kFailed);

  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kFailed);
  EXPECT_EQ(got.attempts, 1);
  ASSERT_TRUE(got.error.has_value());
  EXPECT_EQ(got.error->type, "lease_expired");
  EXPECT_EQ(got.finished_at, kT0 + 2'000);
  EXPECT_EQ(got.expires_at, kT0 + 2'000 + kRetention);
  EXPECT_TRUE(t.Claim("q", 10, kT0 + 3'000).empty());
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kFailed, 1}}));
}

TYPED_TEST_P(JobStoreConformanceTest, RescueCancelsExpiredLeaseWhenCancelWasRequested) {
  auto& t = *this;
  Job c = t.Running("q", kT0, "node-a");  // attempts remain
  ASSERT_EQ(Must(t.Cancel(c.id, kT0 + 1), "Cancel").kind, CancelOutcome::Kind::kSignalled);
  Job d = t.Running("q", kT0, "node-a");
  ASSERT_EQ(Must(t.Delete(d.id, kT0 + 1), "Delete").kind, CancelOutcome::Kind::kSignalled);

  auto rescued = t.Rescue(kT0 + kLease + 1);
  ASSERT_EQ(rescued.size(), 2u);
  for (const Job& j : rescued) EXPECT_EQ(j.state, JobState::kCanceled) << j.id.ToHex();

  Job got = t.Get(c.id);
  EXPECT_EQ(got.state, JobState::kCanceled);
  EXPECT_EQ(got.finished_at, kT0 + kLease + 1);
  EXPECT_EQ(got.expires_at, kT0 + kLease + 1 + kRetention);
  // A job whose delete was requested is removed once terminal.
  EXPECT_FALSE(t.Exists(d.id));
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kCanceled, 1}}));
  t.ExpectCountsMatchJobs("rescue of canceled jobs");
}

TYPED_TEST_P(JobStoreConformanceTest, RescueIgnoresLiveLeasesAndRespectsLimit) {
  auto& t = *this;
  std::vector<JobId> expiring;
  for (int i = 0; i < 3; ++i) {
    t.Submit("q", kT0);
    expiring.push_back(t.ClaimOne("q", kT0, "node-a", kT0 + 1'000).id);
  }
  t.Submit("q", kT0);
  Job live = t.ClaimOne("q", kT0, "node-a", kT0 + 50'000);
  Job queued = t.Submit("q", kT0);

  auto first = t.Rescue(kT0 + 1'001, 2);
  EXPECT_EQ(first.size(), 2u);
  auto second = t.Rescue(kT0 + 1'001, 2);
  EXPECT_EQ(second.size(), 1u);
  EXPECT_TRUE(t.Rescue(kT0 + 1'001, 2).empty());

  std::set<JobId> rescued;
  for (const Job& j : first) rescued.insert(j.id);
  for (const Job& j : second) rescued.insert(j.id);
  EXPECT_EQ(rescued, std::set<JobId>(expiring.begin(), expiring.end()));
  EXPECT_EQ(t.Get(live.id).state, JobState::kRunning);
  EXPECT_EQ(t.Get(queued.id).state, JobState::kQueued);
  EXPECT_EQ(t.Get(queued.id).error, std::nullopt);
}

TYPED_TEST_P(JobStoreConformanceTest, ReleaseLeasesRequeuesWithoutSpendingTheAttempt) {
  auto& t = *this;
  Job mine = t.Running("q", kT0, "node-a");
  Job theirs = t.Running("q", kT0, "node-b");

  EXPECT_EQ(t.Release("node-a", kT0 + 100), 1);
  Job got = t.Get(mine.id);
  EXPECT_EQ(got.state, JobState::kQueued);
  EXPECT_EQ(got.attempts, 0) << "a released attempt is not spent";
  EXPECT_EQ(t.Get(theirs.id).state, JobState::kRunning);
  EXPECT_EQ(t.Release("node-a", kT0 + 101), 0);

  // The old lease is void; the job is claimable again at once.
  EXPECT_TRUE(
      IsError(t.Finish(AttemptOutcome::Succeeded(mine.id, mine.lease_token, kT0 + 102, "x", "t/p")),
              ErrorCode::kStaleLease));
  Job again = t.ClaimOne("q", kT0 + 100, "node-c");
  EXPECT_EQ(again.id, mine.id);
  EXPECT_EQ(again.attempts, 1);
  EXPECT_GT(again.lease_token, mine.lease_token);
  EXPECT_EQ(again.lease_owner, "node-c");
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kRunning, 2}}));
}

// ---------------------------------------------------------------------------
// Retention

TYPED_TEST_P(JobStoreConformanceTest, PurgeExpiredDeletesOnlyExpiredTerminalJobs) {
  auto& t = *this;
  auto job = [&](Millis retention) {
    NewJob n = t.MakeJob("q", kT0);
    n.retention = retention;
    t.Insert(n);
    return t.ClaimOne("q", kT0);
  };
  Job s = job(10'000);  // expires at kT0 + 100 + 10'000
  t.MustFinish(AttemptOutcome::Succeeded(s.id, s.lease_token, kT0 + 100, "x", "t/p"));
  Job f = job(0);  // expires at kT0 + 200
  t.MustFinish(AttemptOutcome::Failed(f.id, f.lease_token, kT0 + 200, {"e", "m"}));
  NewJob cn = t.MakeJob("q", kT0);
  cn.retention = 1'000;
  Job c = t.Insert(cn);  // canceled at kT0 + 300, expires at kT0 + 1'300
  ASSERT_TRUE(IsOk(t.Cancel(c.id, kT0 + 300)));
  Job running = t.Running("q", kT0);
  Job queued = t.Submit("q", kT0);

  EXPECT_EQ(t.Purge(kT0 + 199), 0);
  EXPECT_EQ(t.Purge(kT0 + 200), 1);  // expires_at <= now
  EXPECT_FALSE(t.Exists(f.id));
  EXPECT_EQ(t.Purge(kT0 + 1'300), 1);
  EXPECT_FALSE(t.Exists(c.id));
  EXPECT_TRUE(t.Exists(s.id));
  EXPECT_EQ(t.Purge(kT0 + 10'099), 0);
  EXPECT_EQ(t.Purge(kT0 + 10'000'000), 1);
  EXPECT_FALSE(t.Exists(s.id));
  EXPECT_TRUE(IsError(t.store().GetResult(s.id), ErrorCode::kNotFound));

  EXPECT_EQ(t.Purge(kT0 + 1'000'000'000), 0) << "queued and running jobs never expire";
  EXPECT_EQ(t.Get(running.id).state, JobState::kRunning);
  EXPECT_EQ(t.Get(queued.id).state, JobState::kQueued);
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}, {JobState::kRunning, 1}}));
}

// A purged job leaves a tombstone for tombstone_ttl: reads say kGone, not
// kNotFound, until a later purge removes it.
TYPED_TEST_P(JobStoreConformanceTest, PurgedJobsLeaveATombstoneForAWhile) {
  auto& t = *this;
  Job j = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(j.id, j.lease_token, kT0 + 1, "r", "text/plain"));
  const UnixMillis after = kT0 + 1 + kRetention;
  auto purged = Must(t.Write([&](WriteTx& tx) { return tx.PurgeExpired(after, 100, 1'000); }),
                     "PurgeExpired");
  EXPECT_EQ(t.Total(purged), 1);
  EXPECT_TRUE(IsError(t.store().Get(j.id), ErrorCode::kGone));
  EXPECT_TRUE(IsError(t.store().GetResult(j.id), ErrorCode::kGone));
  EXPECT_TRUE(IsError(t.store().Get(JobId::Random()), ErrorCode::kNotFound));

  Must(t.Write([&](WriteTx& tx) { return tx.PurgeExpired(after + 999, 100, 1'000); }), "Purge");
  EXPECT_TRUE(IsError(t.store().Get(j.id), ErrorCode::kGone)) << "not yet over";
  Must(t.Write([&](WriteTx& tx) { return tx.PurgeExpired(after + 1'000, 100, 1'000); }), "Purge");
  EXPECT_TRUE(IsError(t.store().Get(j.id), ErrorCode::kNotFound)) << "the tombstone is gone";
}

// GetMany answers each id as Get does, in the order asked (an id asked
// twice answered twice): whole jobs, kNotFound for unknown ids, kGone for a
// purged job's tombstone, even when none of the ids has a row.
TYPED_TEST_P(JobStoreConformanceTest, GetManyAnswersEachIdAsGetWould) {
  auto& t = *this;
  EXPECT_TRUE(t.store().GetMany({}).empty());
  Job purged = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(purged.id, purged.lease_token, kT0 + 1, "r", "t/p"));
  Must(t.Write([&](WriteTx& tx) { return tx.PurgeExpired(kT0 + 1 + kRetention, 100, 1'000); }),
       "PurgeExpired");
  NewJob n = t.MakeJob("q", kT0 + 2);
  n.tenant = "acme";
  Job queued = t.Insert(n);
  Job running = t.Running("other", kT0 + 3);
  const JobId unknown = JobId::Random();

  const std::vector<JobId> ids = {running.id, unknown, queued.id, purged.id, queued.id};
  auto got = t.store().GetMany(ids);
  ASSERT_EQ(got.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    auto one = t.store().Get(ids[i]);
    ASSERT_EQ(got[i].ok(), one.ok()) << i;
    if (one.ok()) {
      ExpectSameJob(*got[i], *one);
    } else {
      EXPECT_EQ(got[i].error().code, one.error().code) << i;
    }
  }
  EXPECT_EQ(got[0]->state, JobState::kRunning);
  EXPECT_TRUE(IsError(got[1], ErrorCode::kNotFound));
  EXPECT_EQ(got[2]->tenant, "acme");
  EXPECT_TRUE(IsError(got[3], ErrorCode::kGone));
  EXPECT_EQ(got[4]->id, queued.id);

  auto missing = t.store().GetMany({purged.id, unknown});
  ASSERT_EQ(missing.size(), 2u);
  EXPECT_TRUE(IsError(missing[0], ErrorCode::kGone));
  EXPECT_TRUE(IsError(missing[1], ErrorCode::kNotFound));
}

// A batch as large as the engine coalesces (and more) is one call.
TYPED_TEST_P(JobStoreConformanceTest, GetManyOfManyJobs) {
  auto& t = *this;
  std::vector<JobId> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(t.Submit("q", kT0 + i).id);
  ids.push_back(JobId::Random());
  auto got = t.store().GetMany(ids);
  ASSERT_EQ(got.size(), ids.size());
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    ASSERT_TRUE(got[i].ok()) << i;
    EXPECT_EQ(got[i]->id, ids[i]);
    EXPECT_EQ(got[i]->created_at, kT0 + static_cast<int64_t>(i));
  }
  EXPECT_TRUE(IsError(got.back(), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, PurgeExpiredRespectsLimit) {
  auto& t = *this;
  for (int i = 0; i < 5; ++i) {
    Job q = t.Submit("q", kT0);
    ASSERT_TRUE(IsOk(t.Cancel(q.id, kT0 + 1)));
  }
  const UnixMillis later = kT0 + 1 + kRetention;
  EXPECT_EQ(t.Purge(later, 2), 2);
  EXPECT_EQ(t.Purge(later, 2), 2);
  EXPECT_EQ(t.Purge(later, 2), 1);
  EXPECT_EQ(t.Purge(later, 2), 0);
  EXPECT_TRUE(t.ListAll().empty());
}

TYPED_TEST_P(JobStoreConformanceTest, PurgeExpiredCountsPerQueue) {
  auto& t = *this;
  for (const char* queue : {"a", "b", "a", "a"}) {
    Job q = t.Submit(queue, kT0);
    ASSERT_TRUE(IsOk(t.Cancel(q.id, kT0 + 1)));
  }
  t.Submit("c", kT0);  // queued: never purged
  auto purged =
      Must(t.Write([&](WriteTx& tx) { return tx.PurgeExpired(kT0 + 1 + kRetention, 100, 0); }),
           "PurgeExpired");
  EXPECT_EQ(t.Sorted(purged), (std::vector<QueueValue>{{"a", 3}, {"b", 1}}));
}

TYPED_TEST_P(JobStoreConformanceTest, FireScheduleMakesOneJobPerTick) {
  auto& t = *this;
  EXPECT_TRUE(t.States().empty());
  const UnixMillis t1 = kT0, t2 = kT0 + 60'000;
  ScheduleFire first = t.MakeFire("nightly", t1);
  Job job = Must(t.Fire(first), "FireSchedule");
  EXPECT_EQ(job.id, first.job.id);
  EXPECT_EQ(job.queue, "q");
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_EQ(t.Get(job.id).content_type, "application/json");
  EXPECT_EQ(
      t.States(),
      (std::map<std::string, ScheduleState>{{"nightly", ScheduleState{"nightly", t1, job.id}}}));
  // The same tick again (another job id, as another node would make): refused.
  ScheduleFire again = t.MakeFire("nightly", t1);
  EXPECT_TRUE(IsError(t.Fire(again), ErrorCode::kConflict));
  EXPECT_FALSE(t.Exists(again.job.id)) << "a refused fire inserts no job";
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}}));
  // Another schedule's same instant is its own tick.
  Job other = Must(t.Fire(t.MakeFire("hourly", t1)), "FireSchedule other");
  Job next = Must(t.Fire(t.MakeFire("nightly", t2)), "FireSchedule next");
  EXPECT_EQ(t.States(), (std::map<std::string, ScheduleState>{
                            {"nightly", ScheduleState{"nightly", t2, next.id}},
                            {"hourly", ScheduleState{"hourly", t1, other.id}}}));
  // A refusal inside a transaction leaves it usable.
  auto both = t.Write([&](WriteTx& tx) -> Result<Job> {
    if (auto r = tx.FireSchedule(t.MakeFire("nightly", t2));
        r || r.error().code != ErrorCode::kConflict) {
      return Error::Internal("expected kConflict");
    }
    return tx.Insert(t.MakeJob());
  });
  EXPECT_TRUE(IsOk(both));
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 4}}));
}

TYPED_TEST_P(JobStoreConformanceTest, AnEarlierTickFiresButDoesNotMoveTheLastFire) {
  auto& t = *this;
  Job late = Must(t.Fire(t.MakeFire("s", kT0 + 10'000)), "FireSchedule");
  Job early = Must(t.Fire(t.MakeFire("s", kT0)), "FireSchedule earlier, never fired");
  EXPECT_NE(early.id, late.id);
  EXPECT_EQ(t.States()["s"], (ScheduleState{"s", kT0 + 10'000, late.id}));
  // More than kScheduleFireRetention before the last fire: its record may be
  // gone, so it is refused rather than perhaps fired twice.
  const UnixMillis far = kT0 + 10'000 + kScheduleFireRetention + 1'000;
  Job last = Must(t.Fire(t.MakeFire("s", far)), "FireSchedule far");
  ScheduleFire old = t.MakeFire("s", kT0 + 5'000);
  EXPECT_TRUE(IsError(t.Fire(old), ErrorCode::kConflict));
  EXPECT_FALSE(t.Exists(old.job.id));
  EXPECT_EQ(t.States()["s"], (ScheduleState{"s", far, last.id}));
}

TYPED_TEST_P(JobStoreConformanceTest, FiringIntoAFullQueueRecordsNoFire) {
  auto& t = *this;
  t.Submit("q");
  ScheduleFire f = t.MakeFire("s", kT0);
  f.job.max_depth = 1;
  EXPECT_TRUE(IsError(t.Fire(f), ErrorCode::kQueueFull));
  EXPECT_FALSE(t.Exists(f.job.id));
  EXPECT_TRUE(t.States().empty()) << "no fire recorded: the tick may fire later";
  f.job.max_depth = 2;
  Job job = Must(t.Fire(f), "FireSchedule once there is room");
  EXPECT_EQ(t.States()["s"], (ScheduleState{"s", kT0, job.id}));
}

TYPED_TEST_P(JobStoreConformanceTest, TwoStoreObjectsFiringTheSameTicksMakeOneJobEach) {
  auto& t = *this;
  auto other = t.OpenAnother();
  constexpr int kTicks = 20;
  std::atomic<int> fired[2] = {0, 0};
  std::atomic<int> failures{0};
  auto node = [&](JobStore& store, int n) {
    for (int i = 0; i < kTicks; ++i) {
      ScheduleFire f = t.MakeFire("every-second", kT0 + i * 1'000);
      auto tx = store.BeginWrite();
      if (!tx) {
        ++failures;
        continue;
      }
      auto r = (*tx)->FireSchedule(f);
      if (r) {
        if ((*tx)->Commit()) ++fired[n];
      } else if (r.error().code != ErrorCode::kConflict) {
        ADD_FAILURE() << "FireSchedule: " << Describe(r.error());
        ++failures;
      }
    }
  };
  std::thread a([&] { node(t.store(), 0); });
  std::thread b([&] { node(*other, 1); });
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fired[0].load() + fired[1].load(), kTicks);
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, kTicks}}));
  auto states = t.States(other.get());
  ASSERT_EQ(states.count("every-second"), 1u);
  EXPECT_EQ(states["every-second"].last_fire_at, kT0 + (kTicks - 1) * 1'000);
  EXPECT_TRUE(t.Exists(states["every-second"].last_job_id));
  EXPECT_EQ(t.States(), states) << "both store objects see the same state";
}

TYPED_TEST_P(JobStoreConformanceTest, ScheduleStateSurvivesReopen) {
  auto& t = *this;
  Job job = Must(t.Fire(t.MakeFire("s", kT0)), "FireSchedule");
  t.Reopen();
  EXPECT_EQ(t.States()["s"], (ScheduleState{"s", kT0, job.id}));
  EXPECT_TRUE(IsError(t.Fire(t.MakeFire("s", kT0)), ErrorCode::kConflict));
}

TYPED_TEST_P(JobStoreConformanceTest, APausedQueueIsNotClaimedUntilResumed) {
  auto& t = *this;
  t.Submit("a", kT0);
  t.Submit("a", kT0);
  t.Submit("b", kT0);
  auto pause = [&](const std::string& queue, bool paused) {
    return Must(t.Write([&](WriteTx& tx) { return tx.SetQueuePaused(queue, paused, kT0 + 1); }),
                "SetQueuePaused");
  };
  EXPECT_FALSE(pause("a", true)) << "was not paused";
  EXPECT_TRUE(pause("a", true)) << "pausing twice is fine";
  EXPECT_EQ(Must(t.store().PausedQueues(), "PausedQueues"), std::vector<std::string>{"a"});
  EXPECT_TRUE(t.Claim("a", 10, kT0 + 2).empty());
  EXPECT_EQ(t.Claim("b", 10, kT0 + 2).size(), 1u) << "other queues are not paused";
  t.Submit("a", kT0 + 3);  // submits are still accepted
  EXPECT_EQ(t.CountsByQueue()["a"][static_cast<size_t>(JobState::kQueued)], 3);
  EXPECT_TRUE(pause("a", false));
  EXPECT_FALSE(pause("a", false)) << "resuming twice is fine";
  EXPECT_TRUE(Must(t.store().PausedQueues(), "PausedQueues").empty());
  EXPECT_EQ(t.Claim("a", 10, kT0 + 4).size(), 3u);
}

TYPED_TEST_P(JobStoreConformanceTest, NodesAreRecordedRefreshedAndForgotten) {
  auto& t = *this;
  auto touch = [&](const std::string& name, UnixMillis started, UnixMillis now,
                   UnixMillis forget_before) {
    ASSERT_TRUE(IsOk(t.Write([&](WriteTx& tx) -> Result<bool> {
      if (auto st = tx.TouchNode(name, started, now, forget_before); !st) return st.error();
      return true;
    })));
  };
  EXPECT_TRUE(Must(t.store().Nodes(), "Nodes").nodes.empty());
  touch("node-b", kT0, kT0, 0);
  touch("node-a", kT0 + 5, kT0 + 5, 0);
  touch("node-b", kT0, kT0 + 10, 0);
  EXPECT_EQ(Must(t.store().Nodes(), "Nodes").nodes,
            (std::vector<NodeInfo>{{"node-a", kT0 + 5, kT0 + 5}, {"node-b", kT0, kT0 + 10}}));
  touch("node-b", kT0, kT0 + 8, 0);  // a late heartbeat does not move seen_at back
  EXPECT_EQ(Must(t.store().Nodes(), "Nodes").nodes[1].seen_at, kT0 + 10);
  // node-a was last seen at kT0 + 5: forgotten by node-b's heartbeat.
  touch("node-b", kT0, kT0 + 20, kT0 + 6);
  EXPECT_EQ(Must(t.store().Nodes(), "Nodes").nodes,
            (std::vector<NodeInfo>{{"node-b", kT0, kT0 + 20}}));
  // A node's own heartbeat never forgets itself, and a restart moves started_at.
  touch("node-b", kT0 + 30, kT0 + 30, kT0 + 100);
  EXPECT_EQ(Must(t.store().Nodes(), "Nodes").nodes,
            (std::vector<NodeInfo>{{"node-b", kT0 + 30, kT0 + 30}}));
}

TYPED_TEST_P(JobStoreConformanceTest, NodesCountRunningJobsPerLeaseOwner) {
  auto& t = *this;
  t.Running("q", kT0, "node-a");
  t.Running("q", kT0, "node-a");
  t.Running("r", kT0, "worker:w1");
  Job done = t.Running("q", kT0, "node-b");
  t.MustFinish(AttemptOutcome::Succeeded(done.id, done.lease_token, kT0 + 1, "ok", "text/plain"));
  t.Submit("q", kT0);  // queued: owned by nobody
  EXPECT_EQ(Must(t.store().Nodes(), "Nodes").owners,
            (std::vector<OwnerCount>{{"node-a", 2}, {"worker:w1", 1}}));
}

TYPED_TEST_P(JobStoreConformanceTest, RetryJobQueuesAFailedOrCanceledJobAgain) {
  auto& t = *this;
  Job failed = t.Running("q", kT0, "node-a", /*max_attempts=*/1);
  t.MustFinish(AttemptOutcome::Failed(failed.id, failed.lease_token, kT0 + 1,
                                      JobError{"handler_error", "boom"}));
  auto retry = [&](const JobId& id, UnixMillis now) {
    return t.Write([&](WriteTx& tx) { return tx.RetryJob(id, now); });
  };
  Job again = Must(retry(failed.id, kT0 + 10), "RetryJob failed");
  EXPECT_EQ(again.state, JobState::kQueued);
  EXPECT_EQ(again.attempts, 1);
  EXPECT_EQ(again.max_attempts, 2) << "one more attempt";
  EXPECT_EQ(again.run_at, kT0 + 10);
  EXPECT_FALSE(again.finished_at);
  EXPECT_FALSE(again.expires_at);
  ASSERT_TRUE(again.error);
  EXPECT_EQ(again.error->message, "boom") << "the last error stays until the next outcome";
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}}));
  Job claimed = t.ClaimOne("q", kT0 + 11);
  EXPECT_EQ(claimed.id, failed.id);
  EXPECT_EQ(claimed.attempts, 2);

  Job queued = t.Submit("c", kT0);
  ASSERT_TRUE(IsOk(t.Cancel(queued.id, kT0 + 1)));
  Job uncanceled = Must(retry(queued.id, kT0 + 2), "RetryJob canceled");
  EXPECT_EQ(uncanceled.state, JobState::kQueued);
  EXPECT_FALSE(uncanceled.cancel_requested);
  EXPECT_EQ(uncanceled.max_attempts, queued.max_attempts) << "attempts were not spent";

  Job done = t.Running("d", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(done.id, done.lease_token, kT0 + 1, "r", "text/plain"));
  EXPECT_TRUE(IsError(retry(done.id, kT0 + 2), ErrorCode::kConflict));
  EXPECT_EQ(t.Get(done.id).state, JobState::kSucceeded);
  EXPECT_TRUE(IsError(retry(claimed.id, kT0 + 12), ErrorCode::kConflict)) << "running";
  EXPECT_TRUE(IsError(retry(JobId::Random(), kT0 + 2), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, DeleteFinishedRemovesOnlyAQueuesFinishedJobs) {
  auto& t = *this;
  Job ok = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(ok.id, ok.lease_token, kT0 + 1, "r", "text/plain"));
  Job bad = t.Running("q", kT0);
  t.MustFinish(AttemptOutcome::Failed(bad.id, bad.lease_token, kT0 + 1, JobError{"e", "x"}));
  Job canceled = t.Submit("q", kT0);
  ASSERT_TRUE(IsOk(t.Cancel(canceled.id, kT0 + 1)));
  Job running = t.Running("q", kT0);
  Job queued = t.Submit("q", kT0);
  Job elsewhere = t.Running("other", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(elsewhere.id, elsewhere.lease_token, kT0 + 1, "r", "t"));
  auto purge = [&](std::optional<JobState> state, int limit) {
    return Must(t.Write([&](WriteTx& tx) { return tx.DeleteFinished("q", state, limit); }),
                "DeleteFinished");
  };
  EXPECT_EQ(purge(JobState::kFailed, 100), std::vector<JobId>{bad.id});
  EXPECT_TRUE(IsError(t.store().Get(bad.id), ErrorCode::kNotFound));
  EXPECT_EQ(purge(std::nullopt, 1).size(), 1u) << "the limit holds";
  EXPECT_EQ(purge(std::nullopt, 100).size(), 1u);
  EXPECT_TRUE(purge(std::nullopt, 100).empty());
  EXPECT_TRUE(IsError(t.store().Get(ok.id), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(t.store().Get(canceled.id), ErrorCode::kNotFound));
  EXPECT_EQ(t.Get(queued.id).state, JobState::kQueued);
  EXPECT_EQ(t.Get(running.id).state, JobState::kRunning);
  EXPECT_EQ(t.Get(elsewhere.id).state, JobState::kSucceeded) << "another queue";
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}, {JobState::kRunning, 1}}));
}

TYPED_TEST_P(JobStoreConformanceTest, ClaimsRecordTheLatestAttemptsStart) {
  auto& t = *this;
  Job first = t.Running("q", kT0 + 1);
  EXPECT_EQ(first.started_at, kT0 + 1);
  EXPECT_EQ(first.attempt_started_at, kT0 + 1);
  t.MustFinish(AttemptOutcome::Retry(first.id, first.lease_token, kT0 + 2, kT0 + 2,
                                     JobError{"handler_error", "x"}));
  Job second = t.ClaimOne("q", kT0 + 50);
  ASSERT_EQ(second.id, first.id);
  EXPECT_EQ(second.started_at, kT0 + 1);
  EXPECT_EQ(second.attempt_started_at, kT0 + 50);
  EXPECT_EQ(t.Get(first.id).attempt_started_at, kT0 + 50);
}

TYPED_TEST_P(JobStoreConformanceTest, OldestReadyIsTheEarliestDueQueuedJobPerQueue) {
  auto& t = *this;
  EXPECT_TRUE(Must(t.store().OldestReady(), "OldestReady").empty());
  t.Submit("a", kT0 + 5);
  t.Submit("a", kT0 + 2);
  t.Submit("b", kT0 + 7);
  NewJob delayed = t.MakeJob("b", kT0);
  delayed.run_at = kT0 + 1'000'000;  // not due: not ready
  t.Insert(delayed);
  Job running = t.Running("c", kT0 + 1);  // claimed: not ready
  (void)running;
  EXPECT_EQ(t.Sorted(Must(t.store().OldestReady(), "OldestReady")),
            (std::vector<QueueValue>{{"a", kT0 + 2}, {"b", kT0 + 7}}));
}

// ---------------------------------------------------------------------------
// Reads

TYPED_TEST_P(JobStoreConformanceTest, ListIsNewestFirstWithQueueAndStateFilters) {
  auto& t = *this;
  std::vector<JobId> inserted;  // oldest first
  std::vector<JobId> in_a, queued_in_a;
  for (int i = 0; i < 6; ++i) {
    std::string queue = i % 2 == 0 ? "a" : "b";
    Job j = t.Submit(queue, kT0 + i);
    inserted.push_back(j.id);
    if (queue == "a") in_a.push_back(j.id);
  }
  // Claim the oldest job of "a" and fail it: a mix of states.
  Job c = t.ClaimOne("a", kT0 + 10);
  t.MustFinish(AttemptOutcome::Failed(c.id, c.lease_token, kT0 + 11, {"e", "m"}));
  for (const JobId& id : in_a) {
    if (id != c.id) queued_in_a.push_back(id);
  }

  auto ids = [](const std::vector<Job>& jobs) {
    std::vector<JobId> out;
    for (const Job& j : jobs) out.push_back(j.id);
    return out;
  };
  auto reversed = [](std::vector<JobId> v) {
    std::reverse(v.begin(), v.end());
    return v;
  };

  JobPage all = Must(t.store().List(ListParams{}), "List");
  EXPECT_EQ(ids(all.jobs), reversed(inserted));
  EXPECT_FALSE(all.next_cursor.has_value());
  for (size_t i = 1; i < all.jobs.size(); ++i) EXPECT_GT(all.jobs[i - 1].seq, all.jobs[i].seq);
  for (const Job& j : all.jobs) EXPECT_TRUE(j.payload.empty());

  ListParams pa;
  pa.queue = "a";
  EXPECT_EQ(ids(t.ListAll(pa)), reversed(in_a));

  ListParams pq;
  pq.queue = "a";
  pq.state = JobState::kQueued;
  EXPECT_EQ(ids(t.ListAll(pq)), reversed(queued_in_a));

  ListParams pf;
  pf.state = JobState::kFailed;
  EXPECT_EQ(ids(t.ListAll(pf)), std::vector<JobId>{c.id});
  EXPECT_EQ(t.ListAll(pf)[0].state, JobState::kFailed);

  ListParams pn;
  pn.queue = "none";
  EXPECT_TRUE(Must(t.store().List(pn), "List").jobs.empty());
  ListParams ps;
  ps.queue = "b";
  ps.state = JobState::kRunning;
  EXPECT_TRUE(Must(t.store().List(ps), "List").jobs.empty());
}

TYPED_TEST_P(JobStoreConformanceTest, ListPaginatesWithTheCursor) {
  auto& t = *this;
  std::vector<JobId> newest_first;
  for (int i = 0; i < 8; ++i) newest_first.insert(newest_first.begin(), t.Submit("q", kT0 + i).id);
  t.Submit("other", kT0 + 100);

  ListParams p;
  p.queue = "q";
  p.limit = 3;
  std::vector<JobId> seen;
  std::vector<size_t> page_sizes;
  for (int pages = 0; pages < 10; ++pages) {
    JobPage page = Must(t.store().List(p), "List");
    page_sizes.push_back(page.jobs.size());
    for (const Job& j : page.jobs) seen.push_back(j.id);
    if (!page.next_cursor) break;
    p.before_seq = page.next_cursor;
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{3, 3, 2}));
  EXPECT_EQ(seen, newest_first);

  // A page that holds exactly the rest has no cursor.
  ListParams exact;
  exact.queue = "q";
  exact.limit = 8;
  JobPage page = Must(t.store().List(exact), "List");
  EXPECT_EQ(page.jobs.size(), 8u);
  EXPECT_FALSE(page.next_cursor.has_value());
}

TYPED_TEST_P(JobStoreConformanceTest, CountsStayConsistentThroughEveryTransition) {
  auto& t = *this;
  auto check = [&](const std::string& when) { t.ExpectCountsMatchJobs(when); };
  EXPECT_TRUE(Must(t.store().Counts(), "Counts").empty()) << "a fresh store has no queues";

  std::vector<Job> jobs;
  for (int i = 0; i < 10; ++i) jobs.push_back(t.Submit(i < 8 ? "a" : "b", kT0 + i));
  check("inserts");
  EXPECT_EQ(t.CountsOf("a"), Tally({{JobState::kQueued, 8}}));
  EXPECT_EQ(t.CountsOf("b"), Tally({{JobState::kQueued, 2}}));

  auto running = t.Claim("a", 6, kT0 + 20, "node-a", kT0 + 1'000);
  ASSERT_EQ(running.size(), 6u);
  check("claim");
  EXPECT_EQ(t.CountsOf("a"), Tally({{JobState::kQueued, 2}, {JobState::kRunning, 6}}));

  t.MustFinish(
      AttemptOutcome::Succeeded(running[0].id, running[0].lease_token, kT0 + 21, "x", "t/p"));
  check("succeeded");
  t.MustFinish(AttemptOutcome::Failed(running[1].id, running[1].lease_token, kT0 + 22, {"e", ""}));
  check("failed");
  t.MustFinish(
      AttemptOutcome::Retry(running[2].id, running[2].lease_token, kT0 + 23, kT0 + 23, {"e", ""}));
  check("retry");
  ASSERT_TRUE(IsOk(t.Cancel(running[3].id, kT0 + 24)));
  check("cancel signalled");
  t.MustFinish(AttemptOutcome::Canceled(running[3].id, running[3].lease_token, kT0 + 25));
  check("canceled by runner");
  EXPECT_EQ(t.CountsOf("a"), Tally({{JobState::kQueued, 3},
                                    {JobState::kRunning, 2},
                                    {JobState::kSucceeded, 1},
                                    {JobState::kFailed, 1},
                                    {JobState::kCanceled, 1}}));

  // Cancel a queued job, delete a queued, a terminal and a running one.
  Job queued_b = t.ClaimOne("b", kT0 + 26, "node-b");  // one of "b" runs, one stays queued
  check("claim b");
  JobId other_b = queued_b.id == jobs[8].id ? jobs[9].id : jobs[8].id;
  ASSERT_TRUE(IsOk(t.Cancel(other_b, kT0 + 27)));
  check("cancel queued");
  ASSERT_TRUE(IsOk(t.Delete(running[0].id, kT0 + 28)));
  check("delete terminal");
  ASSERT_TRUE(IsOk(t.Delete(running[4].id, kT0 + 29)));
  check("delete running (signalled)");
  t.MustFinish(AttemptOutcome::Canceled(running[4].id, running[4].lease_token, kT0 + 30));
  check("delete running (finished)");
  ListParams queued_in_a;
  queued_in_a.queue = "a";
  queued_in_a.state = JobState::kQueued;
  auto queued_a = t.ListAll(queued_in_a);
  ASSERT_FALSE(queued_a.empty());
  ASSERT_TRUE(IsOk(t.Delete(queued_a.front().id, kT0 + 31)));
  check("delete queued");

  // Leases: running[5] expires at kT0 + 1'000 with attempts left.
  auto rescued = t.Rescue(kT0 + 1'001);
  ASSERT_EQ(rescued.size(), 1u);
  check("rescue");
  Job mine = t.ClaimOne("a", kT0 + 1'002, "node-z");
  check("claim again");
  EXPECT_EQ(t.Release("node-z", kT0 + 1'003), 1);
  check("release");
  EXPECT_EQ(t.Release("node-a", kT0 + 1'003), 0);  // its leases are all gone

  EXPECT_GT(t.Purge(kT0 + 100 * kRetention), 0);
  check("purge");
  EXPECT_EQ(t.CountsOf("b"), Tally({{JobState::kRunning, 1}}));

  // Refused writes change nothing.
  NewJob dup = t.MakeJob("a", kT0 + 2'000);
  dup.id = mine.id;
  EXPECT_TRUE(IsError(t.Write([&](WriteTx& tx) { return tx.Insert(dup); }), ErrorCode::kConflict));
  NewJob full = t.MakeJob("a", kT0 + 2'000);
  full.max_depth = 1;
  EXPECT_TRUE(
      IsError(t.Write([&](WriteTx& tx) { return tx.Insert(full); }), ErrorCode::kQueueFull));
  check("refused inserts");
}

TYPED_TEST_P(JobStoreConformanceTest, CountsKeepQueuesThatHadJobs) {
  auto& t = *this;
  Job q = t.Submit("gone", kT0);
  ASSERT_TRUE(IsOk(t.Delete(q.id, kT0 + 1)));
  auto counts = t.CountsByQueue();
  ASSERT_TRUE(counts.count("gone")) << "Counts() covers every queue that has or had jobs";
  EXPECT_EQ(counts["gone"], StateCounts{});
}

TYPED_TEST_P(JobStoreConformanceTest, PromoteDueJobsReportsQueuesThatGotWork) {
  auto& t = *this;
  t.Submit("due", kT0);  // claimable from the start: nothing to promote
  auto delayed = [&](std::string queue, UnixMillis run_at) {
    NewJob n = t.MakeJob(std::move(queue), kT0);
    n.run_at = run_at;
    return t.Insert(n);
  };
  Job soon1 = delayed("soon", kT0 + 1'000);
  Job soon2 = delayed("soon", kT0 + 1'500);
  Job later = delayed("later", kT0 + 5'000);
  Job canceled = delayed("canceled", kT0 + 1'000);
  ASSERT_TRUE(IsOk(t.Cancel(canceled.id, kT0 + 1)));
  Job retried = t.Running("backoff", kT0);
  t.MustFinish(
      AttemptOutcome::Retry(retried.id, retried.lease_token, kT0 + 1, kT0 + 2'000, {"e", "m"}));

  EXPECT_TRUE(t.Promote(kT0 + 999).empty());
  EXPECT_EQ(t.Promote(kT0 + 1'000), std::set<std::string>{"soon"});
  EXPECT_TRUE(t.Promote(kT0 + 1'000).empty()) << "nothing new became due";
  EXPECT_EQ(t.Promote(kT0 + 2'000), (std::set<std::string>{"soon", "backoff"}));
  EXPECT_TRUE(t.Promote(kT0 + 4'999).empty());

  std::set<JobId> claimed;
  for (const Job& j : t.Claim("soon", 10, kT0 + 2'000)) claimed.insert(j.id);
  EXPECT_EQ(claimed, (std::set<JobId>{soon1.id, soon2.id}));
  EXPECT_EQ(t.ClaimOne("backoff", kT0 + 2'000).attempts, 2);
  EXPECT_TRUE(t.Claim("later", 10, kT0 + 2'000).empty());
  EXPECT_EQ(t.Get(canceled.id).state, JobState::kCanceled);

  EXPECT_EQ(t.Promote(kT0 + 5'000), std::set<std::string>{"later"});
  EXPECT_EQ(t.ClaimOne("later", kT0 + 5'000).id, later.id);
  t.ExpectCountsMatchJobs("promotions");
}

TYPED_TEST_P(JobStoreConformanceTest, PromoteDueJobsRespectsLimit) {
  auto& t = *this;
  for (int i = 0; i < 5; ++i) {
    NewJob n = t.MakeJob("q", kT0);
    n.run_at = kT0 + 100 + i;
    t.Insert(n);
  }
  EXPECT_EQ(t.Promote(kT0 + 1'000, 2), std::set<std::string>{"q"});
  EXPECT_EQ(t.Claim("q", 10, kT0 + 1'000).size(), 2u);
  EXPECT_EQ(t.Promote(kT0 + 1'000, 2), std::set<std::string>{"q"});
  EXPECT_EQ(t.Promote(kT0 + 1'000, 2), std::set<std::string>{"q"});
  EXPECT_TRUE(t.Promote(kT0 + 1'000, 2).empty());
  EXPECT_EQ(t.Claim("q", 10, kT0 + 1'000).size(), 3u);
}

TYPED_TEST_P(JobStoreConformanceTest, PingAnswersOk) {
  auto& t = *this;
  EXPECT_TRUE(IsOk(t.store().Ping()));
  t.Submit();
  EXPECT_TRUE(IsOk(t.store().Ping()));
}

// ---------------------------------------------------------------------------
// Transactions and durability

TYPED_TEST_P(JobStoreConformanceTest, WriteTxDestroyedWithoutCommitRollsBack) {
  auto& t = *this;
  Job queued = t.Submit("q", kT0);
  Job running = t.Running("r", kT0);
  Job terminal = t.Running("r", kT0);
  t.MustFinish(AttemptOutcome::Succeeded(terminal.id, terminal.lease_token, kT0 + 1, "x", "t/p"));
  const auto counts_before = t.CountsByQueue();
  const Job queued_before = t.Get(queued.id);
  const Job running_before = t.Get(running.id);
  const Job terminal_before = t.Get(terminal.id);

  NewJob fresh = t.MakeJob("q", kT0 + 10);
  {
    auto tx = Must(t.store().BeginWrite(), "BeginWrite");
    ASSERT_TRUE(IsOk(tx->Insert(fresh)));
    auto claimed = tx->Claim(ClaimParams{"q", 10, "node-x", kT0 + 20, kT0 + 20 + kLease});
    ASSERT_TRUE(IsOk(claimed));
    EXPECT_EQ(claimed->size(), 2u);
    ASSERT_TRUE(IsOk(
        tx->Finish(AttemptOutcome::Failed(running.id, running.lease_token, kT0 + 21, {"e", "m"}))));
    ASSERT_TRUE(IsOk(tx->Delete(terminal.id, kT0 + 22)));
    ASSERT_TRUE(IsOk(tx->PurgeExpired(kT0 + 100 * kRetention, 100, 0)));
    ASSERT_TRUE(IsOk(tx->ReleaseLeases("node-a", kT0 + 23)));
    // destroyed without Commit()
  }
  EXPECT_FALSE(t.Exists(fresh.id));
  ExpectSameJob(t.Get(queued.id), queued_before);
  ExpectSameJob(t.Get(running.id), running_before);
  ExpectSameJob(t.Get(terminal.id), terminal_before);
  EXPECT_EQ(t.CountsByQueue(), counts_before);

  // The store takes writes again, and the rolled-back id is free.
  Job again = t.Insert(fresh);
  EXPECT_EQ(again.id, fresh.id);
  t.ExpectCountsMatchJobs("rollback");
}

TYPED_TEST_P(JobStoreConformanceTest, ReadsDoNotSeeUncommittedWrites) {
  auto& t = *this;
  Job queued = t.Submit("q", kT0);
  NewJob fresh = t.MakeJob("q", kT0 + 1);
  auto tx = Must(t.store().BeginWrite(), "BeginWrite");
  ASSERT_TRUE(IsOk(tx->Insert(fresh)));
  ASSERT_TRUE(IsOk(tx->Cancel(queued.id, kT0 + 2)));

  EXPECT_TRUE(IsError(t.store().Get(fresh.id), ErrorCode::kNotFound));
  EXPECT_EQ(t.Get(queued.id).state, JobState::kQueued);
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 1}}));

  Must(tx->Commit(), "Commit");
  tx.reset();
  EXPECT_TRUE(t.Exists(fresh.id));
  EXPECT_EQ(t.Get(queued.id).state, JobState::kCanceled);
}

TYPED_TEST_P(JobStoreConformanceTest, ConcurrentReadsWhileWriting) {
  auto& t = *this;
  std::atomic<bool> stop{false};
  std::atomic<int> read_errors{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      JobId probe = JobId::Random();
      while (!stop.load()) {
        auto g = t.store().Get(probe);
        if (g.ok() || g.error().code != ErrorCode::kNotFound) ++read_errors;
        if (!t.store().List(ListParams{}).ok()) ++read_errors;
        if (!t.store().Counts().ok()) ++read_errors;
      }
    });
  }
  for (int i = 0; i < 20; ++i) t.Submit("q", kT0 + i);
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_EQ(t.CountsOf("q"), Tally({{JobState::kQueued, 20}}));
}

TYPED_TEST_P(JobStoreConformanceTest, DataSurvivesReopen) {
  auto& t = *this;
  const std::string payload("bytes\0with\0nuls", 15);
  NewJob qn = t.MakeJob("q", kT0);
  qn.payload = payload;
  Job queued = t.Insert(qn);
  Job running = t.Running("r", kT0, "node-a");
  Job done = t.Running("r", kT0 + 1);
  t.MustFinish(AttemptOutcome::Succeeded(done.id, done.lease_token, kT0 + 2,
                                         std::string("res\0ult", 7), "application/x-r"));
  Job failed = t.Running("r", kT0 + 3);
  t.MustFinish(AttemptOutcome::Failed(failed.id, failed.lease_token, kT0 + 4, {"t", "msg"}));
  ASSERT_TRUE(IsOk(t.SetProgress(running.id, running.lease_token, {30, "thirty"}, kT0 + 5)));
  ASSERT_TRUE(IsOk(t.Cancel(running.id, kT0 + 6)));

  std::vector<Job> before;
  for (const JobId& id : {queued.id, running.id, done.id, failed.id}) before.push_back(t.Get(id));
  const auto counts_before = t.CountsByQueue();
  const auto list_before = t.ListAll();

  t.Reopen();

  for (const Job& b : before) {
    SCOPED_TRACE(b.id.ToHex());
    ExpectSameJob(t.Get(b.id), b);
  }
  EXPECT_EQ(t.CountsByQueue(), counts_before);
  auto list_after = t.ListAll();
  ASSERT_EQ(list_after.size(), list_before.size());
  for (size_t i = 0; i < list_after.size(); ++i) ExpectSameJob(list_after[i], list_before[i]);

  StoredResult r = Must(t.store().GetResult(done.id), "GetResult");
  EXPECT_EQ(r.body, std::string("res\0ult", 7));
  EXPECT_EQ(r.content_type, "application/x-r");

  // Leases and fencing survive: the running job's lease is still valid.
  EXPECT_EQ(t.ExtendLeases({running}, kT0 + 2 * kLease, kT0 + 7).cancel_requested,
            std::vector<JobId>{running.id});
  Job claimed = t.ClaimOne("q", kT0 + 8);
  EXPECT_EQ(claimed.payload, payload);
  t.MustFinish(AttemptOutcome::Canceled(running.id, running.lease_token, kT0 + 9));

  // New jobs still list as the newest.
  Job newer = t.Submit("q", kT0 + 10);
  EXPECT_EQ(t.ListAll().front().id, newer.id);
  t.ExpectCountsMatchJobs("reopen");
}

TYPED_TEST_P(JobStoreConformanceTest, CallbackIsDueOnceTheJobIsTerminalWhateverEndedIt) {
  auto& t = *this;
  auto with_callback = [&](std::string queue, int max_attempts = 3) {
    NewJob n = t.MakeJob(queue);
    n.max_attempts = max_attempts;
    n.callback_url = "http://hooks.example/" + queue;
    return t.Insert(n);
  };
  Job plain = t.Submit("plain");
  Job queued = with_callback("queued");
  EXPECT_EQ(queued.callback->url, "http://hooks.example/queued");
  EXPECT_EQ(t.Get(queued.id).callback->url, "http://hooks.example/queued");
  EXPECT_FALSE(t.Get(plain.id).callback.has_value());
  EXPECT_FALSE(t.Get(queued.id).callback->next_attempt_at.has_value()) << "not terminal yet";

  Job succeeded = with_callback("succeeded");
  Job s = t.ClaimOne("succeeded");
  Job failed = with_callback("failed", 1);
  Job f = t.ClaimOne("failed", kT0, "node-a", kT0 + 10);
  Job retried = with_callback("retried");
  Job r = t.ClaimOne("retried");
  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 1'000).empty()) << "running jobs have no callback due";

  t.MustFinish(AttemptOutcome::Succeeded(s.id, s.lease_token, kT0 + 100, "{}", "application/json"));
  t.MustFinish(AttemptOutcome::Retry(r.id, r.lease_token, kT0 + 100, kT0 + 200, {"e", "m"}));
  ASSERT_TRUE(IsOk(t.Cancel(queued.id, kT0 + 200)));
  ASSERT_EQ(t.Rescue(kT0 + 300).size(), 1u);  // f's lease expired, no attempts left: failed

  EXPECT_EQ(t.Get(succeeded.id).callback->next_attempt_at, kT0 + 100);
  EXPECT_EQ(t.Get(queued.id).callback->next_attempt_at, kT0 + 200);
  EXPECT_EQ(t.Get(failed.id).callback->next_attempt_at, kT0 + 300);
  EXPECT_FALSE(t.Get(retried.id).callback->next_attempt_at.has_value()) << "retried, not terminal";

  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 99).empty()) << "none due before the first terminal time";
  auto due = t.ClaimCallbacks(kT0 + 250);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].id, succeeded.id) << "earliest first";
  EXPECT_EQ(due[1].id, queued.id);
  EXPECT_EQ(due[0].state, JobState::kSucceeded);
  EXPECT_EQ(due[0].callback->url, "http://hooks.example/succeeded");
}

TYPED_TEST_P(JobStoreConformanceTest, ClaimedCallbacksAreLeasedUntilTheGivenTime) {
  auto& t = *this;
  NewJob n = t.MakeJob();
  n.callback_url = "http://hooks.example/x";
  Job j = t.Insert(n);
  ASSERT_TRUE(IsOk(t.Cancel(j.id, kT0)));
  ASSERT_EQ(t.ClaimCallbacks(kT0, 10, kT0 + 5'000).size(), 1u);
  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 4'999).empty()) << "leased: another node must not take it";
  EXPECT_EQ(t.Get(j.id).callback->next_attempt_at, kT0 + 5'000);
  EXPECT_EQ(t.ClaimCallbacks(kT0 + 5'000, 10, kT0 + 9'000).size(), 1u)
      << "a lease that ran out (the deliverer died) makes the delivery due again";
  // Limit.
  for (int i = 0; i < 3; ++i) {
    NewJob m = t.MakeJob();
    m.callback_url = "http://hooks.example/y";
    ASSERT_TRUE(IsOk(t.Cancel(t.Insert(m).id, kT0)));
  }
  EXPECT_EQ(t.ClaimCallbacks(kT0 + 1, 2).size(), 2u);
  EXPECT_EQ(t.ClaimCallbacks(kT0 + 1, 2).size(), 1u);
}

TYPED_TEST_P(JobStoreConformanceTest, RecordCallbackAttemptKeepsTheDeliveryHistory) {
  auto& t = *this;
  NewJob n = t.MakeJob();
  n.callback_url = "http://hooks.example/x";
  Job j = t.Insert(n);
  ASSERT_TRUE(IsOk(t.Cancel(j.id, kT0)));
  ASSERT_EQ(t.ClaimCallbacks(kT0, 10, kT0 + 100).size(), 1u);

  Job after =
      t.RecordCallback(CallbackAttempt::Retry(j.id, kT0 + 100, kT0 + 10, 500, "", kT0 + 2'000));
  EXPECT_EQ(after.callback->attempts, 1);
  EXPECT_EQ(after.callback->last_status, 500);
  EXPECT_EQ(after.callback->next_attempt_at, kT0 + 2'000);
  EXPECT_FALSE(after.callback->delivered_at.has_value());
  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 1'999).empty());
  ASSERT_EQ(t.ClaimCallbacks(kT0 + 2'000, 10, kT0 + 2'100).size(), 1u);

  after = t.RecordCallback(CallbackAttempt::Retry(j.id, kT0 + 2'100, kT0 + 2'010, std::nullopt,
                                                  "connection refused", kT0 + 6'000));
  EXPECT_EQ(after.callback->attempts, 2);
  EXPECT_FALSE(after.callback->last_status.has_value());
  EXPECT_EQ(after.callback->last_error, "connection refused");
  ASSERT_EQ(t.ClaimCallbacks(kT0 + 6'000, 10, kT0 + 6'100).size(), 1u);

  after = t.RecordCallback(CallbackAttempt::Delivered(j.id, kT0 + 6'100, kT0 + 6'010, 204));
  EXPECT_EQ(after.callback->attempts, 3);
  EXPECT_EQ(after.callback->last_status, 204);
  EXPECT_EQ(after.callback->last_error, "");
  EXPECT_EQ(after.callback->delivered_at, kT0 + 6'010);
  EXPECT_FALSE(after.callback->next_attempt_at.has_value());
  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 1'000'000).empty()) << "delivered: never again";
  ExpectSameJob(t.Get(j.id), after);

  // Giving up also ends the deliveries, visibly.
  NewJob m = t.MakeJob();
  m.callback_url = "http://hooks.example/z";
  Job k = t.Insert(m);
  ASSERT_TRUE(IsOk(t.Cancel(k.id, kT0)));
  ASSERT_EQ(t.ClaimCallbacks(kT0, 10, kT0 + 50).size(), 1u);
  Job gave_up = t.RecordCallback(CallbackAttempt::GaveUp(k.id, kT0 + 50, kT0 + 5, 410, ""));
  EXPECT_EQ(gave_up.callback->attempts, 1);
  EXPECT_EQ(gave_up.callback->last_status, 410);
  EXPECT_FALSE(gave_up.callback->delivered_at.has_value());
  EXPECT_FALSE(gave_up.callback->next_attempt_at.has_value());
  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 1'000'000).empty());

  auto missing = t.Write([&](WriteTx& tx) {
    return tx.RecordCallbackAttempt(CallbackAttempt::Delivered(JobId::Random(), kT0, kT0, 200));
  });
  EXPECT_TRUE(IsError(missing, ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, ALateCallbackAttemptCannotOverwriteANewerOne) {
  auto& t = *this;
  NewJob n = t.MakeJob();
  n.callback_url = "http://hooks.example/x";
  Job j = t.Insert(n);
  ASSERT_TRUE(IsOk(t.Cancel(j.id, kT0)));
  // Node A's claim runs out; node B claims again and delivers.
  ASSERT_EQ(t.ClaimCallbacks(kT0, 10, kT0 + 100).size(), 1u);
  ASSERT_EQ(t.ClaimCallbacks(kT0 + 100, 10, kT0 + 200).size(), 1u);
  t.RecordCallback(CallbackAttempt::Delivered(j.id, kT0 + 200, kT0 + 150, 200));
  // A's attempt ends late, with a failure: it must not undo the delivery.
  auto late = t.Write([&](WriteTx& tx) {
    return tx.RecordCallbackAttempt(
        CallbackAttempt::Retry(j.id, kT0 + 100, kT0 + 160, 500, "", kT0 + 5'000));
  });
  EXPECT_TRUE(IsError(late, ErrorCode::kStaleLease));
  Job now = t.Get(j.id);
  EXPECT_EQ(now.callback->delivered_at, kT0 + 150);
  EXPECT_EQ(now.callback->attempts, 1);
  EXPECT_TRUE(t.ClaimCallbacks(kT0 + 1'000'000).empty());
  // Recording the same claim twice is stale too.
  auto again = t.Write([&](WriteTx& tx) {
    return tx.RecordCallbackAttempt(CallbackAttempt::Delivered(j.id, kT0 + 200, kT0 + 170, 200));
  });
  EXPECT_TRUE(IsError(again, ErrorCode::kStaleLease));
}

TYPED_TEST_P(JobStoreConformanceTest, PurgeKeepsJobsWhoseCallbackIsStillPending) {
  auto& t = *this;
  NewJob n = t.MakeJob();
  n.callback_url = "http://hooks.example/x";
  Job pending = t.Insert(n);
  ASSERT_TRUE(IsOk(t.Cancel(pending.id, kT0)));
  n.id = JobId::Random();
  Job delivered = t.Insert(n);
  ASSERT_TRUE(IsOk(t.Cancel(delivered.id, kT0)));
  auto due = t.ClaimCallbacks(kT0, 10, kT0 + 100);
  ASSERT_EQ(due.size(), 2u);
  t.RecordCallback(CallbackAttempt::Delivered(delivered.id, kT0 + 100, kT0 + 1, 200));
  t.RecordCallback(
      CallbackAttempt::Retry(pending.id, kT0 + 100, kT0 + 1, 500, "", kT0 + 10 * kRetention));
  EXPECT_EQ(t.Purge(kT0 + 2 * kRetention), 1);
  EXPECT_FALSE(t.Exists(delivered.id));
  EXPECT_TRUE(t.Exists(pending.id)) << "kept until its delivery ends";
}

TYPED_TEST_P(JobStoreConformanceTest, GetPayloadReturnsTheInputAsSubmitted) {
  auto& t = *this;
  NewJob n = t.MakeJob();
  n.payload = std::string("in\0put", 6);
  n.content_type = "application/x-in";
  Job j = t.Insert(n);
  auto p = t.store().GetPayload(j.id);
  ASSERT_TRUE(IsOk(p));
  EXPECT_EQ(p->body, n.payload);
  EXPECT_EQ(p->content_type, "application/x-in");
  EXPECT_TRUE(IsError(t.store().GetPayload(JobId::Random()), ErrorCode::kNotFound));
}

TYPED_TEST_P(JobStoreConformanceTest, PendingCallbackSurvivesReopen) {
  auto& t = *this;
  NewJob n = t.MakeJob();
  n.callback_url = "http://hooks.example/x";
  Job j = t.Insert(n);
  Job c = t.ClaimOne();
  t.MustFinish(AttemptOutcome::Succeeded(c.id, c.lease_token, kT0 + 7, "r", "text/plain"));
  t.Reopen();
  auto due = t.ClaimCallbacks(kT0 + 7);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].id, j.id);
  EXPECT_EQ(due[0].callback->url, "http://hooks.example/x");
}

REGISTER_TYPED_TEST_SUITE_P(
    JobStoreConformanceTest, EveryStateChangeIsReportedAndCheckedAgainstTheTable,
    CancelLostOnRetryFinishRetryAfterCancelRequestCancels,
    CancelLostOnRetryFinishRetryAfterDeleteRequestRemoves, InsertThenGetRoundTripsEveryField,
    PayloadBytesRoundTripIncludingNulAndEmpty, GetAndGetResultOfUnknownIdAreNotFound,
    DuplicateIdIsConflictAndLeavesTxUsable, IdempotencyKeyReplaysOrRefuses,
    InsertManyAppliesEachJobInOrderAsInsertWould, IdempotencyKeysAreScopedPerTenant,
    TenantRoundTripsAndListFiltersByIt, MaxDepthCountsQueuedAndRunningOnly,
    ClaimOrderIsPriorityThenRunAtThenInsertion, ClaimWithLimitTakesTheFirstJobsInClaimOrder,
    DelayedJobIsClaimableOnlyAfterPromotion, ClaimLeasesTheJob, LeaseTokenGrowsOnEveryClaim,
    FinishSucceededStoresTheResult, FinishSucceededWithEmptyBodyStillHasAResult,
    FinishFailedRecordsTheError, FinishRetryRequeuesTheJobUntilRetryAt, FinishCanceledEndsTheJob,
    FinishWithStaleTokenIsStaleLeaseAndChangesNothing, FinishOfUnknownJobIsNotFound,
    CancelQueuedJobCancelsItAtOnce, CancelRunningJobOnlySignalsIt,
    CancelTerminalJobIsConflictNamingTheState, CancelUnknownJobIsNotFound,
    DeleteTerminalJobRemovesIt, DeleteQueuedJobCancelsAndRemovesIt,
    DeleteRunningJobSignalsAndRemovesItOnceItStops, DeleteUnknownJobIsNotFound,
    SetProgressRecordsClampsAndIgnoresStaleLeases,
    ExtendLeasesExtendsOwnJobsAndReportsCancelRequests,
    HeartbeatExtendsOneLeaseRecordsProgressAndReportsCancel,
    ReleaseLeaseRequeuesWithoutSpendingTheAttempt,
    ExternalLeaseRunningIntoTheTimeoutIsRescuedAsATimeout,
    RescueRequeuesExpiredLeaseWhenAttemptsRemain, RescueFailsExpiredLeaseWhenNoAttemptsLeft,
    RescueCancelsExpiredLeaseWhenCancelWasRequested, RescueIgnoresLiveLeasesAndRespectsLimit,
    ReleaseLeasesRequeuesWithoutSpendingTheAttempt, PurgeExpiredDeletesOnlyExpiredTerminalJobs,
    PurgeExpiredRespectsLimit, PurgeExpiredCountsPerQueue,
    OldestReadyIsTheEarliestDueQueuedJobPerQueue, ClaimsRecordTheLatestAttemptsStart,
    APausedQueueIsNotClaimedUntilResumed, NodesAreRecordedRefreshedAndForgotten,
    NodesCountRunningJobsPerLeaseOwner, RetryJobQueuesAFailedOrCanceledJobAgain,
    DeleteFinishedRemovesOnlyAQueuesFinishedJobs, PurgedJobsLeaveATombstoneForAWhile,
    GetManyAnswersEachIdAsGetWould, GetManyOfManyJobs, ListIsNewestFirstWithQueueAndStateFilters,
    ListPaginatesWithTheCursor, CountsStayConsistentThroughEveryTransition,
    CountsKeepQueuesThatHadJobs, PromoteDueJobsReportsQueuesThatGotWork,
    PromoteDueJobsRespectsLimit, PingAnswersOk, WriteTxDestroyedWithoutCommitRollsBack,
    ReadsDoNotSeeUncommittedWrites, ConcurrentReadsWhileWriting, DataSurvivesReopen,
    FireScheduleMakesOneJobPerTick, AnEarlierTickFiresButDoesNotMoveTheLastFire,
    FiringIntoAFullQueueRecordsNoFire, TwoStoreObjectsFiringTheSameTicksMakeOneJobEach,
    ScheduleStateSurvivesReopen, CallbackIsDueOnceTheJobIsTerminalWhateverEndedIt,
    ClaimedCallbacksAreLeasedUntilTheGivenTime, RecordCallbackAttemptKeepsTheDeliveryHistory,
    PendingCallbackSurvivesReopen, GetPayloadReturnsTheInputAsSubmitted,
    ALateCallbackAttemptCannotOverwriteANewerOne, PurgeKeepsJobsWhoseCallbackIsStillPending);

}  // namespace acceptd::store_testing
