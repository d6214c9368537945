// Engine tests against a real SqliteStore in a temporary directory, with
// small handlers written here. Tests wait on the engine's Observer (with a
// deadline), never sleep; most run on a FakeClock that never moves, so only
// what a test triggers happens.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>

#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::IsError;
using store_testing::IsOk;
using store_testing::Must;
using store_testing::TempDir;

class EngineTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& f : before_shutdown_) f();
    engine_.reset();
  }

  std::unique_ptr<JobStore> OpenStore() {
    return std::unique_ptr<JobStore>(Must(SqliteStore::Open(db_path_), "open store"));
  }

  Engine& Start(std::vector<QueueSpec> queues, EngineOptions options = Options(),
                const Clock* clock = nullptr, std::unique_ptr<JobStore> store = nullptr) {
    if (!store) store = OpenStore();
    engine_ = std::make_unique<Engine>(std::move(options), std::move(store), std::move(queues),
                                       clock ? *clock : clock_);
    engine_->AddObserver(recorder_.Observer());
    engine_->Start();
    return *engine_;
  }

  Job SubmitOk(SubmitRequest req) { return Must(SubmitSync(*engine_, std::move(req)), "submit"); }

  // A cancel requested through another process sharing the store, which
  // this engine hears of only through the store.
  void CancelThroughAnotherProcess(const JobId& id) {
    auto other = OpenStore();
    auto tx = Must(other->BeginWrite(), "BeginWrite");
    CancelOutcome out = Must(tx->Cancel(id, clock_.Now()), "Cancel");
    EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
    Must(tx->Commit(), "Commit");
  }

  Job Terminal(const JobId& id) {
    auto job = recorder_.WaitTerminal(id);
    if (!job) throw MustFailed("job " + id.ToHex() + " did not end in time");
    return *job;
  }

  TempDir dir_;
  std::string db_path_ = dir_.path() + "/data/jobs.db";
  FakeClock clock_;
  JobRecorder recorder_;
  std::vector<std::function<void()>> before_shutdown_;  // e.g. open gates
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, EveryObserverSeesEveryChangeInOrder) {
  JobRecorder second;
  auto engine = std::make_unique<Engine>(
      Options(), OpenStore(),
      std::vector<QueueSpec>{
          Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                  return HandlerSuccess{"ok", "text/plain"};
                }))},
      clock_);
  engine->AddObserver(recorder_.Observer());
  engine->AddObserver(second.Observer());
  engine->Start();
  Job job = Must(SubmitSync(*engine, Request("q")), "submit");
  ASSERT_TRUE(second.WaitTerminal(job.id));
  ASSERT_TRUE(recorder_.WaitTerminal(job.id));
  engine.reset();
  auto states = [](const std::vector<Job>& history) {
    std::vector<JobState> out;
    for (const Job& j : history) out.push_back(j.state);
    return out;
  };
  EXPECT_EQ(states(recorder_.History(job.id)), states(second.History(job.id)));
  EXPECT_EQ(states(second.History(job.id)),
            (std::vector<JobState>{JobState::kRunning, JobState::kSucceeded}));
}

