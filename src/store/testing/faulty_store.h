// FaultyStore: a JobStore wrapper for tests that fails chosen calls.
//
// It forwards every call to an inner store, except the calls a plan says to
// fail: "fail calls N..N+count-1 of operation X with error E". Each operation
// (every JobStore and WriteTx method, Commit included) has its own call
// counter, starting at 1. A failed call normally never reaches the inner
// store (nothing happened); with `after` it runs there first and its result is
// then replaced by the error, which for Commit is the ambiguous case "durable,
// but reported as failed".
//
// A failing WriteTx operation leaves the inner transaction open: the caller
// must abandon it (as the contract says for kInternal / kUnavailable), and
// destroying the wrapper rolls the inner transaction back.
//
// Thread-safe: counters and plans are guarded by one mutex, so tests may arm,
// heal and read counters while an engine uses the store from its threads.
//
// Test-only: include from test sources, never from production code.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/job_store.h"

namespace acceptd::store_testing {

class FaultyStore final : public JobStore {
 public:
  enum class Op {
    kBeginWrite,
    kInsert,
    kClaim,
    kFinish,
    kCancel,
    kDelete,
    kSetProgress,
    kExtendLeases,
    kRescueExpiredLeases,
    kReleaseLeases,
    kHeartbeat,
    kReleaseLease,
    kPromoteDueJobs,
    kPurgeExpired,
    kSetQueuePaused,
    kTouchNode,
    kRetryJob,
    kDeleteFinished,
    kFireSchedule,
    kClaimCallbacks,
    kRecordCallbackAttempt,
    kCommit,
    kGet,
    kGetResult,
    kGetPayload,
    kList,
    kCounts,
    kOldestReady,
    kPausedQueues,
    kNodes,
    kGetAttempts,
    kThroughput,
    kScheduleStates,
    kPing,
  };
  static constexpr int kOpCount = static_cast<int>(Op::kPing) + 1;
  // The write operations (those of a WriteTx, BeginWrite and Commit included).
  static std::vector<Op> WriteOps() {
    std::vector<Op> ops;
    for (int i = 0; i <= static_cast<int>(Op::kCommit); ++i) ops.push_back(static_cast<Op>(i));
    return ops;
  }
  static std::string_view Name(Op op) {
    // clang-format off
    static constexpr std::array<std::string_view, kOpCount> kNames = {
        "BeginWrite", "Insert", "Claim", "Finish", "Cancel", "Delete", "SetProgress",
        "ExtendLeases", "RescueExpiredLeases", "ReleaseLeases", "Heartbeat", "ReleaseLease",
        "PromoteDueJobs", "PurgeExpired", "SetQueuePaused", "TouchNode", "RetryJob",
        "DeleteFinished", "FireSchedule", "ClaimCallbacks", "RecordCallbackAttempt", "Commit", "Get",
        "GetResult", "GetPayload", "List", "Counts", "OldestReady", "PausedQueues", "Nodes",
        "GetAttempts", "Throughput", "ScheduleStates", "Ping"};
    // clang-format on
    return kNames[static_cast<size_t>(op)];
  }
  // The error a fault of this kind returns: what a backend reports when the
  // store is briefly unusable (kUnavailable) or broken (kInternal).
  static Error InjectedError(ErrorCode code, Op op) {
    std::string message = "injected fault in " + std::string(Name(op));
    if (code == ErrorCode::kUnavailable) return Error::Unavailable(std::move(message));
    if (code == ErrorCode::kInternal) return Error::Internal(std::move(message));
    return Error{code, message, message};
  }

  struct Fault {
    Op op = Op::kCommit;
    int64_t first = 1;  // the first call to fail (1 = the first call ever)
    int64_t count = 1;  // how many calls from `first` on fail
    Error error;
    bool after = false;  // let the call reach the inner store, then fail it
  };

  explicit FaultyStore(std::shared_ptr<JobStore> inner) : inner_(std::move(inner)) {}

