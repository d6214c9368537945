// Two engines on one database, as two nodes: what one commits reaches the
// other through the store's change feed (here the test double of
// store/testing/change_relay.h over two SqliteStore objects on one file),
// or, without a feed, through the watch poll. Each test times the cross-node
// wake-up, prints it, and asserts it loosely (well under what the polling
// that would otherwise find the change takes: promote_interval and the lease
// renewal are set to a minute and more here, the watch poll is off unless a
// test is about it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/change_relay.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::ChangeRelay;
using store_testing::Must;
using store_testing::RelayStore;
using store_testing::TempDir;
using SteadyClock = std::chrono::steady_clock;

// Loose: the feed delivers in a few milliseconds; polling would take a minute.
constexpr auto kCrossNode = std::chrono::milliseconds(1000);

// A moment recorded by one thread and awaited by another.
class Stamp {
 public:
  void Set() {
    at_ = SteadyClock::now();
    event_.Notify();
  }
  bool Wait(std::chrono::milliseconds timeout) { return event_.Wait(timeout); }
  SteadyClock::time_point at() const { return at_; }

 private:
  SteadyClock::time_point at_;
  Event event_;
};

QueueSpec External(std::string name) {
  QueueSpec s = Queue(std::move(name), nullptr);
  s.config.handler = "external";
  return s;
}

class MultiNodeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& f : before_shutdown_) f();
    b_.reset();
    a_.reset();
  }

  static EngineOptions NodeOptions(std::string node_id) {
    EngineOptions o = Options();
    o.node_id = std::move(node_id);
    // Polling would find everything these tests look for, only later: a
    // minute later, or never.
    o.promote_interval = 60'000;
    o.lease_duration = 300'000;  // renewal (and its cancel check) every 100 s
    o.watch_poll_interval = 0;
    return o;
  }

  // A node on the shared database; `feed` false: its store has none.
  std::unique_ptr<Engine> Node(int index, std::vector<QueueSpec> queues, EngineOptions options,
                               bool feed = true, JobRecorder* recorder = nullptr,
                               Engine::Observer observer = nullptr) {
    std::shared_ptr<JobStore> sqlite(Must(SqliteStore::Open(db_path_), "open store"));
    auto engine = std::make_unique<Engine>(
        std::move(options), std::make_unique<RelayStore>(sqlite, relay_, index, feed),
        std::move(queues), SystemClock::Instance());
    if (recorder) engine->AddObserver(recorder->Observer());
    if (observer) engine->AddObserver(std::move(observer));
    engine->Start();
    return engine;
  }

  // Waits until `job` runs on the node that `recorder` observes.
  void WaitRunning(JobRecorder& recorder, const JobId& id) {
    ASSERT_TRUE(recorder.WaitForState(id, JobState::kRunning)) << "the job never ran";
  }

  TempDir dir_;
  std::string db_path_ = dir_.path() + "/data/jobs.db";
  std::shared_ptr<ChangeRelay> relay_ = std::make_shared<ChangeRelay>();
  JobRecorder recorder_a_;
  std::vector<std::function<void()>> before_shutdown_;
  std::unique_ptr<Engine> a_;
  std::unique_ptr<Engine> b_;
};

// A long-poll waiting on node B for a job that node A runs.
TEST_F(MultiNodeTest, WatcherOnOneNodeWakesWhenAnotherNodeFinishesTheJob) {
  Event release;
  before_shutdown_.push_back([&] { release.Notify(); });
  Stamp returned;
  a_ = Node(0, {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                        release.Wait();
                        returned.Set();
                        return HandlerSuccess{"done", "text/plain"};
                      }))},
            NodeOptions("node-a"), true, &recorder_a_);
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));

  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  WaitRunning(recorder_a_, job.id);
  Stamp woke;
  b_->watchers().Watch(job.id, [&] { woke.Set(); });
  release.Notify();
  ASSERT_TRUE(returned.Wait(kWait)) << "the handler on A did not return";
  ASSERT_TRUE(woke.Wait(kCrossNode)) << "the watcher on B did not wake within 1 s";
  std::printf(
      "[ figure ] handler returned on A -> watcher on B woken: %.2f ms (A's commit "
      "included)\n",
      std::chrono::duration<double, std::milli>(woke.at() - returned.at()).count());
  EXPECT_EQ(Must(b_->Get(job.id), "Get on B").state, JobState::kSucceeded);
}

