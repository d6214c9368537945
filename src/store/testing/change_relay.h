// ChangeRelay and RelayStore: a change feed (JobStore::Subscribe) for tests
// of several nodes on one database, whatever the backend.
//
// Each node gets its own RelayStore, wrapping its own store object on the
// shared database (e.g. two SqliteStore objects on one file). A RelayStore
// forwards every call to its inner store; when one of its write transactions
// commits, it re-reads the jobs that transaction touched and hands their new
// state to the relay, which delivers them, on the relay's own thread and in
// commit order, to the listeners of every OTHER node, as a real feed reports
// the commits of other store objects. A job that is gone after the commit is
// reported `removed`. The delayed-job promoter's work is reported as one
// change per queue with an empty id (PromoteDueJobs names queues, not jobs).
// Lease extensions, callback bookkeeping, bulk releases and purges are not
// reported.
//
// A new subscription hears on_state(true) (or false, while interrupted) from
// the relay's thread, as a real feed reports once it listens. SetLive(false)
// interrupts the feed (listeners get on_state(false), and commits made
// meanwhile are lost to them, as a dropped connection would lose them);
// SetLive(true) resumes it (on_state(true)).
//
// Thread-safe. Test-only: include from test sources, never from production
// code.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/job_store.h"

namespace acceptd::store_testing {

class ChangeRelay {
 public:
  ChangeRelay() : thread_([this] { Run(); }) {}
  ~ChangeRelay() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ChangeRelay(const ChangeRelay&) = delete;
  ChangeRelay& operator=(const ChangeRelay&) = delete;

  // Interrupts (false) or resumes (true) delivery to every listener.
  void SetLive(bool live) {
    {
      std::lock_guard lock(mu_);
      if (live_ == live) return;
      live_ = live;
      queue_.push_back(Item{-1, {}, live});
    }
    cv_.notify_all();
  }
  // Batches of changes delivered so far (to any listener).
  int64_t delivered() const {
    std::lock_guard lock(mu_);
    return delivered_;
  }

  // For RelayStore: `node`'s committed changes.
  void Publish(int node, std::vector<JobChange> changes) {
    if (changes.empty()) return;
    {
      std::lock_guard lock(mu_);
      if (!live_) return;  // lost, as on a dropped connection
      queue_.push_back(Item{node, std::move(changes), std::nullopt});
    }
    cv_.notify_all();
  }
  // For RelayStore: a listener of `node`; the returned subscription stops it.
  std::unique_ptr<ChangeSubscription> Subscribe(int node, ChangeListener listener) {
    int64_t key = 0;
    {
      std::lock_guard deliver(deliver_mu_);
      key = next_key_++;
      listeners_.emplace(key, Entry{node, std::move(listener)});
    }
    {
      // A new feed reports whether it is live, as a real one does once its
      // connection listens (the others hear it again: no change for them).
      std::lock_guard lock(mu_);
      queue_.push_back(Item{-1, {}, live_});
    }
    cv_.notify_all();
    return std::make_unique<Subscription>(this, key);
  }

 private:
  struct Item {
    int origin;  // -1: a state change
    std::vector<JobChange> changes;
    std::optional<bool> live;
  };
  struct Entry {
    int node;
    ChangeListener listener;
  };
  class Subscription final : public ChangeSubscription {
   public:
    Subscription(ChangeRelay* relay, int64_t key) : relay_(relay), key_(key) {}
    ~Subscription() override {
      // Waits for a delivery in progress: no call after this returns.
      std::lock_guard deliver(relay_->deliver_mu_);
      relay_->listeners_.erase(key_);
    }

   private:
    ChangeRelay* relay_;
    int64_t key_;
  };