  // Adds a fault.
  void Arm(Fault fault) {
    std::lock_guard lock(mu_);
    faults_.push_back(std::move(fault));
  }
  // Fails the next `count` calls of `op` with `code` (counted from now).
  void FailNext(Op op, ErrorCode code, int64_t count = 1, bool after = false) {
    std::lock_guard lock(mu_);
    faults_.push_back(
        Fault{op, calls_[static_cast<size_t>(op)] + 1, count, InjectedError(code, op), after});
  }
  // The fault stops: every later call is forwarded.
  void Heal() {
    std::lock_guard lock(mu_);
    faults_.clear();
  }
  int64_t calls(Op op) const {
    std::lock_guard lock(mu_);
    return calls_[static_cast<size_t>(op)];
  }
  // How many calls were failed so far (all operations).
  int64_t injected() const {
    std::lock_guard lock(mu_);
    return injected_;
  }
  JobStore& inner() { return *inner_; }

  Result<std::unique_ptr<WriteTx>> BeginWrite() override {
    return Call(Op::kBeginWrite, [&]() -> Result<std::unique_ptr<WriteTx>> {
      auto tx = inner_->BeginWrite();
      if (!tx) return std::move(tx).error();
      return std::unique_ptr<WriteTx>(new Tx(this, std::move(*tx)));
    });
  }
  Result<Job> Get(const JobId& id) override {
    return Call(Op::kGet, [&] { return inner_->Get(id); });
  }
  Result<StoredResult> GetResult(const JobId& id) override {
    return Call(Op::kGetResult, [&] { return inner_->GetResult(id); });
  }
  Result<StoredPayload> GetPayload(const JobId& id) override {
    return Call(Op::kGetPayload, [&] { return inner_->GetPayload(id); });
  }
  Result<JobPage> List(const ListParams& params) override {
    return Call(Op::kList, [&] { return inner_->List(params); });
  }
  Result<AttemptHistory> GetAttempts(const JobId& id) override {
    return Call(Op::kGetAttempts, [&] { return inner_->GetAttempts(id); });
  }
  Result<std::vector<QueueThroughput>> Throughput(UnixMillis since, Millis step,
                                                  int buckets) override {
    return Call(Op::kThroughput, [&] { return inner_->Throughput(since, step, buckets); });
  }
  Result<std::vector<QueueCounts>> Counts() override {
    return Call(Op::kCounts, [&] { return inner_->Counts(); });
  }
  Result<std::vector<QueueValue>> OldestReady() override {
    return Call(Op::kOldestReady, [&] { return inner_->OldestReady(); });
  }
  Result<std::vector<std::string>> PausedQueues() override {
    return Call(Op::kPausedQueues, [&] { return inner_->PausedQueues(); });
  }
  Result<NodeList> Nodes() override {
    return Call(Op::kNodes, [&] { return inner_->Nodes(); });
  }
  Result<std::vector<ScheduleState>> ScheduleStates() override {
    return Call(Op::kScheduleStates, [&] { return inner_->ScheduleStates(); });
  }
  Status Ping() override {
    return Call(Op::kPing, [&] { return inner_->Ping(); });
  }
  void SetTransitionObserver(TransitionObserver observer) override {
    inner_->SetTransitionObserver(std::move(observer));
  }

 private:
  class Tx final : public WriteTx {
   public:
    Tx(FaultyStore* store, std::unique_ptr<WriteTx> inner) : s_(store), in_(std::move(inner)) {}