// An event stream (listener) on B hears each state change A commits.
TEST_F(MultiNodeTest, ListenerOnOneNodeHearsEveryChangeAnotherNodeCommits) {
  Event release;
  before_shutdown_.push_back([&] { release.Notify(); });
  a_ = Node(0, {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                        ctx.ReportProgress(50, "half");
                        release.Wait();
                        return HandlerSuccess{"done", "text/plain"};
                      }))},
            NodeOptions("node-a"), true, &recorder_a_);
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));
  // Listen before the job exists: its first wake is the claim on A.
  const JobId id = JobId::Random();
  std::atomic<int> wakes{0};
  Event woke;
  const uint64_t listening = b_->watchers().Listen(id, [&] {
    ++wakes;
    woke.Notify();
  });
  // The listener refers to this scope's locals, and B (stopped after the
  // test body) may still report changes: it must not outlive them.
  struct StopListening {
    Engine* node;
    JobId id;
    uint64_t token;
    ~StopListening() { node->watchers().Unwatch(id, token); }
  } stop_listening{b_.get(), id, listening};
  SubmitRequest req = Request("q");
  req.id = id;
  Must(SubmitSync(*a_, req), "submit on A");
  ASSERT_TRUE(woke.Wait(kCrossNode)) << "the listener on B did not wake";
  ASSERT_TRUE(recorder_a_.WaitForState(id, JobState::kRunning));
  const int before = wakes.load();
  release.Notify();
  ASSERT_TRUE(recorder_a_.WaitTerminal(id));
  // The success (at least) wakes it again.
  const auto deadline = SteadyClock::now() + kCrossNode;
  while (wakes.load() == before && SteadyClock::now() < deadline) std::this_thread::yield();
  EXPECT_GT(wakes.load(), before) << "the listener on B missed A's later changes";
}

// A job deleted through A wakes a long-poll waiting on B (it is gone).
TEST_F(MultiNodeTest, WatcherOnOneNodeWakesWhenAnotherNodeDeletesTheJob) {
  a_ = Node(0, {External("q")}, NodeOptions("node-a"));
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));
  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");  // stays queued: no worker
  Stamp woke;
  b_->watchers().Watch(job.id, [&] { woke.Set(); });
  const auto asked = SteadyClock::now();
  CancelOutcome out = Must(DeleteSync(*a_, job.id), "delete on A");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kCanceled);
  ASSERT_TRUE(woke.Wait(kCrossNode)) << "the watcher on B did not wake within 1 s";
  std::printf("[ figure ] deleted on A -> watcher on B woken: %.2f ms after the request\n",
              std::chrono::duration<double, std::milli>(woke.at() - asked).count());
  EXPECT_TRUE(store_testing::IsError(b_->Get(job.id), ErrorCode::kNotFound));
}

// A cancel requested through B stops the handler running on A.
TEST_F(MultiNodeTest, CancelThroughOneNodeReachesTheHandlerOnAnother) {
  Event started;
  Stamp cancelled;
  a_ = Node(0, {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext& ctx) {
                        started.Notify();
                        if (!ctx.WaitFor(std::chrono::seconds(30))) cancelled.Set();
                        return HandlerFailure{"stopped", true, "stopped"};
                      }))},
            NodeOptions("node-a"), true, &recorder_a_);
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));

  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  ASSERT_TRUE(started.Wait());
  const auto asked = SteadyClock::now();
  CancelOutcome out = Must(CancelSync(*b_, job.id), "cancel on B");
  EXPECT_EQ(out.kind, CancelOutcome::Kind::kSignalled);
  ASSERT_TRUE(cancelled.Wait(kCrossNode)) << "the handler on A did not see the cancel within 1 s";
  std::printf("[ figure ] cancel through B -> handler on A signalled: %.2f ms after the request\n",
              std::chrono::duration<double, std::milli>(cancelled.at() - asked).count());
  auto end = recorder_a_.WaitTerminal(job.id);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->state, JobState::kCanceled);
}

