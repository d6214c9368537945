// Group commit: writes queued while a batch is in flight share the next
// transaction and its one durable commit.
#include "engine/group_committer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/fault_vfs.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::IsError;
using store_testing::IsOk;
using store_testing::Must;
using store_testing::TempDir;

NewJob MakeNewJob(std::string queue) {
  NewJob n;
  n.id = JobId::Random();
  n.queue = std::move(queue);
  n.payload = "{}";
  n.now = n.run_at = 1'000;
  n.max_attempts = 1;
  n.max_depth = 1'000'000;
  return n;
}

class GroupCommitterTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_ = Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open");
  boost::asio::io_context ctx_;  // run by the test: the "engine thread"
};

TEST_F(GroupCommitterTest, EverythingQueuedBeforeTheFlushSharesOneBatch) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  constexpr int kThreads = 4, kPerThread = 25;
  std::atomic<int> committed{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        NewJob n = MakeNewJob("q");
        committer.Enqueue(
            [n](WriteTx& tx) -> Status {
              auto r = tx.Insert(n);
              if (!r) return std::move(r).error();
              return {};
            },
            [&](const Error* e) { ++(e ? failed : committed); });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committer.batches(), 0);  // nothing runs until the engine thread does
  ctx_.run();
  EXPECT_EQ(committer.batches(), 1);
  EXPECT_EQ(committer.operations(), kThreads * kPerThread);
  EXPECT_EQ(committed.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  auto counts = Must(store_->Counts(), "Counts");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].counts[static_cast<int>(JobState::kQueued)], kThreads * kPerThread);
}

// A batch's queued inserts reach the store as one InsertMany call (one round
// trip on a network database), each insert still getting its own outcome,
// its `applied` callback inside the transaction (before the before_commit
// hook), and an operation of another kind still applied in the batch.
TEST_F(GroupCommitterTest, QueuedInsertsOfABatchBecomeOneInsertManyCall) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  std::vector<std::string> trace;
  committer.SetHooks(
      [&](WriteTx&) -> Status {
        trace.push_back("before_commit");
        return {};
      },
      [&](bool committed) { trace.push_back(committed ? "committed" : "failed"); });
  constexpr int kInserts = 20;
  std::vector<NewJob> jobs;
  for (int i = 0; i < kInserts; ++i) {
    NewJob n = MakeNewJob(i % 2 ? "b" : "a");
    n.max_depth = i % 2 ? 100 : 8;  // queue "a" gets 10 of them: its last 2 are refused
    jobs.push_back(n);
  }
  jobs[5].id = jobs[3].id;  // refused as a duplicate; the others still apply
  std::vector<std::optional<Result<Job>>> results(kInserts);
  int applied = 0;
  for (int i = 0; i < kInserts; ++i) {
    committer.EnqueueInsert(
        jobs[static_cast<size_t>(i)],
        [&, i](const Result<Job>& r) {
          ++applied;
          trace.push_back("applied " + std::to_string(i) + (r ? " ok" : " refused"));
        },
        [&, i](Result<Job> r) { results[static_cast<size_t>(i)].emplace(std::move(r)); },
        "queue:" + jobs[static_cast<size_t>(i)].queue);
    if (i == 10) {
      committer.Enqueue(
          [&](WriteTx&) -> Status {
            trace.push_back("other op");
            return {};
          },
          [](const Error* e) { EXPECT_EQ(e, nullptr); });
    }
  }
  ctx_.run();
  EXPECT_EQ(committer.batches(), 1);
  EXPECT_EQ(committer.insert_many_calls(), 1) << "20 inserts, one InsertMany";
  EXPECT_EQ(applied, kInserts);
  ASSERT_GE(trace.size(), 3u);
  EXPECT_EQ(trace[trace.size() - 3], "other op") << "unnamed operations after the named ones";
  EXPECT_EQ(trace[trace.size() - 2], "before_commit");
  EXPECT_EQ(trace.back(), "committed");
  // The inserts were applied by queue ("a" before "b"), each queue's in order.
  EXPECT_EQ(trace[0], "applied 0 ok");
  EXPECT_EQ(trace[10], "applied 1 ok");
  int a_ok = 0, b_ok = 0;
  for (int i = 0; i < kInserts; ++i) {
    const auto& r = results[static_cast<size_t>(i)];
    ASSERT_TRUE(r.has_value()) << "insert " << i << " got no answer";
    if (i == 5) {
      EXPECT_TRUE(IsError(*r, ErrorCode::kConflict));
      continue;
    }
    if (i % 2 == 0 && i >= 16) {
      EXPECT_TRUE(IsError(*r, ErrorCode::kQueueFull)) << "insert " << i;
      continue;
    }
    ASSERT_TRUE(IsOk(*r)) << "insert " << i;
    EXPECT_EQ((*r)->id, jobs[static_cast<size_t>(i)].id);
    ++((i % 2) ? b_ok : a_ok);
  }
  EXPECT_EQ(a_ok, 8);
  EXPECT_EQ(b_ok, 9);
  auto counts = Must(store_->Counts(), "Counts");
  int64_t queued = 0;
  for (const auto& c : counts) queued += c.counts[static_cast<int>(JobState::kQueued)];
  EXPECT_EQ(queued, 17);
}

