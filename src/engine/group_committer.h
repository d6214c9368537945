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
// A `before_commit` hook runs inside every batch's transaction (the engine
// claims jobs there, so a submit and its claim share one fsync), and
// `after_commit` runs after the operations' callbacks with whether it
// committed.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

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

  GroupCommitter(JobStore& store, boost::asio::any_io_executor engine_executor);

  void SetHooks(Hook before_commit, AfterHook after_commit);
  // Thread-safe. The operation joins the next batch. `order`: the lock it
  // takes (see above); empty: none worth ordering.
  void Enqueue(Apply apply, Done done, std::string order = {});
  // Thread-safe. Runs a batch even if no operation is queued (for the hooks).
  void Kick();
  // Once the engine thread has stopped: fails every queued operation and every
  // later one at once with `reason` (on the caller's thread), so no caller
  // waits forever for a batch that will never run.
  void Close(const Error& reason);

  int64_t batches() const { return batches_.load(); }
  int64_t operations() const { return operations_.load(); }

 private:
  struct Op {
    Apply apply;
    Done done;
    std::string order;
  };
  void ScheduleLocked();
  void Flush();
  // One transaction for the batch; the error that ended it, if any.
  std::optional<Error> ApplyBatch(std::vector<Op>& batch);

  JobStore& store_;
  boost::asio::any_io_executor executor_;
  Hook before_commit_;
  AfterHook after_commit_;
  std::mutex mu_;
  std::vector<Op> pending_;      // guarded by mu_
  bool scheduled_ = false;       // guarded by mu_
  std::optional<Error> closed_;  // guarded by mu_
  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> operations_{0};
};

// True for errors after which a transaction cannot continue.
inline bool IsFatal(const Error& e) {
  return e.code == ErrorCode::kInternal || e.code == ErrorCode::kUnavailable;
}

}  // namespace acceptd
