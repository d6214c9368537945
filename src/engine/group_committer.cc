#include "engine/group_committer.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace acceptd {

GroupCommitter::GroupCommitter(JobStore& store, boost::asio::any_io_executor engine_executor)
    : store_(store), executor_(std::move(engine_executor)) {}

void GroupCommitter::SetHooks(Hook before_commit, AfterHook after_commit) {
  before_commit_ = std::move(before_commit);
  after_commit_ = std::move(after_commit);
}

void GroupCommitter::Enqueue(Apply apply, Done done, std::string order) {
  std::unique_lock lock(mu_);
  if (closed_) {
    const Error reason = *closed_;
    lock.unlock();
    done(&reason);
    return;
  }
  pending_.push_back(Op{std::move(apply), std::move(done), std::move(order)});
  ScheduleLocked();
}

void GroupCommitter::Close(const Error& reason) {
  std::vector<Op> abandoned;
  {
    std::lock_guard lock(mu_);
    closed_ = reason;
    abandoned.swap(pending_);
  }
  for (Op& op : abandoned) op.done(&reason);
}

void GroupCommitter::Kick() {
  std::lock_guard lock(mu_);
  ScheduleLocked();
}

void GroupCommitter::ScheduleLocked() {
  if (scheduled_ || closed_) return;
  scheduled_ = true;
  boost::asio::post(executor_, [this] { Flush(); });
}

std::optional<Error> GroupCommitter::ApplyBatch(std::vector<Op>& batch) {
  // Named locks first, in one order for every node (see the header).
  std::stable_sort(batch.begin(), batch.end(), [](const Op& a, const Op& b) {
    if (a.order.empty() || b.order.empty()) return !a.order.empty() && b.order.empty();
    return a.order < b.order;
  });
  auto tx = store_.BeginWrite();
  if (!tx) return std::move(tx).error();
  for (Op& op : batch) {
    if (auto st = op.apply(**tx); !st) return std::move(st).error();
  }
  if (before_commit_) {
    if (auto st = before_commit_(**tx); !st) return std::move(st).error();
  }
  if (auto st = (*tx)->Commit(); !st) return std::move(st).error();
  return std::nullopt;  // an uncommitted transaction rolls back when `tx` goes
}

void GroupCommitter::Flush() {
  std::vector<Op> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
    scheduled_ = false;  // operations queued from now on get a new batch
  }
  std::optional<Error> failure;
  try {
    failure = ApplyBatch(batch);
  } catch (const std::exception& e) {
    // A backend must report errors as values; this is a bug, but the batch's
    // callers still get an answer and the engine thread keeps running.
    failure = Error::Internal(std::string("exception in store batch: ") + e.what());
  }
  if (failure) {
    spdlog::error("store batch of {} operations failed: {}", batch.size(), failure->message);
  }
  batches_.fetch_add(1);
  operations_.fetch_add(static_cast<int64_t>(batch.size()));
  // Operations first, then the hook that starts the batch's claims: observers
  // then see a job's changes in commit order (a retry before its next claim).
  for (Op& op : batch) op.done(failure ? &*failure : nullptr);
  if (after_commit_) after_commit_(!failure);
}

}  // namespace acceptd
