#include "engine/group_committer.h"

#include <algorithm>
#include <future>

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
  // Committed batches not yet reported (the engine thread stopped before
  // their sync was): wait for it here, so that each operation still gets
  // its true outcome. The hook is not run: the engine is gone.
  for (Batch& b : unreported_) {
    if (!b.durable) {
      std::promise<std::optional<Error>> synced;
      store_.WhenDurable(b.token, [&synced](const Error* e) {
        synced.set_value(e ? std::optional<Error>(*e) : std::nullopt);
      });
      if (auto e = synced.get_future().get()) b.failure = *e;
      b.durable = true;
    }
    Report(b, /*run_after_hook=*/false);
  }
  unreported_.clear();
  work_.reset();
  for (Op& op : abandoned) op.done(&reason);
}

void GroupCommitter::Kick() {
  std::lock_guard lock(mu_);
  kicked_ = true;
  ScheduleLocked();
}

void GroupCommitter::ScheduleLocked() {
  if (scheduled_ || closed_) return;
  // Enough batches wait for their sync: the queue grows into the next batch,
  // scheduled when one of them is durable (OnDurable).
  if (unsynced_ >= max_unsynced_) return;
  scheduled_ = true;
  boost::asio::post(executor_, [this] { Flush(); });
}

Result<CommitToken> GroupCommitter::ApplyBatch(std::vector<Op>& batch) {
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
  return (*tx)->CommitUnsynced();  // an uncommitted transaction rolls back when `tx` goes
}

void GroupCommitter::Flush() {
  std::vector<Op> ops;
  {
    std::lock_guard lock(mu_);
    ops.swap(pending_);
    scheduled_ = false;  // operations queued from now on get a new batch
    kicked_ = false;
  }
  Batch batch;
  batch.applied = std::chrono::steady_clock::now();
  batch.id = ++next_batch_;
  current_batch_ = batch.id;
  Result<CommitToken> token = CommitToken{0};
  try {
    token = ApplyBatch(ops);
  } catch (const std::exception& e) {
    // A backend must report errors as values; this is a bug, but the batch's
    // callers still get an answer and the engine thread keeps running.
    token = Error::Internal(std::string("exception in store batch: ") + e.what());
  }
  current_batch_ = 0;
  batches_.fetch_add(1);
  operations_.fetch_add(static_cast<int64_t>(ops.size()));
  batch.ops = std::move(ops);
  if (!token) {
    spdlog::error("store batch of {} operations failed: {}", batch.ops.size(),
                  token.error().message);
    batch.failure = std::move(token).error();
    batch.durable = true;  // nothing to wait for: reported after the batches before it
  } else if (*token == 0) {
    batch.durable = true;  // the store's commits are durable when they return
  } else {
    batch.token = *token;
    {
      std::lock_guard lock(mu_);
      ++unsynced_;
    }
  }
  const int64_t id = batch.id;
  const bool wait = !batch.durable;
  unreported_.push_back(std::move(batch));
  if (wait) {
    // On a thread of the store: hop to the engine thread (the callback must
    // be quick and must not touch this object's state).
    // The engine thread's loop must not run out of work while a batch waits
    // for its sync. The guard lives on this thread (a tracked executor held
    // by the store's thread would be released there, racing the loop's end).
    if (!work_) work_.emplace(executor_);
    store_.WhenDurable(*token, [this, id, executor = executor_](const Error* e) {
      std::optional<Error> failure;
      if (e) failure = *e;
      boost::asio::post(executor, [this, id, failure = std::move(failure)]() mutable {
        OnDurable(id, std::move(failure));
      });
    });
  }
  ReportReady();
}

void GroupCommitter::OnDurable(int64_t id, std::optional<Error> failure) {
  {
    std::lock_guard lock(mu_);
    if (--unsynced_ == 0) work_.reset();
  }
  if (failure) {
    // The store stopped: no batch that is not durable yet will be.
    bool logged = false;
    for (Batch& b : unreported_) {
      if (b.durable) continue;
      if (!logged) {
        spdlog::error("store sync failed: failing every batch not yet durable: {}",
                      failure->message);
        logged = true;
      }
      b.failure = *failure;
      b.durable = true;
    }
  } else {
    // Syncs cover every commit before them: so do their reports.
    for (Batch& b : unreported_) {
      if (b.id > id) break;
      b.durable = true;
    }
  }
  ReportReady();
  std::lock_guard lock(mu_);
  if (!pending_.empty() || kicked_) ScheduleLocked();
}

void GroupCommitter::ReportReady() {
  while (!unreported_.empty() && unreported_.front().durable) {
    Batch batch = std::move(unreported_.front());
    unreported_.pop_front();
    Report(batch, /*run_after_hook=*/true);
  }
}

void GroupCommitter::Report(Batch& batch, bool run_after_hook) {
  const Error* failure = batch.failure ? &*batch.failure : nullptr;
  if (metrics_.seconds) {
    metrics_.seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - batch.applied).count());
  }
  if (metrics_.operations) metrics_.operations->Observe(static_cast<double>(batch.ops.size()));
  if (failure && metrics_.failures) metrics_.failures->Add();
  current_batch_ = batch.id;
  // Operations first, then the hook that starts the batch's claims: observers
  // then see a job's changes in commit order (a retry before its next claim).
  for (Op& op : batch.ops) op.done(failure);
  if (run_after_hook && after_commit_) after_commit_(!failure);
  current_batch_ = 0;
}

}  // namespace acceptd
