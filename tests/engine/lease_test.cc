// Engine::Lease and the calls fenced by its token (docs/workers.md), against
// a real SqliteStore, with store faults injected into each of them: a failed
// write answers an error and changes nothing, and the next call works.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/faulty_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::FaultyStore;
using store_testing::IsError;
using store_testing::IsOk;
using store_testing::Must;
using store_testing::TempDir;
using Op = FaultyStore::Op;

class EngineLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto faulty = std::make_unique<FaultyStore>(
        std::shared_ptr<JobStore>(Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open")));
    faulty_ = faulty.get();
    QueueSpec external = Queue("ext", nullptr);
    external.config.handler = "external";
    engine_ = std::make_unique<Engine>(Options(), std::move(faulty),
                                       std::vector<QueueSpec>{external}, SystemClock::Instance());
    engine_->AddObserver(recorder_.Observer());
    engine_->Start();
  }

  Result<std::optional<Job>> Lease(Millis wait = 0, Millis lease = 30'000) {
    return Await<std::optional<Job>>([&](auto done) {
      engine_->Lease(LeaseRequest{"ext", wait, lease, "worker:test"}, done);
    });
  }
  Job LeaseOk() {
    auto r = Must(Lease(5'000), "Lease");
    if (!r) throw store_testing::MustFailed("no job leased");
    return *r;
  }
  static LeaseRef Ref(const Job& j) { return LeaseRef{j.id, j.lease_token}; }
  Result<HeartbeatResult> Heartbeat(const Job& j, std::optional<Progress> p = {}) {
    return Await<HeartbeatResult>(
        [&](auto done) { engine_->Heartbeat(Ref(j), 30'000, std::move(p), done); });
  }
  Result<Job> Complete(const Job& j, std::string body) {
    return Await<Job>(
        [&](auto done) { engine_->CompleteLease(Ref(j), std::move(body), "text/plain", done); });
  }
  Result<Job> Fail(const Job& j, bool retryable) {
    return Await<Job>([&](auto done) {
      engine_->FailLease(
          Ref(j), WorkerFailure{JobError{"worker_error", "boom"}, retryable, std::nullopt}, done);
    });
  }
  Result<Job> Release(const Job& j) {
    return Await<Job>([&](auto done) { engine_->ReleaseLease(Ref(j), done); });
  }
  Job Get(const JobId& id) { return Must(engine_->Get(id), "Get"); }

  TempDir dir_;
  FaultyStore* faulty_ = nullptr;
  JobRecorder recorder_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineLeaseTest, AnUnknownQueueIsNotFound) {
  EXPECT_TRUE(IsError(Await<std::optional<Job>>([&](auto done) {
                        engine_->Lease(LeaseRequest{"nope", 0, 1'000, "w"}, done);
                      }),
                      ErrorCode::kNotFound));
}

TEST_F(EngineLeaseTest, AWaitingLeaseGetsTheNextSubmitWithItsPayload) {
  auto waiting = std::async(std::launch::async, [&] { return Lease(10'000); });
  const Job submitted = Must(SubmitSync(*engine_, Request("ext", "payload bytes")), "Submit");
  auto got = Must(waiting.get(), "Lease");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, submitted.id);
  EXPECT_EQ(got->payload, "payload bytes");
  EXPECT_EQ(got->state, JobState::kRunning);
  EXPECT_EQ(got->lease_owner, "worker:test");
  EXPECT_TRUE(recorder_.WaitForState(submitted.id, JobState::kRunning).has_value())
      << "the lease is reported like any claim";
}

TEST_F(EngineLeaseTest, NothingDueWithinTheWaitIsNone) {
  auto r = Must(Lease(0), "Lease");
  EXPECT_FALSE(r.has_value());
  r = Must(Lease(50), "Lease");
  EXPECT_FALSE(r.has_value());
}

TEST_F(EngineLeaseTest, FailRetryableRequeuesAndFailNonRetryableEndsTheJob) {
  const Job submitted = Must(SubmitSync(*engine_, Request("ext")), "Submit");
  Job first = LeaseOk();
  EXPECT_EQ(Must(Fail(first, true), "Fail").state, JobState::kQueued);
  Job second = LeaseOk();
  EXPECT_EQ(second.attempts, 2);
  EXPECT_TRUE(IsError(Complete(first, "late"), ErrorCode::kStaleLease));
  EXPECT_TRUE(IsError(Fail(first, false), ErrorCode::kStaleLease));
  Job failed = Must(Fail(second, false), "Fail");
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error->message, "boom");
  EXPECT_EQ(Get(submitted.id).state, JobState::kFailed);
}

TEST_F(EngineLeaseTest, EachFencedCallThatFailsInTheStoreChangesNothingAndCanBeRetried) {
  const Job submitted = Must(SubmitSync(*engine_, Request("ext")), "Submit");
  Job j = LeaseOk();
  for (ErrorCode code : {ErrorCode::kUnavailable, ErrorCode::kInternal}) {
    faulty_->FailNext(Op::kHeartbeat, code);
    EXPECT_FALSE(Heartbeat(j, Progress{10, "x"}).ok());
    EXPECT_FALSE(Get(j.id).progress.has_value());
    faulty_->FailNext(Op::kReleaseLease, code);
    EXPECT_FALSE(Release(j).ok());
    EXPECT_EQ(Get(j.id).state, JobState::kRunning);
    faulty_->FailNext(Op::kFinish, code);
    EXPECT_FALSE(Complete(j, "x").ok());
    EXPECT_EQ(Get(j.id).state, JobState::kRunning);
  }
  EXPECT_GE(faulty_->injected(), 6);
  faulty_->Heal();
  EXPECT_TRUE(IsOk(Heartbeat(j, Progress{50, "half"})));
  EXPECT_EQ(Get(j.id).progress->percent, 50);
  EXPECT_EQ(Must(Release(j), "Release").state, JobState::kQueued);
  Job again = LeaseOk();
  EXPECT_EQ(again.attempts, 1) << "the release did not spend the attempt";
  EXPECT_EQ(Must(Complete(again, "done"), "Complete").state, JobState::kSucceeded);
  EXPECT_EQ(Must(engine_->GetResult(submitted.id), "GetResult").body, "done");
}

TEST_F(EngineLeaseTest, AFailedClaimLeavesTheWaiterWaitingForTheNextChance) {
  faulty_->FailNext(Op::kClaim, ErrorCode::kUnavailable);
  auto waiting = std::async(std::launch::async, [&] { return Lease(10'000); });
  // The submit's batch carries the failing claim: both fail together or the
  // submit is retried by the client; either way the waiter gets the job.
  std::optional<JobId> id;
  for (int i = 0; i < 3 && !id; ++i) {
    if (auto r = SubmitSync(*engine_, Request("ext"))) id = r->id;
  }
  ASSERT_TRUE(id.has_value());
  auto got = Must(waiting.get(), "Lease");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, *id);
}

TEST_F(EngineLeaseTest, ShutdownAnswersWaitingLeasesAndKeepsHeldOnes) {
  Must(SubmitSync(*engine_, Request("ext")), "Submit");
  Job held = LeaseOk();
  auto waiting = std::async(std::launch::async, [&] { return Lease(10'000); });
  // Let the request reach the engine before it shuts down.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (faulty_->calls(Op::kClaim) < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  engine_->Shutdown();
  EXPECT_TRUE(IsError(waiting.get(), ErrorCode::kUnavailable));
  EXPECT_EQ(Get(held.id).state, JobState::kRunning) << "a worker's lease is not released";
  EXPECT_EQ(Get(held.id).lease_token, held.lease_token);
}

}  // namespace
}  // namespace acceptd::engine_testing
