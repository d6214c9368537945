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
  EnqueueOp(Op{std::move(apply), std::move(done), std::move(order), nullptr});
}

void GroupCommitter::EnqueueInsert(NewJob job, InsertApplied applied, InsertDone done,
                                   std::string order) {
  auto insert = std::make_shared<Insert>(Insert{std::move(job), std::move(applied), std::nullopt});
  Done on_done = [insert, done = std::move(done)](const Error* failure) {
    if (failure) {
      done(*failure);
    } else if (insert->result) {
      done(std::move(*insert->result));
    } else {
      done(Error::Internal("insert committed without an outcome"));  // a bug
    }
  };
  EnqueueOp(Op{nullptr, std::move(on_done), std::move(order), std::move(insert)});
}

void GroupCommitter::EnqueueOp(Op op) {
  std::unique_lock lock(mu_);
  if (closed_) {
    const Error reason = *closed_;
    lock.unlock();
    op.done(&reason);
    return;
  }
  pending_.push_back(std::move(op));
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
  for (size_t i = 0; i < batch.size();) {
    if (!batch[i].insert) {
      if (auto st = batch[i].apply(**tx); !st) return std::move(st).error();
      ++i;
      continue;
    }
    // A run of consecutive inserts: one InsertMany.
    size_t end = i;
    std::vector<NewJob> jobs;
    for (; end < batch.size() && batch[end].insert; ++end) {
      jobs.push_back(std::move(batch[end].insert->job));
    }
    insert_many_calls_.fetch_add(1);
    auto results = (*tx)->InsertMany(jobs);
    if (!results) return std::move(results).error();
    if (results->size() != jobs.size()) {
      return Error::Internal("store: InsertMany returned a result count unlike its jobs'");
    }
    for (size_t k = 0; k < jobs.size(); ++k) {
      Insert& insert = *batch[i + k].insert;
      Result<Job>& r = (*results)[k];
      if (!r && IsFatal(r.error())) return r.error();  // the contract says outer; be safe
      if (insert.applied) insert.applied(r);
      insert.result.emplace(std::move(r));
    }
    i = end;
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