TEST_F(GroupCommitterTest, HooksRunInsideTheBatchAndAfterItsCommit) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  NewJob from_hook = MakeNewJob("hook");
  std::vector<std::string> order;
  committer.SetHooks(
      [&](WriteTx& tx) -> Status {
        order.push_back("before_commit");
        if (auto r = tx.Insert(from_hook); !r) return std::move(r).error();
        return {};
      },
      [&](bool ok) { order.push_back(ok ? "after_commit(true)" : "after_commit(false)"); });
  committer.Enqueue(
      [&](WriteTx&) -> Status {
        order.push_back("op");
        return {};
      },
      [&](const Error* e) { order.push_back(e ? "done(error)" : "done(ok)"); });
  ctx_.run();
  // The operation, then the hook, in one transaction; after the commit, the
  // after_commit hook and the operation's callback (in either order).
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[0], "op");
  EXPECT_EQ(order[1], "before_commit");
  std::set<std::string> after(order.begin() + 2, order.end());
  EXPECT_EQ(after, (std::set<std::string>{"after_commit(true)", "done(ok)"}));
  EXPECT_TRUE(IsOk(store_->Get(from_hook.id)));

  // Kick() runs a batch for the hooks alone.
  order.clear();
  from_hook = MakeNewJob("hook");
  committer.Kick();
  ctx_.restart();
  ctx_.run();
  EXPECT_EQ(order, (std::vector<std::string>{"before_commit", "after_commit(true)"}));
  EXPECT_EQ(committer.batches(), 2);
}

TEST_F(GroupCommitterTest, AFatalErrorRollsBackTheWholeBatch) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  bool after_commit_ok = true;
  committer.SetHooks(nullptr, [&](bool ok) { after_commit_ok = ok; });
  NewJob n = MakeNewJob("q");
  std::vector<ErrorCode> results;
  committer.Enqueue(
      [&](WriteTx& tx) -> Status {
        if (auto r = tx.Insert(n); !r) return std::move(r).error();
        return {};
      },
      [&](const Error* e) { results.push_back(e ? e->code : ErrorCode::kInternal); });
  committer.Enqueue([](WriteTx&) -> Status { return Error::Internal("backend exploded"); },
                    [&](const Error* e) { results.push_back(e ? e->code : ErrorCode::kInternal); });
  ctx_.run();
  EXPECT_FALSE(after_commit_ok);
  EXPECT_EQ(results, (std::vector<ErrorCode>{ErrorCode::kInternal, ErrorCode::kInternal}));
  EXPECT_TRUE(IsError(store_->Get(n.id), ErrorCode::kNotFound)) << "rolled back";

  // The store takes the next batch.
  committer.Enqueue(
      [&](WriteTx& tx) -> Status {
        if (auto r = tx.Insert(n); !r) return std::move(r).error();
        return {};
      },
      [](const Error*) {});
  ctx_.restart();
  ctx_.run();
  EXPECT_TRUE(IsOk(store_->Get(n.id)));
}

