// The engine's status cache (engine/status_cache.h) against a real
// SqliteStore: a poll made at the moment the engine reports a change (its
// Observer runs after the commit) answers that change, while another thread
// keeps polling so the cache is full of the job's earlier states.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::IsError;
using store_testing::Must;
using store_testing::TempDir;

class StatusCacheEngineTest : public ::testing::Test {
 protected:
  void TearDown() override {
    stop_ = true;
    if (poller_.joinable()) poller_.join();
    for (auto& f : before_shutdown_) f();
    engine_.reset();
  }

  Engine& Start(std::vector<QueueSpec> queues) {
    engine_ = std::make_unique<Engine>(
        Options(), std::unique_ptr<JobStore>(Must(SqliteStore::Open(db_path_), "open store")),
        std::move(queues), SystemClock::Instance());
    // Every change: a poll at that moment must answer it, or a change
    // committed after it. With pipelined commits a later batch (the retry's
    // next claim, say) may be committed while this one's report runs, and a
    // read that meets its rows waits for their sync and answers them: newer,
    // never older. Stale() sorts the two apart once every change is known.
    engine_->AddObserver([this](const Job& job) {
      auto polled = engine_->Get(job.id);
      std::lock_guard lock(mu_);
      ++checked_;
      std::vector<Seen>& seen = history_[job.id];
      seen.push_back(Seen{job.state, job.attempts, job.cancel_requested});
      if (!polled) {
        if (polled.error().code != ErrorCode::kNotFound) errors_.push_back("error");
        return;
      }
      const Seen answer{polled->state, polled->attempts, polled->cancel_requested};
      if (!(answer == seen.back())) suspects_.push_back(Suspect{job.id, seen.size() - 1, answer});
    });
    engine_->AddObserver(recorder_.Observer());
    engine_->Start();
    return *engine_;
  }

  // Polls the jobs in `ids_` back to back, filling the cache.
  void StartPoller() {
    poller_ = std::thread([this] {
      while (!stop_.load()) {
        std::vector<JobId> ids;
        {
          std::lock_guard lock(mu_);
          ids = ids_;
        }
        for (const JobId& id : ids) (void)engine_->Get(id);
        std::this_thread::yield();
      }
    });
  }
  void Poll(const JobId& id) {
    std::lock_guard lock(mu_);
    ids_.push_back(id);
  }

  TempDir dir_;
  std::string db_path_ = dir_.path() + "/data/jobs.db";
  JobRecorder recorder_;
  std::vector<std::function<void()>> before_shutdown_;
  std::unique_ptr<Engine> engine_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<JobId> ids_;
  // The polls that answered something else than the change just reported:
  // stale unless a later change of the job is what they answered.
  std::vector<std::string> Stale() {
    std::lock_guard lock(mu_);
    std::vector<std::string> stale = errors_;
    for (const Suspect& s : suspects_) {
      const std::vector<Seen>& seen = history_[s.id];
      if (std::find(seen.begin() + static_cast<std::ptrdiff_t>(s.index) + 1, seen.end(),
                    s.polled) == seen.end()) {
        stale.push_back(std::string(ToString(seen[s.index].state)) + " polled as " +
                        std::string(ToString(s.polled.state)));
      }
    }
    return stale;
  }

  struct Seen {
    JobState state;
    int attempts;
    bool cancel_requested;
    bool operator==(const Seen&) const = default;
  };
  struct Suspect {
    JobId id;
    size_t index;  // into history_[id]: the change being reported
    Seen polled;
  };
  std::unordered_map<JobId, std::vector<Seen>, JobIdHash> history_;  // every change, in order
  std::vector<Suspect> suspects_;
  std::vector<std::string> errors_;
  int checked_ = 0;
};