TEST_F(EngineTest, SubmittedJobSucceedsWithTheHandlersResult) {
  std::mutex mu;
  std::string seen_payload, seen_type;
  JobId seen_id;
  int seen_attempt = 0;
  Engine& engine = Start({Queue(
      "q", MakeHandler([&](std::string_view payload, std::string_view type, JobContext& ctx) {
        std::lock_guard lock(mu);
        seen_payload = payload;
        seen_type = type;
        seen_id = ctx.job_id();
        seen_attempt = ctx.attempt();
        return HandlerSuccess{"got:" + std::string(payload), "text/plain"};
      }))});
  const std::string payload("a\0b", 3);
  SubmitRequest req = Request("q", payload);
  req.content_type = "application/octet-stream";
  Job submitted = SubmitOk(req);
  EXPECT_EQ(submitted.state, JobState::kQueued);
  EXPECT_EQ(submitted.queue, "q");
  EXPECT_EQ(submitted.created_at, clock_.Now());

  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_TRUE(done.has_result);

  StoredResult r = Must(engine.GetResult(submitted.id), "GetResult");
  EXPECT_EQ(r.state, JobState::kSucceeded);
  EXPECT_EQ(r.body, "got:" + payload);
  EXPECT_EQ(r.content_type, "text/plain");
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen_payload, payload);
    EXPECT_EQ(seen_type, "application/octet-stream");
    EXPECT_EQ(seen_id, submitted.id);
    EXPECT_EQ(seen_attempt, 1);
  }
  // The observer saw it run before it ended.
  auto history = recorder_.History(submitted.id);
  ASSERT_GE(history.size(), 2u);
  EXPECT_EQ(history.front().state, JobState::kRunning);
  EXPECT_EQ(Must(engine.Get(submitted.id), "Get").state, JobState::kSucceeded);
}

TEST_F(EngineTest, RetryableFailureIsRetriedUpToMaxAttemptsThenFails) {
  std::mutex mu;
  std::vector<int> attempts;
  Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                 std::lock_guard lock(mu);
                 attempts.push_back(ctx.attempt());
                 return HandlerFailure{"attempt " + std::to_string(ctx.attempt()) + " failed", true,
                                       "flaky"};
               }))},
        Options(), &SystemClock::Instance());  // backoff of 1-2 ms: real time must pass

  Job submitted = SubmitOk(Request("q"));
  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.attempts, 3);
  ASSERT_TRUE(done.error.has_value());
  EXPECT_EQ(done.error->type, "flaky");
  EXPECT_EQ(done.error->message, "attempt 3 failed");
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3}));
  }
  int retries = 0;
  for (const Job& j : recorder_.History(submitted.id)) {
    if (j.state == JobState::kQueued) {
      ++retries;
      ASSERT_TRUE(j.error.has_value());
      EXPECT_EQ(j.error->type, "flaky");
    }
  }
  EXPECT_EQ(retries, 2);
}

TEST_F(EngineTest, RetriedJobCanSucceedOnALaterAttempt) {
  Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                 if (ctx.attempt() < 2) return HandlerOutcome(HandlerFailure{"not yet", true});
                 return HandlerOutcome(HandlerSuccess{"{\"ok\":true}"});
               }))},
        Options(), &SystemClock::Instance());
  SubmitRequest req = Request("q");
  req.max_attempts = 5;  // overrides the queue's 3
  Job submitted = SubmitOk(req);
  EXPECT_EQ(submitted.max_attempts, 5);
  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.attempts, 2);
}