// Many concurrent Engine::Submit calls from several threads complete with far
// fewer store batches (transactions, fsyncs) than submits.
TEST(EngineGroupCommitTest, ConcurrentSubmitsShareBatches) {
  TempDir dir;
  FakeClock clock;
  QueueSpec q = Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                        return HandlerSuccess{};
                      }));
  q.config.max_depth = 1'000'000;
  auto store = Must(SqliteStore::Open(dir.path() + "/jobs.db"), "open");
  Engine engine(Options(), std::move(store), {q}, clock);
  engine.Start();

  constexpr int kThreads = 4, kPerThread = 100, kSubmits = kThreads * kPerThread;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0;
  std::latch go(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      go.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        SubmitRequest req = Request("q");
        req.delay = 3'600'000;  // stay queued: only the submits write
        engine.Submit(std::move(req), [&](Result<Job> r) {
          std::lock_guard lock(mu);
          ++done;
          if (r.ok()) ++ok;
          cv.notify_all();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return done == kSubmits; }));
    EXPECT_EQ(ok, kSubmits);
  }
  const int64_t batches = engine.committer().batches();
  RecordProperty("batches", static_cast<int>(batches));
  EXPECT_GE(engine.committer().operations(), kSubmits);
  EXPECT_LE(batches, kSubmits / 4) << "batches: " << batches << " for " << kSubmits << " submits";
  // Each batch's submits reached the store as one InsertMany (one round trip
  // on a network database), not one Insert per submit.
  EXPECT_GE(engine.committer().insert_many_calls(), 1);
  EXPECT_LE(engine.committer().insert_many_calls(), batches);
  auto queues = Must(engine.Queues(), "Queues");
  EXPECT_EQ(queues[0].counts[static_cast<int>(JobState::kQueued)], kSubmits);
  engine.Shutdown();
}

// Two nodes' batches inserting into queues x and y in opposite orders held
// each other's queue depth locks (PostgreSQL) until the database aborted one
// batch: every batch now takes its named locks in one order.
TEST_F(GroupCommitterTest,
       InsertsIntoTwoQueuesDeadlockedAcrossNodesSoABatchTakesNamedLocksInOrder) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  std::vector<std::string> applied;
  auto op = [&](std::string name) {
    return [&applied, name](WriteTx&) -> Status {
      applied.push_back(name);
      return {};
    };
  };
  auto ignore = [](const Error*) {};
  committer.Enqueue(op("renew"), ignore);  // no named lock
  committer.Enqueue(op("insert y"), ignore, "0:y");
  committer.Enqueue(op("finish job 2"), ignore, "1:2");
  committer.Enqueue(op("insert x"), ignore, "0:x");
  committer.Enqueue(op("progress job 1"), ignore, "1:1");
  committer.Enqueue(op("finish job 1"), ignore, "1:1");  // after its progress: stable
  committer.Enqueue(op("rescue"), ignore);
  ctx_.run();
  EXPECT_EQ(applied, (std::vector<std::string>{"insert x", "insert y", "progress job 1",
                                               "finish job 1", "finish job 2", "renew", "rescue"}));
}