TEST_F(StatusCacheEngineTest, APollAfterEveryKindOfChangeAnswersTheNewState) {
  Event progressed, proceed, cancel_seen;
  before_shutdown_.push_back([&] { proceed.Notify(); });
  std::atomic<int> attempts{0};
  QueueSpec external = Queue("external", nullptr);
  external.config.handler = "external";
  Engine& engine = Start({Queue("retry", MakeHandler([&](std::string_view, std::string_view,
                                                         JobContext& ctx) -> HandlerOutcome {
                                  if (++attempts == 1) {
                                    ctx.ReportProgress(40, "forty");
                                    progressed.Notify();
                                    proceed.Wait();
                                    return HandlerFailure{"boom", true, "first attempt fails"};
                                  }
                                  return HandlerSuccess{"done", "text/plain"};
                                })),
                          Queue("cancel", MakeHandler([&](std::string_view, std::string_view,
                                                          JobContext& ctx) -> HandlerOutcome {
                                  ctx.WaitFor(std::chrono::seconds(30));
                                  return HandlerFailure{"stopped", true, "stopped"};
                                })),
                          external});
  StartPoller();

  // Submit, run, progress, retry, succeed.
  Job retried = Must(SubmitSync(engine, Request("retry")), "submit");
  Poll(retried.id);
  ASSERT_TRUE(progressed.Wait());
  // The progress write is not a state change: poll until it shows.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  bool shown = false;
  while (!shown && std::chrono::steady_clock::now() < deadline) {
    auto j = engine.Get(retried.id);
    shown = j && j->progress && j->progress->percent == 40;
    if (!shown) std::this_thread::yield();
  }
  EXPECT_TRUE(shown) << "the progress never showed in a poll";
  proceed.Notify();
  auto end = recorder_.WaitTerminal(retried.id);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->state, JobState::kSucceeded);
  EXPECT_EQ(Must(engine.Get(retried.id), "Get").state, JobState::kSucceeded);

  // Cancel of a running job (signalled, then canceled), and delete.
  Job running = Must(SubmitSync(engine, Request("cancel")), "submit");
  Poll(running.id);
  ASSERT_TRUE(recorder_.WaitForState(running.id, JobState::kRunning));
  Must(CancelSync(engine, running.id), "cancel");
  EXPECT_TRUE(Must(engine.Get(running.id), "Get").cancel_requested);
  ASSERT_TRUE(recorder_.WaitTerminal(running.id));
  EXPECT_EQ(Must(engine.Get(running.id), "Get").state, JobState::kCanceled);
  Must(DeleteSync(engine, running.id), "delete");
  EXPECT_TRUE(IsError(engine.Get(running.id), ErrorCode::kNotFound));

  // Cancel of a queued job, and delete of a queued one.
  Job queued = Must(SubmitSync(engine, Request("external")), "submit");
  Poll(queued.id);
  EXPECT_EQ(Must(engine.Get(queued.id), "Get").state, JobState::kQueued);
  EXPECT_EQ(Must(engine.Get(queued.id), "Get").state, JobState::kQueued);
  Must(CancelSync(engine, queued.id), "cancel");
  EXPECT_EQ(Must(engine.Get(queued.id), "Get").state, JobState::kCanceled);
  Job deleted = Must(SubmitSync(engine, Request("external")), "submit");
  EXPECT_EQ(Must(engine.Get(deleted.id), "Get").state, JobState::kQueued);
  EXPECT_EQ(Must(engine.Get(deleted.id), "Get").state, JobState::kQueued);
  Must(DeleteSync(engine, deleted.id), "delete");
  EXPECT_TRUE(IsError(engine.Get(deleted.id), ErrorCode::kNotFound));

  const std::vector<std::string> stale = Stale();
  EXPECT_TRUE(stale.empty()) << stale.size() << " stale polls, first: " << stale.front();
  std::lock_guard lock(mu_);
  EXPECT_GT(checked_, 8);
  EXPECT_GT(engine.status_cache().hits(), 0u) << "the cache was never used";
}

// The lease protocol's changes (a worker's lease, heartbeat with progress,
// completion) each show in the next poll.
TEST_F(StatusCacheEngineTest, WorkerLeaseChangesShowInTheNextPoll) {
  QueueSpec external = Queue("external", nullptr);
  external.config.handler = "external";
  Engine& engine = Start({external});
  Job job = Must(SubmitSync(engine, Request("external")), "submit");
  EXPECT_EQ(Must(engine.Get(job.id), "Get").state, JobState::kQueued);
  EXPECT_EQ(Must(engine.Get(job.id), "Get").state, JobState::kQueued);  // cached
  LeaseRequest lr;
  lr.queue = "external";
  lr.owner = "worker";
  lr.wait = 1'000;
  auto leased = Await<std::optional<Job>>([&](auto done) { engine.Lease(lr, done); });
  ASSERT_TRUE(leased && *leased);
  const LeaseRef lease{job.id, (*leased)->lease_token};
  EXPECT_EQ(Must(engine.Get(job.id), "Get").state, JobState::kRunning);
  EXPECT_FALSE(Must(engine.Get(job.id), "Get").progress);
  Must(Await<HeartbeatResult>([&](auto done) {
         engine.Heartbeat(lease, 10'000, Progress{70, "seventy"}, done);
       }),
       "heartbeat");
  auto after = Must(engine.Get(job.id), "Get");
  ASSERT_TRUE(after.progress);
  EXPECT_EQ(after.progress->percent, 70);
  Must(Await<Job>([&](auto done) { engine.CompleteLease(lease, "ok", "text/plain", done); }),
       "complete");
  EXPECT_EQ(Must(engine.Get(job.id), "Get").state, JobState::kSucceeded);
  EXPECT_GT(engine.status_cache().hits(), 0u);
}

// Not pass/fail: status reads per second on one thread over 256 queued
// jobs, read from SQLite (cache off) and from the cache, in one run.
TEST(StatusCacheFigure, PollsPerSecondWithAndWithoutTheCache) {
  double rate[2] = {0, 0};
  for (int cached = 0; cached < 2; ++cached) {
    TempDir dir;
    EngineOptions options = Options();
    options.status_cache_size = cached ? kDefaultStatusCacheSize : 0;
    QueueSpec external = Queue("external", nullptr);
    external.config.handler = "external";
    Engine engine(options,
                  std::unique_ptr<JobStore>(
                      Must(SqliteStore::Open(dir.path() + "/data/jobs.db"), "open store")),
                  {external}, SystemClock::Instance());
    engine.Start();
    std::vector<JobId> ids;
    for (int i = 0; i < 256; ++i)
      ids.push_back(Must(SubmitSync(engine, Request("external")), "submit").id);
    for (const JobId& id : ids) (void)engine.Get(id);  // fills
    int64_t n = 0;
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until) {
      for (const JobId& id : ids) n += Must(engine.Get(id), "Get").attempts + 1;
    }
    rate[cached] = static_cast<double>(n) /
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    engine.Shutdown();
  }
  std::printf(
      "[ figure ] Engine::Get on SQLite: %.0f/s from the store, %.0f/s from the cache (%.1fx)\n",
      rate[0], rate[1], rate[1] / rate[0]);
}

}  // namespace
}  // namespace acceptd::engine_testing
