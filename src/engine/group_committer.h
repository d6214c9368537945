// GroupCommitter: the single writer of an engine. Write operations from any
// thread are queued; one thread (the engine's) drains the queue into a single
// store transaction and one durable commit, then reports each operation's
// outcome. Operations that arrive while a commit is in flight wait for the
// next batch, so N concurrent submits cost one fsync, not N (group commit).
//
// Lock order: an operation may name the locks it takes (`order`, e.g. its
// queue for an insert, its job for a state change). A batch applies the
// named operations first, sorted by that name (stably: one job's operations
// keep their order), then the others in arrival order. Transactions of
// several nodes on one database then take those locks in one global order
// and cannot deadlock on them: without it, node A inserting into queues x
// then y while node B inserted into y then x (each insert holds its queue's
// depth lock until commit) made the database abort one of the two batches,
// and its submits answered 503.
//
// Inserts are an operation kind of their own (EnqueueInsert): the
// consecutive inserts of a batch (after that sort: the inserts of all queues,
// by queue) go to the store as one WriteTx::InsertMany, so a network database
// inserts a batch's submits in one round trip rather than one per submit.
//
// A `before_commit` hook runs inside every batch's transaction (the engine
// claims jobs there, so a submit and its claim share one fsync), and
// `after_commit` runs after the operations' callbacks with whether it
// committed. During either, current_batch() names the batch (batches are
// numbered from 1), so a hook can keep what one batch claimed apart from
// the next one's: with pipelining, batch N+1's before_commit runs before
// batch N's after_commit.
//
// Pipelining: a store that commits without waiting for durability
// (WriteTx::CommitUnsynced returns a token) lets the committer apply and
// commit batch N+1 while batch N is being synced. A batch is reported (its
// operations' callbacks, then after_commit) only once the store says a sync
// covering it returned (JobStore::WhenDurable), and batches are reported in
// commit order, so nothing is answered that a power loss could undo. At most
// max_unsynced batches are committed and not yet durable (default 2: one
// syncing while the next one is applied); operations arriving meanwhile
// wait in the queue and form the next batch. A failed sync fails every batch
// not yet durable (the store stopped: fail-stop), each with that error and
// after_commit(false).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "core/metrics.h"
#include "store/job_store.h"

namespace acceptd {

class GroupCommitter {
 public:
  // Applies an operation inside the batch's transaction. Returns an error only
  // if the transaction must be abandoned (kInternal / kUnavailable).
  using Apply = std::function<Status(WriteTx&)>;
  // Called on the engine thread once the batch ended: nullptr if it committed.
  using Done = std::function<void(const Error* failure)>;
  using Hook = std::function<Status(WriteTx&)>;
  using AfterHook = std::function<void(bool committed)>;
  // An insert's outcome inside the batch's transaction (never a fatal one:
  // that abandons the batch); runs before the before_commit hook.
  using InsertApplied = std::function<void(const Result<Job>&)>;
  // Called on the engine thread once the batch ended: the insert's outcome if
  // the batch committed, else the batch's failure.
  using InsertDone = std::function<void(Result<Job>)>;

  GroupCommitter(JobStore& store, boost::asio::any_io_executor engine_executor);

  void SetHooks(Hook before_commit, AfterHook after_commit);
  // Thread-safe. The operation joins the next batch. `order`: the lock it
  // takes (see above); empty: none worth ordering.
  void Enqueue(Apply apply, Done done, std::string order = {});
  // Thread-safe. An insert of `job` joining the next batch, applied with the
  // batch's other inserts in one InsertMany; `order` as for Enqueue.
  void EnqueueInsert(NewJob job, InsertApplied applied, InsertDone done, std::string order = {});
  // Thread-safe. Runs a batch even if no operation is queued (for the hooks).
  void Kick();
  // Once the engine thread has stopped: fails every queued operation and every
  // later one at once with `reason` (on the caller's thread), so no caller
  // waits forever for a batch that will never run.
  void Close(const Error& reason);

  // How many batches may be committed and not yet durable at once (>= 1;
  // 1: no pipelining). Before the first batch.
  void SetMaxUnsynced(int n) { max_unsynced_ = n < 1 ? 1 : n; }
  // Where each batch is counted when it is reported: its time from being
  // applied until then (the sync that made it durable included), its
  // operations, and whether it failed. Before the first batch; null
  // members are not counted.
  struct Metrics {
    metrics::Histogram* seconds = nullptr;
    metrics::Histogram* operations = nullptr;
    metrics::Counter* failures = nullptr;
  };
  void SetMetrics(Metrics m) { metrics_ = m; }
  // On the engine thread, during a hook: the batch it runs for.
  int64_t current_batch() const { return current_batch_; }

  int64_t batches() const { return batches_.load(); }
  int64_t operations() const { return operations_.load(); }
  // WriteTx::InsertMany calls made (one per batch that inserts: tests, metrics).
  int64_t insert_many_calls() const { return insert_many_calls_.load(); }

 private:
  struct Insert {
    NewJob job;
    InsertApplied applied;
    std::optional<Result<Job>> result;  // set inside the batch
  };
  struct Op {
    Apply apply;  // null for an insert
    Done done;
    std::string order;
    std::shared_ptr<Insert> insert;  // shared with `done`, which reads its result
  };
  // A batch applied and committed (or failed), not yet reported.
  struct Batch {
    int64_t id = 0;
    std::vector<Op> ops;
    std::optional<Error> failure;
    CommitToken token = 0;
    bool durable = false;                           // or failed: may be reported once it is first
    std::chrono::steady_clock::time_point applied;  // when the batch began
  };
  void EnqueueOp(Op op);
  void ScheduleLocked();
  void Flush();
  // One transaction for the batch; its commit token, or the error that ended it.
  Result<CommitToken> ApplyBatch(std::vector<Op>& batch);
  // On the engine thread: the store synced batch `id` (or failed to).
  void OnDurable(int64_t id, std::optional<Error> failure);
  // Reports the batches at the front of unreported_ that may be.
  void ReportReady();
  void Report(Batch& batch, bool run_after_hook);

  JobStore& store_;
  boost::asio::any_io_executor executor_;
  Hook before_commit_;
  AfterHook after_commit_;
  std::mutex mu_;
  std::vector<Op> pending_;      // guarded by mu_
  bool scheduled_ = false;       // guarded by mu_
  bool kicked_ = false;          // guarded by mu_: a Kick waits for a batch
  std::optional<Error> closed_;  // guarded by mu_
  int unsynced_ = 0;             // guarded by mu_: batches waiting for WhenDurable
  int max_unsynced_ = 2;
  Metrics metrics_;
  int64_t next_batch_ = 0;        // engine thread
  int64_t current_batch_ = 0;     // engine thread
  std::deque<Batch> unreported_;  // engine thread (Close: after it stopped)
  // Keeps the engine thread's loop running while batches wait for a sync.
  std::optional<boost::asio::executor_work_guard<boost::asio::any_io_executor>> work_;
  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> operations_{0};
  std::atomic<int64_t> insert_many_calls_{0};
};

// True for errors after which a transaction cannot continue.
inline bool IsFatal(const Error& e) {
  return e.code == ErrorCode::kInternal || e.code == ErrorCode::kUnavailable;
}

}  // namespace acceptd