// The handler's retry_after (a backend's Retry-After) replaces the queue's
// backoff for the next attempt, capped at the queue's backoff.max.
TEST_F(EngineTest, RetryAfterOfAFailureSetsTheNextAttemptInsteadOfTheBackoff) {
  auto failing = [](std::optional<Millis> retry_after) {
    return MakeHandler([retry_after](std::string_view, std::string_view, JobContext&) {
      HandlerFailure f{"busy", true, "http_status"};
      f.retry_after = retry_after;
      return HandlerOutcome(f);
    });
  };
  std::vector<QueueSpec> queues = {Queue("soon", failing(3'000)), Queue("late", failing(600'000)),
                                   Queue("now", failing(0)), Queue("backoff", failing({}))};
  for (QueueSpec& q : queues) q.config.backoff = BackoffPolicy{10'000, 60'000, 0.0};
  Start(queues);
  const UnixMillis now = clock_.Now();  // the FakeClock stands still
  auto next_run = [&](const std::string& queue) -> std::optional<UnixMillis> {
    const JobId id = SubmitOk(Request(queue)).id;
    auto retried = recorder_.WaitFor(
        id, [](const Job& j) { return j.state == JobState::kQueued && j.attempts == 1; });
    if (!retried) return std::nullopt;
    EXPECT_EQ(retried->error.value_or(JobError{}).message, "busy");
    return retried->run_at;
  };
  EXPECT_EQ(next_run("soon"), now + 3'000);
  EXPECT_EQ(next_run("late"), now + 60'000) << "capped at backoff.max";
  EXPECT_EQ(next_run("now"), now);
  EXPECT_EQ(next_run("backoff"), now + 10'000) << "without retry_after: the backoff";
}

TEST_F(EngineTest, NonRetryableFailureFailsAtOnce) {
  std::atomic<int> calls{0};
  Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                 ++calls;
                 return HandlerFailure{"malformed payload", false, "bad_payload"};
               }))});
  Job done = Terminal(SubmitOk(Request("q")).id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.attempts, 1);
  ASSERT_TRUE(done.error.has_value());
  EXPECT_EQ(done.error->type, "bad_payload");
  EXPECT_EQ(done.error->message, "malformed payload");
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(EngineTest, HandlerExceptionIsARetryableFailure) {
  QueueSpec spec = Queue(
      "q", MakeHandler([](std::string_view, std::string_view, JobContext& ctx) -> HandlerOutcome {
        if (ctx.attempt() == 1) throw std::runtime_error("kaboom");
        throw 42;
      }));
  spec.config.backoff = BackoffPolicy{0, 0, 0.0};  // due at once on the FakeClock
  Start({spec});
  SubmitRequest req = Request("q");
  req.max_attempts = 2;
  Job submitted = SubmitOk(req);
  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.attempts, 2);
  ASSERT_TRUE(done.error.has_value());
  EXPECT_EQ(done.error->type, "handler_exception");

  auto retried = recorder_.WaitForState(submitted.id, JobState::kQueued);
  ASSERT_TRUE(retried.has_value()) << "the first exception should have been retried";
  ASSERT_TRUE(retried->error.has_value());
  EXPECT_EQ(retried->error->type, "handler_exception");
  // The exception's text is logged, never shown: it may hold internals.
  EXPECT_EQ(retried->error->message.find("kaboom"), std::string::npos) << retried->error->message;
  EXPECT_EQ(retried->error->message, "the handler threw an exception");
}

TEST_F(EngineTest, TimedOutAttemptFailsWithTimeoutError) {
  Event returned;
  std::atomic<bool> saw_cancel{false};
  Engine& engine =
      Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                     // Waits far longer than the timeout; the engine cancels it.
                     bool finished = ctx.WaitFor(std::chrono::seconds(10));
                     saw_cancel = !finished && ctx.cancelled();
                     returned.Notify();
                     // A result that comes after the timeout must not count.
                     return HandlerSuccess{"\"too late\""};
                   }))});
  SubmitRequest req = Request("q");
  req.timeout = 50;
  req.max_attempts = 1;
  Job submitted = SubmitOk(req);
  EXPECT_EQ(submitted.timeout, 50);

  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kFailed);
  ASSERT_TRUE(done.error.has_value());
  EXPECT_EQ(done.error->type, "timeout");
  ASSERT_TRUE(returned.Wait());
  EXPECT_TRUE(saw_cancel.load()) << "the handler's WaitFor should end early on timeout";

  // Canceling a terminal job is a conflict; the job stays failed, without a result.
  EXPECT_TRUE(IsError(CancelSync(engine, submitted.id), ErrorCode::kConflict));
  Job got = Must(engine.Get(submitted.id), "Get");
  EXPECT_EQ(got.state, JobState::kFailed);
  EXPECT_FALSE(got.has_result);
}

TEST_F(EngineTest, CancelRunningJobStopsTheHandler) {
  Event started;
  std::atomic<bool> saw_cancel{false};
  Engine& engine =
      Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                     started.Notify();
                     if (ctx.WaitFor(std::chrono::seconds(10)))
                       return HandlerOutcome(HandlerSuccess{});
                     saw_cancel = ctx.cancelled();
                     return HandlerOutcome(HandlerFailure{"stopped", true});
                   }))});
  Job submitted = SubmitOk(Request("q"));
  ASSERT_TRUE(started.Wait());

  CancelOutcome out = Must(CancelSync(engine, submitted.id), "Cancel");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kCanceled);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_TRUE(saw_cancel.load());
}