// A job submitted through A, which does not run the queue, is started by
// B's idle capacity.
TEST_F(MultiNodeTest, JobSubmittedOnOneNodeIsStartedByIdleCapacityOnAnother) {
  Stamp started;
  JobRecorder recorder_b;
  a_ = Node(0, {External("q")}, NodeOptions("node-a"));
  b_ = Node(1, {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                        started.Set();
                        return HandlerSuccess{"done", "text/plain"};
                      }))},
            NodeOptions("node-b"), true, &recorder_b);
  const auto submitted = SteadyClock::now();
  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  const auto committed = SteadyClock::now();
  ASSERT_TRUE(started.Wait(kCrossNode)) << "B did not start the job within 1 s";
  std::printf(
      "[ figure ] submitted on A -> started on B: %.2f ms after A's commit (%.2f ms after "
      "the submit)\n",
      std::chrono::duration<double, std::milli>(started.at() - committed).count(),
      std::chrono::duration<double, std::milli>(started.at() - submitted).count());
  auto end = recorder_b.WaitTerminal(job.id);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->state, JobState::kSucceeded);
}

// A worker's lease request waiting on B gets the job submitted through A.
TEST_F(MultiNodeTest, LeaseWaitingOnOneNodeGetsAJobSubmittedOnAnother) {
  a_ = Node(0, {External("q")}, NodeOptions("node-a"));
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));
  LeaseRequest lr;
  lr.queue = "q";
  lr.owner = "worker-1";
  // A first request finds the queue empty: from then on, a waiting lease
  // costs no store reads (and only a wake-up makes it look again).
  lr.wait = 20;
  auto none = Await<std::optional<Job>>([&](auto done) { b_->Lease(lr, done); });
  ASSERT_TRUE(none && !*none);
  Stamp leased;
  std::optional<Result<std::optional<Job>>> answer;
  lr.wait = 30'000;
  // Registered on B's engine thread before A's change can arrive there.
  b_->Lease(lr, [&](Result<std::optional<Job>> r) {
    answer.emplace(std::move(r));
    leased.Set();
  });
  const auto asked = SteadyClock::now();
  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  ASSERT_TRUE(leased.Wait(kCrossNode)) << "the lease on B did not get the job within 1 s";
  std::printf("[ figure ] submitted on A -> leased to a worker waiting on B: %.2f ms\n",
              std::chrono::duration<double, std::milli>(leased.at() - asked).count());
  ASSERT_TRUE(answer && *answer && **answer) << "no job leased";
  EXPECT_EQ((**answer)->id, job.id);
}

// Without a feed, the watch poll finds A's change for a watcher on B.
TEST_F(MultiNodeTest, WithoutAFeedTheWatchPollWakesAWatcherOnAnotherNode) {
  Event release;
  before_shutdown_.push_back([&] { release.Notify(); });
  EngineOptions a_options = NodeOptions("node-a");
  EngineOptions b_options = NodeOptions("node-b");
  b_options.watch_poll_interval = 100;
  a_ = Node(0, {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                        release.Wait();
                        return HandlerSuccess{"done", "text/plain"};
                      }))},
            a_options, /*feed=*/false, &recorder_a_);
  b_ = Node(1, {External("q")}, b_options, /*feed=*/false);
  EXPECT_FALSE(b_->feed_live());

  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  WaitRunning(recorder_a_, job.id);
  Stamp woke;
  b_->watchers().Watch(job.id, [&] { woke.Set(); });
  release.Notify();
  ASSERT_TRUE(recorder_a_.WaitTerminal(job.id));
  const auto committed = SteadyClock::now();
  ASSERT_TRUE(woke.Wait(std::chrono::milliseconds(100) + kCrossNode))
      << "the watch poll did not wake the watcher on B";
  std::printf(
      "[ figure ] no feed: finished on A -> watcher on B woken by the poll (every 100 ms): "
      "%.2f ms\n",
      std::chrono::duration<double, std::milli>(woke.at() - committed).count());
}

