// GatedStore: a JobStore wrapper for tests that poses as a network database
// (RemoteCalls() is true) whose reads of chosen jobs hang, as reads do when
// the database server is slow or unreachable.
//
// Close(id) makes every later Get / GetResult / GetPayload of `id` block
// until Open(); other reads and all writes are forwarded at once (a write
// transaction is the inner store's own). blocked() says how many reads wait
// at the gate now, so tests wait for a read to be stuck instead of sleeping.
// A GetMany waits while any of its ids is closed, then reads them all;
// get_many_sizes() records the size of every GetMany asked for (tests of
// how reads are coalesced).
//
// Thread-safe. Test-only: include from test sources, never from production
// code. Open the gate before destroying whatever waits on such a read.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "store/job_store.h"

namespace acceptd::store_testing {

class GatedStore final : public JobStore {
 public:
  explicit GatedStore(std::shared_ptr<JobStore> inner) : inner_(std::move(inner)) {}

  void Close(const JobId& id) {
    std::lock_guard lock(mu_);
    gated_.insert(id);
  }
  void Open() {
    {
      std::lock_guard lock(mu_);
      gated_.clear();
    }
    cv_.notify_all();
  }
  int blocked() const {
    std::lock_guard lock(mu_);
    return blocked_;
  }

  bool RemoteCalls() const override { return true; }
  void SetTransitionObserver(TransitionObserver observer) override {
    inner_->SetTransitionObserver(std::move(observer));
  }
  Result<std::unique_ptr<WriteTx>> BeginWrite() override { return inner_->BeginWrite(); }
  // The transactions are the inner store's: so are their commit tokens.
  void WhenDurable(CommitToken token, std::function<void(const Error*)> done) override {
    inner_->WhenDurable(token, std::move(done));
  }
  Result<Job> Get(const JobId& id) override {
    Wait(id);
    return inner_->Get(id);
  }
  std::vector<Result<Job>> GetMany(const std::vector<JobId>& ids) override {
    {
      std::lock_guard lock(mu_);
      get_many_sizes_.push_back(ids.size());
    }
    for (const JobId& id : ids) Wait(id);
    return inner_->GetMany(ids);
  }
  std::vector<size_t> get_many_sizes() const {
    std::lock_guard lock(mu_);
    return get_many_sizes_;
  }
  Result<StoredResult> GetResult(const JobId& id) override {
    Wait(id);
    return inner_->GetResult(id);
  }
  Result<StoredPayload> GetPayload(const JobId& id) override {
    Wait(id);
    return inner_->GetPayload(id);
  }
  Result<JobPage> List(const ListParams& params) override { return inner_->List(params); }
  Result<AttemptHistory> GetAttempts(const JobId& id) override { return inner_->GetAttempts(id); }
  Result<std::vector<QueueThroughput>> Throughput(UnixMillis since, Millis step,
                                                  int buckets) override {
    return inner_->Throughput(since, step, buckets);
  }
  Result<std::vector<QueueCounts>> Counts() override { return inner_->Counts(); }
  Result<std::vector<QueueValue>> OldestReady() override { return inner_->OldestReady(); }
  Result<std::vector<std::string>> PausedQueues() override { return inner_->PausedQueues(); }
  Result<NodeList> Nodes() override { return inner_->Nodes(); }
  Result<std::vector<ScheduleState>> ScheduleStates() override { return inner_->ScheduleStates(); }
  Status Ping() override { return inner_->Ping(); }

 private:
  void Wait(const JobId& id) {
    std::unique_lock lock(mu_);
    if (!gated_.count(id)) return;
    ++blocked_;
    cv_.wait(lock, [&] { return !gated_.count(id); });
    --blocked_;
  }

  std::shared_ptr<JobStore> inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<JobId> gated_;               // guarded by mu_
  int blocked_ = 0;                     // guarded by mu_
  std::vector<size_t> get_many_sizes_;  // guarded by mu_
};

}  // namespace acceptd::store_testing