TEST_F(EngineTest, CancelQueuedJobCancelsItBeforeItRuns) {
  std::atomic<int> calls{0};
  Engine& engine =
      Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                     ++calls;
                     return HandlerSuccess{};
                   }))});
  SubmitRequest req = Request("q");
  req.delay = 3'600'000;  // the FakeClock never gets there
  Job submitted = SubmitOk(req);
  EXPECT_EQ(submitted.run_at, clock_.Now() + 3'600'000);

  CancelOutcome out = Must(CancelSync(engine, submitted.id), "Cancel");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kCanceled);
  EXPECT_EQ(out.job.state, JobState::kCanceled);
  EXPECT_EQ(Terminal(submitted.id).state, JobState::kCanceled);
  EXPECT_EQ(Must(engine.Get(submitted.id), "Get").state, JobState::kCanceled);

  EXPECT_TRUE(IsError(CancelSync(engine, submitted.id), ErrorCode::kConflict));
  EXPECT_TRUE(IsError(CancelSync(engine, JobId::Random()), ErrorCode::kNotFound));
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(EngineTest, CanceledJobWaitingForASlotNeverRuns) {
  auto gate = std::make_shared<Event>();
  before_shutdown_.push_back([gate] { gate->Notify(); });
  Event first_started;
  std::mutex mu;
  std::vector<std::string> ran;
  Engine& engine = Start(
      {Queue("q", MakeHandler([&, gate](std::string_view payload, std::string_view, JobContext&) {
               {
                 std::lock_guard lock(mu);
                 ran.emplace_back(payload);
               }
               if (payload == "first") {
                 first_started.Notify();
                 gate->Wait();
               }
               return HandlerSuccess{};
             }),
             /*concurrency=*/1)});
  Job first = SubmitOk(Request("q", "first"));
  ASSERT_TRUE(first_started.Wait());
  Job second = SubmitOk(Request("q", "second"));  // no free slot: stays queued
  EXPECT_EQ(Must(engine.Get(second.id), "Get").state, JobState::kQueued);

  EXPECT_EQ(Must(CancelSync(engine, second.id), "Cancel").kind, CancelOutcome::Kind::kCanceled);
  Job third = SubmitOk(Request("q", "third"));
  gate->Notify();

  EXPECT_EQ(Terminal(first.id).state, JobState::kSucceeded);
  EXPECT_EQ(Terminal(third.id).state, JobState::kSucceeded);
  EXPECT_EQ(Must(engine.Get(second.id), "Get").state, JobState::kCanceled);
  std::lock_guard lock(mu);
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "third"}));
}

TEST_F(EngineTest, DeleteRunningJobRemovesItOnceTheHandlerStops) {
  Event started;
  Engine& engine =
      Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                     started.Notify();
                     ctx.WaitFor(std::chrono::seconds(10));
                     return HandlerFailure{"stopped", true};
                   }))});
  Job submitted = SubmitOk(Request("q"));
  ASSERT_TRUE(started.Wait());
  CancelOutcome out = Must(DeleteSync(engine, submitted.id), "Delete");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
  EXPECT_EQ(Terminal(submitted.id).state, JobState::kCanceled);
  EXPECT_TRUE(IsError(engine.Get(submitted.id), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(DeleteSync(engine, submitted.id), ErrorCode::kNotFound));
}