// While the feed is interrupted the node polls; once it is back, it
// listens again.
TEST_F(MultiNodeTest, WhileTheFeedIsInterruptedTheWatchPollTakesOver) {
  Event release;
  before_shutdown_.push_back([&] { release.Notify(); });
  EngineOptions b_options = NodeOptions("node-b");
  b_options.watch_poll_interval = 100;
  a_ = Node(0, {Queue("q", MakeHandler([&](std::string_view, std::string_view, JobContext&) {
                        release.Wait();
                        return HandlerSuccess{"done", "text/plain"};
                      }))},
            NodeOptions("node-a"), true, &recorder_a_);
  b_ = Node(1, {External("q")}, b_options);
  auto deadline = SteadyClock::now() + kWait;
  while (!b_->feed_live() && SteadyClock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(b_->feed_live()) << "the feed never said it was live";
  relay_->SetLive(false);
  deadline = SteadyClock::now() + kWait;
  while (b_->feed_live() && SteadyClock::now() < deadline) std::this_thread::yield();
  ASSERT_FALSE(b_->feed_live());

  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  WaitRunning(recorder_a_, job.id);
  Stamp woke;
  b_->watchers().Watch(job.id, [&] { woke.Set(); });
  release.Notify();
  ASSERT_TRUE(recorder_a_.WaitTerminal(job.id));
  ASSERT_TRUE(woke.Wait(std::chrono::milliseconds(100) + kCrossNode))
      << "with the feed down, the watch poll did not wake the watcher on B";

  relay_->SetLive(true);
  deadline = SteadyClock::now() + kWait;
  while (!b_->feed_live() && SteadyClock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(b_->feed_live());
}

// Node B's status cache holds a queued job submitted on A; A cancels it: B's
// next polls answer canceled as soon as the feed brings the change.
TEST_F(MultiNodeTest, PollOnOneNodeSeesAChangeCommittedOnAnother) {
  a_ = Node(0, {External("q")}, NodeOptions("node-a"));
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));
  auto deadline = SteadyClock::now() + kCrossNode;
  while (!b_->status_cache().trusted() && SteadyClock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(b_->status_cache().trusted()) << "B's feed never went live";
  const int64_t delivered = relay_->delivered();
  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  // The insert's own announcement would empty B's entry: let it pass first.
  deadline = SteadyClock::now() + kCrossNode;
  while (relay_->delivered() == delivered && SteadyClock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(Must(b_->Get(job.id), "Get on B").state, JobState::kQueued);
  const uint64_t hits = b_->status_cache().hits();
  EXPECT_EQ(Must(b_->Get(job.id), "Get on B").state, JobState::kQueued);
  EXPECT_GT(b_->status_cache().hits(), hits) << "B did not cache the queued job";
  const auto asked = SteadyClock::now();
  Must(CancelSync(*a_, job.id), "cancel on A");
  deadline = SteadyClock::now() + kCrossNode;
  JobState seen = JobState::kQueued;
  while (seen != JobState::kCanceled && SteadyClock::now() < deadline) {
    seen = Must(b_->Get(job.id), "Get on B").state;
    if (seen != JobState::kCanceled) std::this_thread::yield();
  }
  ASSERT_EQ(seen, JobState::kCanceled) << "B kept answering the cached state";
  std::printf("[ figure ] canceled on A -> polled as canceled on B: %.2f ms after the request\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - asked).count());
}

// While B's feed is down, changes committed on A are not announced to B: its
// polls must read the store (the cache is not trusted), and trust it again
// only from empty once the feed is back.
TEST_F(MultiNodeTest, PollOnOneNodeReadsTheStoreWhileTheFeedIsDown) {
  a_ = Node(0, {External("q")}, NodeOptions("node-a"));
  b_ = Node(1, {External("q")}, NodeOptions("node-b"));
  auto deadline = SteadyClock::now() + kCrossNode;
  while (!b_->status_cache().trusted() && SteadyClock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(b_->status_cache().trusted()) << "B's feed never went live";
  Job job = Must(SubmitSync(*a_, Request("q")), "submit on A");
  EXPECT_EQ(Must(b_->Get(job.id), "Get on B").state, JobState::kQueued);  // cached
  relay_->SetLive(false);
  deadline = SteadyClock::now() + kCrossNode;
  while (b_->status_cache().trusted() && SteadyClock::now() < deadline) std::this_thread::yield();
  ASSERT_FALSE(b_->status_cache().trusted()) << "B still trusts its cache with the feed down";
  Must(CancelSync(*a_, job.id), "cancel on A");  // lost to B's feed
  EXPECT_EQ(Must(b_->Get(job.id), "Get on B").state, JobState::kCanceled);
  relay_->SetLive(true);
  deadline = SteadyClock::now() + kCrossNode;
  while (!b_->status_cache().trusted() && SteadyClock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(b_->status_cache().trusted());
  EXPECT_EQ(Must(b_->Get(job.id), "Get on B").state, JobState::kCanceled);
}

}  // namespace
}  // namespace acceptd::engine_testing
