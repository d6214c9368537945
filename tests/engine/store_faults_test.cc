// The engine against a store that fails: every write operation (each
// WriteTx method, BeginWrite and Commit) and each fatal error kind, through
// FaultyStore over a real SqliteStore. One workload uses every operation
// (submits, delayed jobs, cancel, delete, progress, lease renewal and rescue,
// promotion, purge, callbacks, the lease release at shutdown, a restart) while
// the chosen operation fails twice; then the fault stops. Nothing may crash,
// a submit that was answered ok must be in the store (a failed commit never
// yields a 202), a refused submit must not be, an outcome that could not be
// written is retried after its lease, and in the end every job is done and
// every callback delivered.
//
// Time is a FakeClock that the test moves in steps; between steps it waits on
// the engine's observer (with a deadline), never a plain sleep.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>
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

constexpr Millis kLease = 3'000;
constexpr Millis kStep = 500;
constexpr int kImmediateJobs = 6;
constexpr int kClientTries = 6;  // a client retries a 503 / 500 this often

// Answers every callback with 200 and counts the sends per job.
class CountingSender final : public CallbackSender {
 public:
  void Send(const Job& job, std::function<void(CallbackResponse)> done) override {
    {
      std::lock_guard lock(mu_);
      ++sends_[job.id];
    }
    done(CallbackResponse{200, ""});
  }
  int sends(const JobId& id) {
    std::lock_guard lock(mu_);
    return sends_[id];
  }

 private:
  std::mutex mu_;
  std::unordered_map<JobId, int, JobIdHash> sends_;
};