TEST_F(EngineTest, ConcurrencyLimitIsNeverExceeded) {
  constexpr int kLimit = 2;
  constexpr int kJobs = 8;
  std::mutex mu;
  std::condition_variable cv;
  int current = 0, max_seen = 0, entered = 0;
  Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                 std::unique_lock lock(mu);
                 ++current;
                 max_seen = std::max(max_seen, current);
                 // The first kLimit jobs wait for each other, so the limit is
                 // certainly reached; the rest run straight through.
                 if (++entered <= kLimit) {
                   cv.notify_all();
                   cv.wait_for(lock, kWait, [&] { return entered >= kLimit; });
                 }
                 --current;
                 return HandlerSuccess{};
               }),
               kLimit),
         Queue("other", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                 return HandlerSuccess{};
               }))});
  std::vector<JobId> ids;
  for (int i = 0; i < kJobs; ++i) ids.push_back(SubmitOk(Request("q")).id);
  for (const JobId& id : ids) EXPECT_EQ(Terminal(id).state, JobState::kSucceeded);
  std::lock_guard lock(mu);
  EXPECT_EQ(max_seen, kLimit);
  EXPECT_EQ(entered, kJobs);
}

TEST_F(EngineTest, SubmitBeyondMaxDepthIsQueueFull) {
  QueueSpec spec = Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                           return HandlerSuccess{};
                         }));
  spec.config.max_depth = 2;
  Engine& engine = Start({spec});
  SubmitRequest delayed = Request("q");
  delayed.delay = 3'600'000;  // stays queued: the FakeClock never gets there
  SubmitOk(delayed);
  SubmitOk(delayed);
  EXPECT_TRUE(IsError(SubmitSync(engine, delayed), ErrorCode::kQueueFull));
  EXPECT_TRUE(IsError(SubmitSync(engine, Request("q")), ErrorCode::kQueueFull));
  EXPECT_TRUE(IsError(SubmitSync(engine, Request("no-such-queue")), ErrorCode::kNotFound));

  auto queues = Must(engine.Queues(), "Queues");
  ASSERT_EQ(queues.size(), 1u);
  EXPECT_EQ(queues[0].config.name, "q");
  EXPECT_EQ(queues[0].counts[static_cast<int>(JobState::kQueued)], 2);
}

TEST_F(EngineTest, ProgressReportedByTheHandlerIsStored) {
  Engine& engine =
      Start({Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext& ctx) {
                     ctx.ReportProgress(10, "ten");
                     ctx.ReportProgress(140, "clamped");
                     return HandlerSuccess{};
                   }))});
  Job submitted = SubmitOk(Request("q"));
  EXPECT_EQ(Terminal(submitted.id).state, JobState::kSucceeded);
  // Progress writes are queued before the outcome, so they are stored by now.
  Job got = Must(engine.Get(submitted.id), "Get");
  ASSERT_TRUE(got.progress.has_value());
  EXPECT_EQ(got.progress->percent, 100);
  EXPECT_EQ(got.progress->message, "clamped");
}

TEST_F(EngineTest, DelayedSubmitRunsAfterItsDelay) {
  Start({Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                 return HandlerSuccess{};
               }))},
        Options(), &SystemClock::Instance());
  SubmitRequest req = Request("q");
  req.delay = 30;
  Job submitted = SubmitOk(req);
  EXPECT_EQ(submitted.run_at, submitted.created_at + 30);
  Job done = Terminal(submitted.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  Job got = Must(engine_->Get(submitted.id), "Get");
  ASSERT_TRUE(got.started_at.has_value());
  EXPECT_GE(*got.started_at, submitted.created_at + 30);
}

TEST_F(EngineTest, SubmitIsRefusedWhileShuttingDown) {
  Engine& engine = Start({Queue("q", MakeHandler([](std::string_view, std::string_view,
                                                    JobContext&) { return HandlerSuccess{}; }))});
  EXPECT_TRUE(engine.accepting());
  engine.BeginShutdown();
  EXPECT_FALSE(engine.accepting());
  EXPECT_TRUE(IsError(SubmitSync(engine, Request("q")), ErrorCode::kUnavailable));
}

