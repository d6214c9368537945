// Group commit: writes queued while a batch is in flight share the next
// transaction and its one durable commit.
#include "engine/group_committer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
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

}  // namespace
}  // namespace acceptd::engine_testing