// Counts the observer's calls, so that a test can wait for "something happened".
class ChangeSignal {
 public:
  Engine::Observer Observer() {
    return [this](const Job&) {
      {
        std::lock_guard lock(mu_);
        ++changes_;
      }
      cv_.notify_all();
    };
  }
  void WaitForChange(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const int64_t seen = changes_;
    cv_.wait_for(lock, timeout, [&] { return changes_ != seen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t changes_ = 0;
};

struct FaultCase {
  Op op;
  ErrorCode code;
  bool after = false;  // the call reaches the store, then fails (Commit: durable but refused)
};

std::string CaseName(const ::testing::TestParamInfo<FaultCase>& info) {
  return std::string(FaultyStore::Name(info.param.op)) +
         (info.param.code == ErrorCode::kInternal ? "Internal" : "Unavailable") +
         (info.param.after ? "AfterApplying" : "");
}

std::vector<FaultCase> AllWriteFaults() {
  std::vector<FaultCase> cases;
  for (Op op : FaultyStore::WriteOps()) {
    // Only external workers call these: tests/engine/lease_test.cc.
    if (op == Op::kHeartbeat || op == Op::kReleaseLease) continue;
    // Only an operator pauses a queue, retries a job or purges a queue:
    // tests/integration/pause_test.cc and retry_job_test.cc.
    if (op == Op::kSetQueuePaused || op == Op::kRetryJob || op == Op::kDeleteFinished) continue;
    // The node heartbeat runs every node_heartbeat_interval (10 s): its
    // faults are logged and retried at the next beat (tests/engine/node_heartbeat_test.cc).
    if (op == Op::kTouchNode) continue;
    // Only schedules fire ticks: tests/engine/schedule_engine_test.cc.
    if (op == Op::kFireSchedule) continue;
    for (ErrorCode code : {ErrorCode::kUnavailable, ErrorCode::kInternal}) {
      cases.push_back({op, code, false});
    }
  }
  // Committed, yet reported as failed: the client sees an error, and the job
  // may exist (at-least-once); it must not be lost or break anything.
  cases.push_back({Op::kCommit, ErrorCode::kUnavailable, true});
  return cases;
}

class EngineStoreFaultTest : public ::testing::TestWithParam<FaultCase> {
 protected:
  void TearDown() override {
    gate_.Notify();
    gate2_.Notify();
    engine_.reset();
  }

  void StartEngine(std::shared_ptr<JobStore> inner) {
    auto faulty = std::make_unique<FaultyStore>(std::move(inner));
    faulty_ = faulty.get();
    EngineOptions options = Options();
    options.lease_duration = kLease;
    options.shutdown_grace = 100;
    options.purge_interval = 2'000;
    options.callbacks.timeout = 500;
    options.callbacks.poll_interval = kStep;
    options.callbacks.backoff = BackoffPolicy{kStep, kStep, 0};
    QueueSpec q =
        Queue("q", MakeHandler([this](std::string_view payload, std::string_view, JobContext& ctx) {
                ctx.ReportProgress(50, "half way");
                if (payload == "block" || payload == "block2") {
                  Event& gate = payload == "block" ? gate_ : gate2_;
                  while (!gate.IsSet()) {
                    if (!ctx.WaitFor(std::chrono::milliseconds(5))) {
                      return HandlerOutcome(HandlerFailure{"stopped", true});
                    }
                  }
                }
                return HandlerOutcome(HandlerSuccess{"{}", "application/json"});
              }),
              4);
    q.config.retention = 86'400'000;  // nothing is purged: the purge still runs
    engine_ =
        std::make_unique<Engine>(options, std::move(faulty), std::vector<QueueSpec>{q}, clock_);
    auto sender = std::make_unique<CountingSender>();
    sender_ = sender.get();
    engine_->SetCallbackSender(std::move(sender));
    engine_->AddObserver(changes_.Observer());
    engine_->Start();
  }

  // Submits as a client would: a refused submit is tried again (with a new
  // id), up to kClientTries times. Returns the accepted job's id, if any.
  std::optional<JobId> Submit(std::string payload, Millis delay = 0, bool callback = false) {
    for (int i = 0; i < kClientTries; ++i) {
      SubmitRequest req = Request("q", payload);
      req.id = JobId::Random();
      req.max_attempts = 20;
      if (delay) req.delay = delay;
      if (callback) req.callback_url = "http://hooks.example/done";
      auto r = SubmitSync(*engine_, req);
      if (r) return r->id;
      EXPECT_TRUE(r.error().code == ErrorCode::kUnavailable ||
                  r.error().code == ErrorCode::kInternal)
          << store_testing::Describe(r.error());
      refused_.push_back(*req.id);
    }
    return std::nullopt;
  }

  template <typename F>
  auto Retry(F call) {
    auto r = call();
    for (int i = 1; i < kClientTries && !r; ++i) r = call();
    return r;
  }

  // Moves time on in steps until `done` holds (false after the deadline).
  bool DriveUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      clock_.Advance(kStep);
      changes_.WaitForChange(std::chrono::milliseconds(20));
    }
    return done();
  }

  std::optional<Job> Stored(const JobId& id) {
    auto j = inner_->Get(id);
    if (!j) return std::nullopt;
    return *j;
  }
  bool InState(const JobId& id, JobState state) {
    auto j = Stored(id);
    return j && j->state == state;
  }
  bool Delivered(const JobId& id) {
    auto j = Stored(id);
    return j && j->callback && j->callback->delivered_at.has_value();
  }

  TempDir dir_;
  std::shared_ptr<JobStore> inner_ =
      Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open store");
  FakeClock clock_;
  Event gate_, gate2_;  // open the handlers of "block" and "block2" jobs
  ChangeSignal changes_;
  FaultyStore* faulty_ = nullptr;  // owned by engine_
  CountingSender* sender_ = nullptr;
  std::vector<JobId> refused_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(EngineStoreFaultTest, NothingIsLostAndTheEngineRecoversWhenTheFaultStops) {
  const FaultCase fc = GetParam();
  StartEngine(inner_);
  faulty_->FailNext(fc.op, fc.code, /*count=*/2, fc.after);

  // Submits, each with a completion callback.
  std::vector<JobId> immediate;
  for (int i = 0; i < kImmediateJobs; ++i) {
    auto id = Submit("{}", 0, /*callback=*/true);
    ASSERT_TRUE(id) << "every submit refused";
    immediate.push_back(*id);
  }
  // Delayed jobs: one is canceled, one deleted while queued, one promoted and run.
  auto to_cancel = Submit("{}", 5'000), to_delete = Submit("{}", 5'000),
       delayed = Submit("{}", 5'000);
  ASSERT_TRUE(to_cancel && to_delete && delayed);
  ASSERT_TRUE(IsOk(Retry([&] { return CancelSync(*engine_, *to_cancel); })));
  ASSERT_TRUE(IsOk(Retry([&] { return DeleteSync(*engine_, *to_delete); })));
  // A job that runs (its lease renewed) until the gate opens.
  auto blocked = Submit("block");
  ASSERT_TRUE(blocked);

  // Time passes: leases are renewed (or expire and are rescued), the delayed
  // job is promoted, the purge runs, outcomes and callbacks are written.
  ASSERT_TRUE(DriveUntil([&] {
    for (const JobId& id : immediate) {
      if (!InState(id, JobState::kSucceeded) || !Delivered(id)) return false;
    }
    return InState(*delayed, JobState::kSucceeded) && InState(*blocked, JobState::kRunning) &&
           faulty_->calls(Op::kExtendLeases) > 0 && faulty_->calls(Op::kPurgeExpired) > 0;
  })) << "the jobs did not finish after the fault";
  gate_.Notify();
  ASSERT_TRUE(DriveUntil([&] { return InState(*blocked, JobState::kSucceeded); }));

  // A job still running at shutdown: its lease is released (or, if that
  // write fails, expires and is rescued after the restart).
  faulty_->FailNext(fc.op, fc.code, /*count=*/1, fc.after);
  auto at_shutdown = Submit("block2");
  ASSERT_TRUE(at_shutdown);
  ASSERT_TRUE(DriveUntil([&] { return InState(*at_shutdown, JobState::kRunning); }));
  const int64_t injected = faulty_->injected();
  engine_->Shutdown();
  const int64_t injected_at_shutdown = faulty_->injected() - injected;
  EXPECT_GT(faulty_->injected(), 0) << "the fault never fired: the test proves nothing";
  engine_.reset();

  // A restart on the same store, without faults.
  gate2_.Notify();
  StartEngine(inner_);
  ASSERT_TRUE(DriveUntil([&] { return InState(*at_shutdown, JobState::kSucceeded); }))
      << "a job running at shutdown was never finished";
  if (fc.op == Op::kReleaseLeases) {
    EXPECT_GT(injected_at_shutdown, 0) << "the lease release did not fail";
  }

  // Everything that was accepted is there and done; nothing refused is.
  EXPECT_TRUE(InState(*to_cancel, JobState::kCanceled));
  EXPECT_TRUE(IsError(inner_->Get(*to_delete), ErrorCode::kNotFound));
  for (const JobId& id : immediate) {
    EXPECT_TRUE(InState(id, JobState::kSucceeded)) << id.ToHex();
    EXPECT_TRUE(Delivered(id)) << id.ToHex();
  }
  const bool ambiguous = fc.after && fc.op == Op::kCommit;
  for (const JobId& id : refused_) {
    if (!ambiguous) {
      EXPECT_TRUE(IsError(inner_->Get(id), ErrorCode::kNotFound))
          << "a refused submit left job " << id.ToHex();
    }
  }
  if (fc.op == Op::kInsert || fc.op == Op::kCommit || fc.op == Op::kBeginWrite) {
    EXPECT_FALSE(refused_.empty()) << "no submit was refused";
  }
  EXPECT_TRUE(IsOk(engine_->Ready()));
  EXPECT_TRUE(Submit("{}").has_value());
}

INSTANTIATE_TEST_SUITE_P(EveryWriteOperation, EngineStoreFaultTest,
                         ::testing::ValuesIn(AllWriteFaults()), CaseName);

// A failed outcome write leaves the job running under its lease; once the
// lease expires, the rescuer requeues it and it runs again.
TEST(EngineOutcomeFaultTest, AFailedOutcomeWriteIsRetriedAfterTheLease) {
  TempDir dir;
  auto inner = std::shared_ptr<JobStore>(Must(SqliteStore::Open(dir.path() + "/jobs.db"), "open"));
  auto faulty = std::make_unique<FaultyStore>(inner);
  FaultyStore* f = faulty.get();
  FakeClock clock;
  JobRecorder recorder;
  std::atomic<int> runs{0};
  EngineOptions options = Options();
  options.lease_duration = kLease;
  Engine engine(options, std::move(faulty),
                {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                         ++runs;
                         return HandlerSuccess{"{}", "application/json"};
                       }))},
                clock);
  engine.AddObserver(recorder.Observer());
  engine.Start();
  f->FailNext(Op::kFinish, ErrorCode::kUnavailable);
  Job job = Must(SubmitSync(engine, Request("q")), "submit");
  // The first attempt ran, but its outcome was not written.
  ASSERT_TRUE(recorder.WaitForState(job.id, JobState::kRunning));
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (f->calls(Op::kFinish) < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polls, with a deadline
  }
  ASSERT_EQ(f->injected(), 1);
  EXPECT_EQ(Must(inner->Get(job.id), "Get").state, JobState::kRunning);
  EXPECT_FALSE(recorder.WaitTerminal(job.id, std::chrono::milliseconds(100)))
      << "nothing happens before the lease expires";
  clock.Advance(kLease + 1);
  auto done = recorder.WaitTerminal(job.id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_EQ(done->attempts, 2);
  EXPECT_EQ(runs.load(), 2);
}

}  // namespace
}  // namespace acceptd::engine_testing