TEST_F(EngineTest, ShutdownReleasesTheLeaseOfAHandlerThatOutlivesTheGracePeriod) {
  Event started, returned;
  EngineOptions options = Options();
  options.shutdown_grace = 50;
  // The grace period is measured on the engine's clock: use the real one.
  Engine& engine =
      Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                     started.Notify();
                     ctx.WaitFor(std::chrono::seconds(30));  // far beyond the grace period
                     returned.Notify();
                     // Returned only after shutdown canceled it: must not count.
                     return HandlerSuccess{"\"too late\""};
                   }))},
            options, &SystemClock::Instance());
  Job submitted = SubmitOk(Request("q"));
  ASSERT_TRUE(started.Wait());
  Job running = Must(engine.Get(submitted.id), "Get");
  EXPECT_EQ(running.state, JobState::kRunning);
  EXPECT_EQ(running.attempts, 1);

  engine.Shutdown();
  EXPECT_TRUE(returned.IsSet());
  engine_.reset();

  auto store = OpenStore();
  Job after = Must(store->Get(submitted.id), "Get after reopen");
  EXPECT_EQ(after.state, JobState::kQueued);
  EXPECT_EQ(after.attempts, 0) << "a released attempt is not spent";
  EXPECT_FALSE(after.has_result);
  EXPECT_TRUE(after.lease_owner.empty());
}

TEST_F(EngineTest, LeaseRescuerRequeuesAndRunsTheJobOfADeadNode) {
  // A job leased by a node that died: its lease ran out 30 s ago.
  const UnixMillis now = clock_.Now();
  auto store = OpenStore();
  NewJob n;
  n.id = JobId::Random();
  n.queue = "q";
  n.payload = "{}";
  n.content_type = "application/json";
  n.max_attempts = 3;
  n.timeout = 10'000;
  n.retention = 3'600'000;
  n.now = n.run_at = now - 60'000;
  n.max_depth = 100;
  {
    auto tx = Must(store->BeginWrite(), "BeginWrite");
    Must(tx->Insert(n), "Insert");
    auto claimed =
        Must(tx->Claim(ClaimParams{"q", 1, "dead-node", now - 60'000, now - 30'000}), "Claim");
    ASSERT_EQ(claimed.size(), 1u);
    Must(tx->Commit(), "Commit");
  }
  ASSERT_EQ(Must(store->Get(n.id), "Get").lease_owner, "dead-node");

  std::atomic<int> seen_attempt{0};
  Start({Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                 seen_attempt = ctx.attempt();
                 return HandlerSuccess{"\"rescued\""};
               }))},
        Options(), &clock_, std::move(store));

  Job done = Terminal(n.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.attempts, 2);
  EXPECT_EQ(seen_attempt.load(), 2);
  // The rescuer reported the requeue (see ObserverSeesTheChangesOfABatchInCommitOrder
  // for the order of the notifications).
  auto rescued = recorder_.WaitForState(n.id, JobState::kQueued);
  ASSERT_TRUE(rescued.has_value());
  ASSERT_TRUE(rescued->error.has_value());
  EXPECT_EQ(rescued->error->type, "lease_expired");
  EXPECT_EQ(rescued->attempts, 1);
  Job got = Must(engine_->Get(n.id), "Get");
  EXPECT_EQ(got.lease_owner, "");
  EXPECT_EQ(Must(engine_->GetResult(n.id), "GetResult").body, "\"rescued\"");
}

// A retry that is due at once is claimed again in the batch that records it.
// The Observer ("every committed change of a job's state") must still see the
// changes in the order they were made: running(1), queued, running(2), ...
TEST_F(EngineTest, ObserverSeesTheChangesOfABatchInCommitOrder) {
  QueueSpec spec = Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext& ctx) {
                           if (ctx.attempt() == 1) return HandlerOutcome(HandlerFailure{"again"});
                           return HandlerOutcome(HandlerSuccess{});
                         }));
  spec.config.backoff = BackoffPolicy{0, 0, 0.0};  // the retry is due at once
  Start({spec});
  Job submitted = SubmitOk(Request("q"));
  EXPECT_EQ(Terminal(submitted.id).state, JobState::kSucceeded);

  std::vector<std::string> seen;
  for (const Job& j : recorder_.History(submitted.id)) {
    seen.push_back(std::string(ToString(j.state)) + "/" + std::to_string(j.attempts));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"running/1", "queued/1", "running/2", "succeeded/2"}));
}