  void Run() {
    for (;;) {
      Item item;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      std::lock_guard deliver(deliver_mu_);
      for (auto& [key, entry] : listeners_) {
        if (item.live) {
          if (entry.listener.on_state) entry.listener.on_state(*item.live);
        } else if (entry.node != item.origin && entry.listener.on_changes) {
          entry.listener.on_changes(item.changes);
        }
      }
      if (!item.live) {
        std::lock_guard lock(mu_);
        ++delivered_;
      }
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // guarded by mu_
  bool live_ = true;        // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  int64_t delivered_ = 0;   // guarded by mu_
  // Held while listeners are called and while the list changes.
  std::mutex deliver_mu_;
  std::map<int64_t, Entry> listeners_;  // guarded by deliver_mu_
  int64_t next_key_ = 1;                // guarded by deliver_mu_
  std::thread thread_;                  // last: starts after the members above exist
};

class RelayStore final : public JobStore {
 public:
  // `feed` false: Subscribe returns nullptr (a backend without a feed), but
  // this node's commits are still published to the others.
  RelayStore(std::shared_ptr<JobStore> inner, std::shared_ptr<ChangeRelay> relay, int node,
             bool feed = true)
      : inner_(std::move(inner)), relay_(std::move(relay)), node_(node), feed_(feed) {}

  void SetTransitionObserver(TransitionObserver observer) override {
    inner_->SetTransitionObserver(std::move(observer));
  }
  Result<std::unique_ptr<WriteTx>> BeginWrite() override {
    auto tx = inner_->BeginWrite();
    if (!tx) return std::move(tx).error();
    return std::unique_ptr<WriteTx>(new Tx(this, std::move(*tx)));
  }
  Result<Job> Get(const JobId& id) override { return inner_->Get(id); }
  std::vector<Result<Job>> GetMany(const std::vector<JobId>& ids) override {
    return inner_->GetMany(ids);
  }
  Result<StoredResult> GetResult(const JobId& id) override { return inner_->GetResult(id); }
  Result<StoredPayload> GetPayload(const JobId& id) override { return inner_->GetPayload(id); }
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
  bool RemoteCalls() const override { return inner_->RemoteCalls(); }
  std::unique_ptr<ChangeSubscription> Subscribe(ChangeListener listener) override {
    if (!feed_) return nullptr;
    return relay_->Subscribe(node_, std::move(listener));
  }

 private:
  class Tx final : public WriteTx {
   public:
    Tx(RelayStore* store, std::unique_ptr<WriteTx> inner) : s_(store), in_(std::move(inner)) {}

    Result<Job> Insert(const NewJob& job) override { return Touch(in_->Insert(job)); }
    Result<std::vector<Job>> Claim(const ClaimParams& params) override {
      return TouchAll(in_->Claim(params));
    }
    Result<Job> Finish(const AttemptOutcome& outcome) override {
      return Touch(in_->Finish(outcome));
    }
    Result<CancelOutcome> Cancel(const JobId& id, UnixMillis now) override {
      auto r = in_->Cancel(id, now);
      if (r) Note(r->job);
      return r;
    }
    Result<CancelOutcome> Delete(const JobId& id, UnixMillis now) override {
      auto r = in_->Delete(id, now);
      if (r) Note(r->job);
      return r;
    }
    Status SetProgress(const JobId& id, int64_t token, const Progress& p, UnixMillis now) override {
      auto st = in_->SetProgress(id, token, p, now);
      if (st) touched_.emplace(id, Job{});
      return st;
    }
    Result<LeaseRenewal> ExtendLeases(const std::vector<LeaseRef>& leases, UnixMillis expires,
                                      UnixMillis now) override {
      return in_->ExtendLeases(leases, expires, now);
    }
    Result<HeartbeatResult> Heartbeat(const LeaseRef& lease, UnixMillis lease_until, UnixMillis now,
                                      const std::optional<Progress>& progress) override {
      auto r = in_->Heartbeat(lease, lease_until, now, progress);
      if (r && progress) touched_.emplace(lease.id, Job{});
      return r;
    }
    Result<Job> ReleaseLease(const LeaseRef& lease, UnixMillis now) override {
      return Touch(in_->ReleaseLease(lease, now));
    }
    Result<std::vector<Job>> RescueExpiredLeases(UnixMillis now, int limit) override {
      return TouchAll(in_->RescueExpiredLeases(now, limit));
    }
    Result<int64_t> ReleaseLeases(const std::string& owner, UnixMillis now) override {
      return in_->ReleaseLeases(owner, now);
    }
    Result<std::vector<std::string>> PromoteDueJobs(UnixMillis now, int limit) override {
      auto r = in_->PromoteDueJobs(now, limit);
      if (r) promoted_.insert(promoted_.end(), r->begin(), r->end());
      return r;
    }
    Result<std::vector<QueueValue>> PurgeExpired(UnixMillis now, int limit, Millis ttl) override {
      return in_->PurgeExpired(now, limit, ttl);
    }
    Result<bool> SetQueuePaused(const std::string& queue, bool paused, UnixMillis now) override {
      return in_->SetQueuePaused(queue, paused, now);
    }
    Status TouchNode(const std::string& name, UnixMillis started_at, UnixMillis now,
                     UnixMillis forget_before) override {
      return in_->TouchNode(name, started_at, now, forget_before);
    }
    Result<Job> FireSchedule(const ScheduleFire& fire) override { return in_->FireSchedule(fire); }
    Result<Job> RetryJob(const JobId& id, UnixMillis now) override {
      return Touch(in_->RetryJob(id, now));
    }
    Result<std::vector<JobId>> DeleteFinished(const std::string& queue,
                                              std::optional<JobState> state, int limit) override {
      return in_->DeleteFinished(queue, state, limit);
    }
    Result<std::vector<Job>> ClaimCallbacks(UnixMillis now, int limit,
                                            UnixMillis lease_until) override {
      return in_->ClaimCallbacks(now, limit, lease_until);
    }
    Result<Job> RecordCallbackAttempt(const CallbackAttempt& attempt) override {
      return in_->RecordCallbackAttempt(attempt);
    }
    Status Commit() override {
      auto st = in_->Commit();
      if (!st) return st;
      std::vector<JobChange> changes;
      for (const auto& [id, known] : touched_) {
        JobChange c;
        c.id = id;
        auto job = s_->inner_->Get(id);
        if (job) {
          c.queue = job->queue;
          c.state = job->state;
          c.cancel_requested = job->state == JobState::kRunning && job->cancel_requested;
          c.due = job->state == JobState::kQueued && job->run_at <= job->updated_at;
        } else {
          c.queue = known.queue;  // gone: what the transaction saw last
          c.state = known.state;
          c.removed = true;
        }
        changes.push_back(std::move(c));
      }
      for (std::string& queue : promoted_) {
        JobChange c;
        c.queue = std::move(queue);
        c.due = true;
        changes.push_back(std::move(c));
      }
      s_->relay_->Publish(s_->node_, std::move(changes));
      return st;
    }

   private:
    void Note(const Job& job) { touched_[job.id] = job; }
    Result<Job> Touch(Result<Job> r) {
      if (r) Note(*r);
      return r;
    }
    Result<std::vector<Job>> TouchAll(Result<std::vector<Job>> r) {
      if (r) {
        for (const Job& j : *r) Note(j);
      }
      return r;
    }

    RelayStore* s_;
    std::unique_ptr<WriteTx> in_;
    std::unordered_map<JobId, Job, JobIdHash>
        touched_;  // id -> the job as the transaction last saw it
    std::vector<std::string> promoted_;
  };

  std::shared_ptr<JobStore> inner_;
  std::shared_ptr<ChangeRelay> relay_;
  int node_;
  bool feed_;
};

}  // namespace acceptd::store_testing