    Result<Job> Insert(const NewJob& job) override {
      return s_->Call(Op::kInsert, [&] { return in_->Insert(job); });
    }
    Result<std::vector<Job>> Claim(const ClaimParams& params) override {
      return s_->Call(Op::kClaim, [&] { return in_->Claim(params); });
    }
    Result<Job> Finish(const AttemptOutcome& outcome) override {
      return s_->Call(Op::kFinish, [&] { return in_->Finish(outcome); });
    }
    Result<CancelOutcome> Cancel(const JobId& id, UnixMillis now) override {
      return s_->Call(Op::kCancel, [&] { return in_->Cancel(id, now); });
    }
    Result<CancelOutcome> Delete(const JobId& id, UnixMillis now) override {
      return s_->Call(Op::kDelete, [&] { return in_->Delete(id, now); });
    }
    Status SetProgress(const JobId& id, int64_t token, const Progress& p, UnixMillis now) override {
      return s_->Call(Op::kSetProgress, [&] { return in_->SetProgress(id, token, p, now); });
    }
    Result<LeaseRenewal> ExtendLeases(const std::vector<LeaseRef>& leases, UnixMillis expires,
                                      UnixMillis now) override {
      return s_->Call(Op::kExtendLeases, [&] { return in_->ExtendLeases(leases, expires, now); });
    }
    Result<std::vector<Job>> RescueExpiredLeases(UnixMillis now, int limit) override {
      return s_->Call(Op::kRescueExpiredLeases,
                      [&] { return in_->RescueExpiredLeases(now, limit); });
    }
    Result<HeartbeatResult> Heartbeat(const LeaseRef& lease, UnixMillis lease_until, UnixMillis now,
                                      const std::optional<Progress>& progress) override {
      return s_->Call(Op::kHeartbeat,
                      [&] { return in_->Heartbeat(lease, lease_until, now, progress); });
    }
    Result<Job> ReleaseLease(const LeaseRef& lease, UnixMillis now) override {
      return s_->Call(Op::kReleaseLease, [&] { return in_->ReleaseLease(lease, now); });
    }
    Result<int64_t> ReleaseLeases(const std::string& owner, UnixMillis now) override {
      return s_->Call(Op::kReleaseLeases, [&] { return in_->ReleaseLeases(owner, now); });
    }
    Result<std::vector<std::string>> PromoteDueJobs(UnixMillis now, int limit) override {
      return s_->Call(Op::kPromoteDueJobs, [&] { return in_->PromoteDueJobs(now, limit); });
    }
    Result<std::vector<QueueValue>> PurgeExpired(UnixMillis now, int limit, Millis ttl) override {
      return s_->Call(Op::kPurgeExpired, [&] { return in_->PurgeExpired(now, limit, ttl); });
    }
    Result<bool> SetQueuePaused(const std::string& queue, bool paused, UnixMillis now) override {
      return s_->Call(Op::kSetQueuePaused, [&] { return in_->SetQueuePaused(queue, paused, now); });
    }
    Status TouchNode(const std::string& name, UnixMillis started_at, UnixMillis now,
                     UnixMillis forget_before) override {
      return s_->Call(Op::kTouchNode,
                      [&] { return in_->TouchNode(name, started_at, now, forget_before); });
    }
    Result<Job> FireSchedule(const ScheduleFire& fire) override {
      return s_->Call(Op::kFireSchedule, [&] { return in_->FireSchedule(fire); });
    }
    Result<Job> RetryJob(const JobId& id, UnixMillis now) override {
      return s_->Call(Op::kRetryJob, [&] { return in_->RetryJob(id, now); });
    }
    Result<std::vector<JobId>> DeleteFinished(const std::string& queue,
                                              std::optional<JobState> state, int limit) override {
      return s_->Call(Op::kDeleteFinished,
                      [&] { return in_->DeleteFinished(queue, state, limit); });
    }
    Result<std::vector<Job>> ClaimCallbacks(UnixMillis now, int limit,
                                            UnixMillis lease_until) override {
      return s_->Call(Op::kClaimCallbacks,
                      [&] { return in_->ClaimCallbacks(now, limit, lease_until); });
    }
    Result<Job> RecordCallbackAttempt(const CallbackAttempt& attempt) override {
      return s_->Call(Op::kRecordCallbackAttempt,
                      [&] { return in_->RecordCallbackAttempt(attempt); });
    }
    Status Commit() override {
      return s_->Call(Op::kCommit, [&] { return in_->Commit(); });
    }

   private:
    FaultyStore* s_;
    std::unique_ptr<WriteTx> in_;
  };

  // Counts the call; the fault that applies to it, if any.
  std::optional<Fault> Next(Op op) {
    std::lock_guard lock(mu_);
    const int64_t n = ++calls_[static_cast<size_t>(op)];
    for (const Fault& f : faults_) {
      if (f.op == op && n >= f.first && n < f.first + f.count) {
        ++injected_;
        return f;
      }
    }
    return std::nullopt;
  }

  template <typename F>
  auto Call(Op op, F&& forward) -> decltype(forward()) {
    std::optional<Fault> fault = Next(op);
    if (!fault) return forward();
    if (fault->after) (void)forward();
    return std::move(fault->error);
  }

  std::shared_ptr<JobStore> inner_;
  mutable std::mutex mu_;
  std::array<int64_t, kOpCount> calls_{};  // guarded by mu_
  std::vector<Fault> faults_;              // guarded by mu_
  int64_t injected_ = 0;                   // guarded by mu_
};

}  // namespace acceptd::store_testing