// A handler that ignores cancellation outlives its timed-out attempt; the
// retry of the job runs meanwhile on the same node. When the old handler
// finally returns, the engine must not lose track of the new attempt: a
// cancel of the job must still reach the new attempt's handler.
TEST_F(EngineTest, LateReturnOfATimedOutAttemptDoesNotHideTheRetry) {
  auto gate = std::make_shared<Event>();
  before_shutdown_.push_back([gate] { gate->Notify(); });
  Event second_started;
  std::atomic<bool> second_saw_cancel{false};
  QueueSpec spec = Queue(
      "q", MakeHandler([&, gate](std::string_view payload, std::string_view, JobContext& ctx) {
        if (payload == "other") return HandlerOutcome(HandlerSuccess{});
        if (ctx.attempt() == 1) {
          gate->Wait();  // ignores its timeout
          return HandlerOutcome(HandlerFailure{"late", true});
        }
        second_started.Notify();
        if (ctx.WaitFor(std::chrono::seconds(10))) return HandlerOutcome(HandlerSuccess{});
        second_saw_cancel = true;
        return HandlerOutcome(HandlerFailure{"stopped", true});
      }),
      /*concurrency=*/2);
  spec.config.max_attempts = 2;
  spec.config.backoff = BackoffPolicy{0, 0, 0.0};
  Engine& engine = Start({spec}, Options(), &SystemClock::Instance());

  SubmitRequest req = Request("q", "main");
  req.timeout = 800;
  Job job = SubmitOk(req);
  ASSERT_TRUE(second_started.Wait()) << "attempt 2 should start after attempt 1 timed out";

  // Both slots are busy (attempt 1 still holds one), so this job waits ...
  Job other = SubmitOk(Request("q", "other"));
  // ... until attempt 1's handler finally returns and frees its slot.
  gate->Notify();
  ASSERT_TRUE(recorder_.WaitForState(other.id, JobState::kSucceeded).has_value());

  CancelOutcome out = Must(CancelSync(engine, job.id), "Cancel");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
  Job done = Terminal(job.id);
  EXPECT_EQ(done.state, JobState::kCanceled)
      << "the cancel never reached attempt 2; it ended as " << ToString(done.state)
      << (done.error ? " (" + done.error->type + ")" : "");
  EXPECT_TRUE(second_saw_cancel.load());
}

// Regression (cancel lost on retry): a cancel that reached the store through
// another process while the attempt ran, and that this node has not heard of
// yet, must still win when the attempt then fails retryably.
TEST_F(EngineTest, CancelLostOnRetryCancelThroughAnotherProcessWinsOverARetryableFailure) {
  auto gate = std::make_shared<Event>();
  before_shutdown_.push_back([gate] { gate->Notify(); });
  Event started;
  std::atomic<int> runs{0};
  Start({Queue("q", MakeHandler([&, gate](std::string_view, std::string_view, JobContext&) {
                 ++runs;
                 started.Notify();
                 gate->Wait();
                 return HandlerOutcome(HandlerFailure{"flaky", true});
               }))});
  Job job = SubmitOk(Request("q"));
  ASSERT_TRUE(started.Wait());
  CancelThroughAnotherProcess(job.id);
  gate->Notify();
  Job done = Terminal(job.id);
  EXPECT_EQ(done.state, JobState::kCanceled);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(Must(engine_->Get(job.id), "Get").state, JobState::kCanceled);
}