// Pipelined group commit on SQLite: the store's WAL syncs are held at the
// fault VFS's gate, so the test sees each batch between its commit and its
// sync. Batch N+1 is applied while batch N syncs, at most two batches wait
// for a sync, nothing is reported before its sync, batches are reported in
// commit order, and a failed sync fails exactly the batches not yet durable.
class PipelinedGroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vfs_.Reset();
    store_ =
        Must(SqliteStore::Open(dir_.path() + "/jobs.db", store_testing::FaultVfs::kName), "open");
    vfs_.SetWalSyncGate(true);
  }
  void TearDown() override {
    vfs_.SetWalSyncGate(false);
    vfs_.Reset();
  }
  // Each batch's after_commit hook appends "after <batch> ok|failed" to trace_.
  void TraceAfterCommit(GroupCommitter& committer) {
    committer.SetHooks(nullptr, [this, &committer](bool ok) {
      trace_.push_back("after " + std::to_string(committer.current_batch()) +
                       (ok ? " ok" : " failed"));
    });
  }
  // An insert whose outcome is appended to trace_ as "done <name> ok|<code>".
  void Submit(GroupCommitter& committer, const std::string& name) {
    NewJob n = MakeNewJob("q");
    ids_[name] = n.id;
    committer.Enqueue(
        [n](WriteTx& tx) -> Status {
          auto r = tx.Insert(n);
          if (!r) return std::move(r).error();
          return {};
        },
        [this, name](const Error* e) {
          trace_.push_back("done " + name + " " + (e ? std::string(ToString(e->code)) : "ok"));
        });
  }
  // Runs the engine thread's ready work, then waits (with a deadline) for
  // `until`, running what the store posts meanwhile.
  void RunUntil(const std::function<bool()>& until) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      ctx_.restart();
      ctx_.poll();
      if (until()) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out";
      std::this_thread::yield();
    }
  }
  void AwaitSyncAtGate() {
    RunUntil([&] { return vfs_.syncs_waiting() > 0; });
  }

  store_testing::FaultVfs& vfs_ = store_testing::FaultVfs::Instance();
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  boost::asio::io_context ctx_;
  std::vector<std::string> trace_;
  std::map<std::string, JobId> ids_;
};

TEST_F(PipelinedGroupCommitTest, TheNextBatchIsAppliedWhileOneSyncsAndReportedOnlyAfterItsOwn) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  TraceAfterCommit(committer);
  Submit(committer, "a");
  RunUntil([&] { return committer.batches() == 1; });
  AwaitSyncAtGate();  // batch 1 is committed; its sync waits
  Submit(committer, "b");
  RunUntil([&] { return committer.batches() == 2; });  // applied while batch 1 syncs
  Submit(committer, "c");
  ctx_.restart();
  ctx_.poll();
  EXPECT_EQ(committer.batches(), 2) << "a third batch while two wait for a sync";
  EXPECT_TRUE(trace_.empty()) << "reported before its sync: " << trace_.front();

  vfs_.ReleaseWalSyncs(1);  // batch 1's sync returns; the next sync (batch 2) waits
  RunUntil([&] { return !trace_.empty(); });
  RunUntil([&] { return committer.batches() == 3; });  // "c" is applied now
  EXPECT_EQ(trace_, (std::vector<std::string>{"done a ok", "after 1 ok"}));

  vfs_.SetWalSyncGate(false);
  RunUntil([&] { return trace_.size() == 6; });
  EXPECT_EQ(trace_, (std::vector<std::string>{"done a ok", "after 1 ok", "done b ok", "after 2 ok",
                                              "done c ok", "after 3 ok"}));
}

TEST_F(PipelinedGroupCommitTest, AFailedSyncFailsExactlyTheBatchesNotYetDurable) {
  GroupCommitter committer(*store_, ctx_.get_executor());
  TraceAfterCommit(committer);
  Submit(committer, "a");
  RunUntil([&] { return committer.batches() == 1; });
  AwaitSyncAtGate();
  Submit(committer, "b");
  RunUntil([&] { return committer.batches() == 2; });
  vfs_.ReleaseWalSyncs(1);  // batch 1 durable
  RunUntil([&] { return trace_.size() == 2; });
  Submit(committer, "c");
  RunUntil([&] { return committer.batches() == 3; });  // batches 2 and 3 wait for a sync
  vfs_.SetSyncFailure(true, store_testing::FaultVfs::Files::kWal);
  vfs_.SetWalSyncGate(false);
  RunUntil([&] { return trace_.size() == 6; });
  EXPECT_EQ(trace_,
            (std::vector<std::string>{"done a ok", "after 1 ok", "done b unavailable",
                                      "after 2 failed", "done c unavailable", "after 3 failed"}));
  vfs_.SetSyncFailure(false);
  // Fail-stop: later operations are refused, the durable one is still there.
  Submit(committer, "d");
  RunUntil([&] { return trace_.size() == 8; });
  EXPECT_EQ(trace_[6], "done d unavailable");
  store_.reset();
  vfs_.Reset();
  auto reopened = Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "reopen");
  EXPECT_TRUE(IsOk(reopened->Get(ids_["a"])));
}

}  // namespace
}  // namespace acceptd::engine_testing