TEST_F(EngineTest, CancelLostOnRetryCancelThroughAnotherProcessWinsOverATimeout) {
  auto gate = std::make_shared<Event>();
  before_shutdown_.push_back([gate] { gate->Notify(); });
  Event started;
  std::atomic<int> runs{0};
  Start({Queue("q", MakeHandler([&, gate](std::string_view, std::string_view, JobContext&) {
                 ++runs;
                 started.Notify();
                 gate->Wait();  // ignores the timeout
                 return HandlerOutcome(HandlerSuccess{});
               }))});
  SubmitRequest req = Request("q");
  req.timeout = 1'500;  // ample time for the cancel to land first, also under ASan
  Job job = SubmitOk(req);
  ASSERT_TRUE(started.Wait());
  CancelThroughAnotherProcess(job.id);  // before the attempt's timeout
  Job done = Terminal(job.id);
  EXPECT_EQ(done.state, JobState::kCanceled) << "timed out, then " << ToString(done.state);
  gate->Notify();
  EXPECT_EQ(runs.load(), 1);
}

// Regression (expires_at not kept): from the instant the document says the
// job expires, reads answer kGone, before the purger has run.
TEST_F(EngineTest, ExpiresAtNotKeptReadsAreGoneFromExpiresAt) {
  QueueSpec spec = Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                           return HandlerSuccess{"\"r\""};
                         }));
  spec.config.retention = 1'000;
  Engine& engine = Start({spec});
  Job job = Terminal(SubmitOk(Request("q")).id);
  ASSERT_TRUE(job.expires_at.has_value());
  EXPECT_TRUE(IsOk(engine.Get(job.id)));
  EXPECT_TRUE(IsOk(engine.GetResult(job.id)));
  clock_.Set(*job.expires_at - 1);
  EXPECT_TRUE(IsOk(engine.Get(job.id)));
  clock_.Set(*job.expires_at);
  EXPECT_TRUE(IsError(engine.Get(job.id), ErrorCode::kGone));
  EXPECT_TRUE(IsError(engine.GetResult(job.id), ErrorCode::kGone));
  EXPECT_TRUE(IsError(engine.GetPayload(job.id), ErrorCode::kGone));
  ListParams all;
  EXPECT_TRUE(Must(engine.List(all), "List").jobs.empty()) << "expired jobs are not listed";
}

// Regression (submit Retry-After ignores the queue position): the 202 of a
// submit carries the estimate its first poll would give.
TEST_F(EngineTest, SubmitRetryAfterIgnoresQueuePositionEstimateCountsTheJobsAhead) {
  auto gate = std::make_shared<Event>();
  before_shutdown_.push_back([gate] { gate->Notify(); });
  Event started;
  EngineOptions options = Options();
  options.retry_after = 100;
  options.retry_after_max = 600'000;
  Engine& engine = Start(
      {Queue("q",
             MakeHandler([&, gate](std::string_view payload, std::string_view, JobContext& ctx) {
               if (payload == "warm") {
                 ctx.WaitFor(std::chrono::milliseconds(200));  // gives the queue a run time
               } else if (payload == "block") {
                 started.Notify();
                 gate->Wait();
               }
               return HandlerOutcome(HandlerSuccess{});
             }),
             /*concurrency=*/1)},
      options);
  Terminal(SubmitOk(Request("q", "warm")).id);
  SubmitOk(Request("q", "block"));  // runs, and holds the only slot
  ASSERT_TRUE(started.Wait());
  std::vector<Millis> at_submit;
  std::vector<Job> jobs;
  for (int i = 0; i < 6; ++i) {
    Job j = SubmitOk(Request("q"));
    at_submit.push_back(engine.RetryAfter(j));
    jobs.push_back(j);
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job polled = Must(engine.Get(jobs[i].id), "Get");
    EXPECT_EQ(polled.state, JobState::kQueued);
    // The last submit's estimate is the one its first poll gives.
    if (i + 1 == jobs.size()) {
      EXPECT_EQ(at_submit[i], engine.RetryAfter(polled));
    }
  }
  EXPECT_GT(at_submit.back(), at_submit.front()) << "later submits wait behind earlier ones";
}
}  // namespace
}  // namespace acceptd::engine_testing
