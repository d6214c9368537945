// Engine: job semantics between the API and the store. It accepts submits
// (durably, through the GroupCommitter), dispatches queued jobs to handlers
// within each queue's concurrency, enforces per-attempt timeouts, applies the
// retry policy, relays cancellation, and runs housekeeping (lease rescue,
// delayed-job promotion, retention purge, lease renewal).
//
// The engine assumes other nodes may share its store: what a job is doing is
// decided only by conditional store writes; the in-memory state here (slots in
// use, which queues may have work, running handlers) is a cache and a source
// of wake-ups.
//
// Other nodes: when the store has a change feed (JobStore::Subscribe), the
// engine hears of other nodes' commits at once and uses them as wake-ups
// only: a job another node made due lets this node's queues with free slots
// (and its waiting leases) claim at once; a cancel requested elsewhere for an
// attempt running here reaches its handler; long-polls and event streams
// waiting here on a job another node changed wake (watchers()). Without a
// feed, or while it is interrupted, the same is found by polling: claims by
// the delayed-job promoter (promote_interval), cancels by the lease renewer
// (lease_duration / 3), watched jobs by a periodic re-read
// (watch_poll_interval). Correctness never depends on the feed.
//
// Threading: public methods are thread-safe. Asynchronous methods complete by
// calling their callback on the engine's own thread (writes) or as the read
// methods say; callers hop back to their executor. Nothing on the engine
// thread reads the store: its background reads run on the read threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/clock.h"
#include "core/handler.h"
#include "engine/callback_sender.h"
#include "engine/engine_metrics.h"
#include "engine/group_committer.h"
#include "engine/job_watchers.h"
#include "engine/periodic_executor.h"
#include "engine/queue_config.h"
#include "engine/schedule_runner.h"
#include "engine/status_cache.h"
#include "store/job_store.h"

namespace acceptd {

struct QueueSpec {
  QueueConfig config;
  // Runs the queue's attempts in this process. Null: no handler here; the
  // queue's jobs are leased to workers over HTTP (Engine::Lease).
  std::shared_ptr<Handler> handler;
};

struct SubmitRequest {
  std::optional<JobId> id;  // the new job's id; a fresh one (JobId::New) if unset
  std::string queue;
  std::string tenant;  // the submitting key's tenant (empty: none)
  std::string payload;
  std::string content_type;
  std::optional<int> max_attempts;
  std::optional<Millis> timeout;
  std::optional<Millis> delay;
  std::optional<int> priority;
  std::string idempotency_key;  // empty: not an idempotent submit
  std::string request_digest;   // what the key is bound to (see NewJob)
  std::string callback_url;     // POSTed to once terminal (already checked by the caller)
};

// A worker's request for a job of an external queue (docs/workers.md).
struct LeaseRequest {
  std::string queue;
  Millis wait = 0;    // how long to wait for a job before answering none
  Millis lease = 0;   // the lease's duration; 0: LeaseDuration(queue)
  std::string owner;  // recorded as the lease's owner (who holds it)
};

// How a worker says its attempt failed.
struct WorkerFailure {
  JobError error;
  bool retryable = true;  // retried with the queue's backoff while attempts remain
  // The worker's own delay before the next attempt (capped at backoff.max);
  // unset: the queue's backoff.
  std::optional<Millis> retry_after;
};

struct QueueStatus {
  QueueConfig config;
  int64_t counts[kJobStateCount] = {};
  bool paused = false;  // SetPaused
};

class Engine {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;
  // Called on the engine thread for every committed change of a job's state
  // that this engine made while it runs (the seam for metrics, dashboards
  // and tests); the lease release at shutdown is not reported, nor are
  // changes committed by other nodes (see watchers() for those wake-ups).
  using Observer = std::function<void(const Job&)>;
  // Called on the engine thread for every change of any job that this node
  // hears of: its own commits (as Observer, plus new jobs, and deleted and
  // purged ones with `removed`) and, through the store's change feed, other nodes'.
  // Without a live feed, other nodes' changes are not reported. A report is
  // a hint for displays (GET /v1/events), not a record: re-read for the truth.
  using ChangeObserver = std::function<void(const JobChange&)>;

  Engine(EngineOptions options, std::unique_ptr<JobStore> store, std::vector<QueueSpec> queues,
         const Clock& clock);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Adds a subscriber to every change (Observer); each is called in the
  // order added. Before Start().
  void AddObserver(Observer observer);
  // Adds a subscriber to every change this node hears of (ChangeObserver).
  // Before Start().
  void AddChangeObserver(ChangeObserver observer);
  // Who delivers completion callbacks; without one, callbacks stay pending
  // in the store. Before Start().
  void SetCallbackSender(std::unique_ptr<CallbackSender> sender);
  // The schedules this engine fires (ScheduleRunner: a job per tick, on
  // whichever node sharing the store fires it first). Each must name a
  // queue of this engine (the configuration checks it; a tick of one that
  // does not is logged and counted as missed). Before Start().
  void SetSchedules(std::vector<ScheduleConfig> schedules);
  const std::vector<ScheduleConfig>& schedules() const { return schedules_; }
  // The scheduler has read where each schedule stopped and applied the
  // missed-tick policy (a test signal; metrics() counts its fires).
  bool schedules_started() const { return schedules_started_.load(); }
  // Starts the engine thread, the workers and housekeeping.
  void Start();
  // Refuses new submits (kUnavailable) and stops claiming jobs.
  void BeginShutdown();
  // Waits up to the grace period for running handlers, cancels the rest,
  // releases their leases and stops all threads. Idempotent.
  void Shutdown();

  // Completes after the job is durably committed. kNotFound: unknown queue;
  // kQueueFull: load leveling; kUnavailable: shutting down or store down.
  // With an idempotency key: the earlier job if the key was used on this
  // tenant and queue for the same request digest (its id differs from the new one's),
  // kIdempotencyMismatch for another digest, kConflict while a submit with
  // the same key is still being committed by this process.
  void Submit(SubmitRequest request, Callback<Job> done);
  void Cancel(const JobId& id, Callback<CancelOutcome> done);
  // Pauses (`paused`) or resumes `queue` on every node sharing the store:
  // claims skip a paused queue (waiting leases keep waiting), while submits
  // are still accepted and running attempts finish. Completes with whether
  // it was paused before. kNotFound: no such queue here. Another node
  // resumes claiming within promote_interval (or at once through the change
  // feed's next wake-up).
  void SetPaused(const std::string& queue, bool paused, Callback<bool> done);
  // An operator's retry of a failed or canceled job (JobStore::RetryJob):
  // the same job, queued again and due now. kConflict: not failed or
  // canceled; kNotFound. Not counted as a retry in the metrics (those are
  // the engine's own), nor as a submit.
  void Retry(const JobId& id, Callback<Job> done);
  // An operator's purge of `queue`'s finished jobs (only those in `state`,
  // if given), in batches until none is left: deleted as by Delete.
  // Completes with how many. kNotFound: no such queue here.
  void PurgeQueue(const std::string& queue, std::optional<JobState> state, Callback<int64_t> done);
  void Delete(const JobId& id, Callback<CancelOutcome> done);

  // Reads. A job past its expires_at is kGone from that instant on (and is
  // not listed), whether or not the retention purger has removed it yet.
  //
  // The synchronous forms block on the store on the caller's thread: never
  // call them on an event loop unless ReadsInline() (use the forms below).
  Result<Job> Get(const JobId& id);
  Result<StoredResult> GetResult(const JobId& id);
  Result<StoredPayload> GetPayload(const JobId& id);
  Result<JobPage> List(const ListParams& params);
  // The job with its attempt history (JobStore::GetAttempts); kGone once
  // the job expired, as Get.
  Result<AttemptHistory> GetAttempts(const JobId& id);
  Result<std::vector<QueueStatus>> Queues();
  Status Ready();
  //
  // Get answers from the status cache (StatusCache) when it holds the job:
  // the engine invalidates a job's entry after each change it commits and
  // before reporting it, other nodes' changes through the change feed, and
  // trusts the cache only where every change is announced so (a store only
  // this node writes: embedded, watch_poll_interval 0; or a live feed; on a
  // shared store only jobs whose further changes the feed reports are
  // cached: queued ones and finished ones with no callback delivery pending).
  //
  // The same reads for event loops. If ReadsInline(), `done` is called on the
  // caller's thread before the method returns (an embedded store answers in
  // microseconds: no thread hop); so is Get's when the job is cached;
  // otherwise on one of the engine's read threads
  // (EngineOptions::read_threads), so a slow or unreachable database
  // stalls only the reads waiting on it. Valid before Start and after
  // Shutdown, until the engine is destroyed (which waits for reads under way).
  void Get(const JobId& id, Callback<Job> done);
  void GetResult(const JobId& id, Callback<StoredResult> done);
  void GetPayload(const JobId& id, Callback<StoredPayload> done);
  void List(ListParams params, Callback<JobPage> done);
  void GetAttempts(const JobId& id, Callback<AttemptHistory> done);
  void Queues(Callback<std::vector<QueueStatus>> done);
  // Reads that may examine thousands of rows: always on a read thread, even
  // for an embedded store (never on the caller's event loop), so `done` is
  // never called before the method returns. Search is List for a search
  // (ListParams::IsSearch); Throughput is JobStore::Throughput.
  void Search(ListParams params, Callback<JobPage> done);
  void Throughput(UnixMillis since, Millis step, int buckets,
                  Callback<std::vector<QueueThroughput>> done);
  void Ready(Callback<void> done);
  // The store's schedule states (JobStore::ScheduleStates: each schedule's
  // last fire and job, shared by every node).
  void ScheduleStates(Callback<std::vector<ScheduleState>> done);
  // True when the store answers reads from local files (!RemoteCalls()).
  bool ReadsInline() const { return reads_inline_; }
  // The job if the status cache holds it (and it has not expired): what Get
  // would answer, without a store read.
  std::optional<Job> GetCached(const JobId& id);
  StatusCache& status_cache() { return status_cache_; }  // for tests

  // The external lease protocol (docs/workers.md), for queues without an
  // in-process handler. Lease hands out the next due job of `queue` (with
  // its payload) as soon as one is there, or nullopt after `wait`. Waiting
  // costs no store reads: a waiter is woken by this node's submits, retries,
  // releases and rescues, by other nodes' due jobs through the change feed,
  // and by the promoter's periodic look at the store (which is how other
  // nodes' submits are seen without a feed). kNotFound: unknown queue;
  // kConflict: the queue's jobs run in-process; kUnavailable: shutting down
  // (waiting leases are answered so at shutdown). The lease lasts
  // `lease`, never past the job's timeout: only heartbeats extend it.
  void Lease(LeaseRequest request, Callback<std::optional<Job>> done);
  // The calls below are fenced by the lease token: kStaleLease when the job
  // is no longer running under it (finished, canceled, lease expired and
  // handed out again), kNotFound when the job is gone. They are valid on
  // any node sharing the store, and while this one shuts down.
  // Extends the lease by `lease` from now (within the job's timeout),
  // records `progress` if given, and says whether a cancel was requested.
  void Heartbeat(const LeaseRef& lease, Millis duration, std::optional<Progress> progress,
                 Callback<HeartbeatResult> done);
  void CompleteLease(const LeaseRef& lease, std::string body, std::string content_type,
                     Callback<Job> done);
  void FailLease(const LeaseRef& lease, WorkerFailure failure, Callback<Job> done);
  // Gives the job back without spending the attempt (queued at once, or
  // canceled if a cancel was requested).
  void ReleaseLease(const LeaseRef& lease, Callback<Job> done);
  // A queue's default lease for workers: its lease_duration, else the engine's.
  Millis LeaseDuration(const QueueConfig& queue) const;

  const QueueConfig* FindQueue(std::string_view name) const;
  // The configured queues' names, in configuration order.
  std::vector<std::string> QueueNames() const;
  // When a client should look at pending `job` again (see retry_after.h).
  Millis RetryAfter(const Job& job) const;
  const EngineOptions& options() const { return options_; }
  bool accepting() const { return accepting_.load(); }
  const Clock& clock() const { return clock_; }
  const GroupCommitter& committer() const { return *committer_; }
  // What this engine counted (engine_metrics.h), for GET /metrics.
  const EngineMetrics& metrics() const { return metrics_; }
  // The store's job counts by queue and state and each queue's oldest ready
  // job, for GET /metrics; called as the read methods above say.
  void QueueGauges(Callback<std::vector<QueueGauge>> done);
  // The nodes sharing the store and the running jobs per lease owner, for
  // GET /v1/nodes; called as the read methods above say.
  void Nodes(Callback<NodeList> done);
  // When Start() ran, as this node records itself in the store.
  UnixMillis started_at() const { return started_at_; }
  // Wake-ups for long-polls (terminal state) and event streams (any change)
  // of jobs changed by this process, or by other nodes (see above).
  JobWatchers& watchers() { return watchers_; }
  // Whether other nodes' changes arrive through a live change feed (false:
  // none, not live yet, or interrupted; the engine polls). For tests.
  bool feed_live() const { return feed_live_.load(); }

 private:
  struct QueueState;
  struct RunningJob;
  struct LeaseWaiter;
  class Context;

  // All below run on the engine thread.
  Status ClaimDue(WriteTx& tx);
  void AfterCommit(bool committed);
  void StartJob(Job job);
  void OnHandlerReturned(const std::shared_ptr<RunningJob>& rj, HandlerOutcome outcome);
  void OnTimeout(const std::shared_ptr<RunningJob>& rj);
  void RecordOutcome(const std::shared_ptr<RunningJob>& rj, AttemptOutcome outcome);
  // A retry after `retry_after` (capped at the queue's backoff.max) or the
  // queue's backoff delay, or failed once max_attempts are spent.
  AttemptOutcome FailureOutcome(const Job& job, JobError error,
                                std::optional<Millis> retry_after = std::nullopt);
  void SignalCancel(const JobId& id);
  void Notify(const Job& job, bool removed = false);
  // A queued job of this node's was claimed or canceled (queued_count).
  void LeftQueue(const Job& job);
  // Work may have arrived for `q`: lets a waiting lease look for it.
  void WakeWaiters(QueueState* q);
  // Answers every waiting lease with `error` (shutdown).
  void FailWaiters(const Error& error);
  // Records a worker's outcome and reports the change.
  void RecordWorkerOutcome(AttemptOutcome outcome, Callback<Job> done);
  // One batch of PurgeQueue; the next one from its callback until a batch
  // comes back short. `purged`: the batches before.
  void PurgeBatch(const std::string& queue, std::optional<JobState> state, int64_t purged,
                  Callback<int64_t> done);
  // Claims due callback deliveries (up to the free concurrency) and sends them.
  void DispatchCallbacks();
  // `job` as claimed: this was attempt job.callback->attempts + 1.
  void OnCallbackSent(const Job& job, CallbackResponse response);
  // Other nodes' commits, from the change feed (see above).
  void OnRemoteChanges(const std::vector<JobChange>& changes);
  void OnFeedState(bool live);
  // Re-reads the watched jobs (off the engine thread) and wakes the
  // watchers of those that changed since the last look: the feed's fallback.
  void PollWatched();
  void OnWatchPoll(std::vector<std::pair<JobId, Result<Job>>> jobs);
  // How other nodes' changes are found without a feed (for the logs).
  std::string PollingSummary() const;
  // options_.watch_poll_interval, or its default for this store.
  Millis WatchPollInterval() const;
  // Runs a read on a read thread, or here if ReadsInline().
  template <typename F>
  void Read(F read);
  // A read thread's turn at the pending status reads (Get(id, done) of a
  // remote store): takes all of them (up to kMaxReadBatch) and reads them in
  // one JobStore::GetMany.
  void ReadPendingGets();
  // Runs a read on a read thread, whatever the store (the engine thread's
  // background reads: the store's counts, the watch poll).
  template <typename F>
  void ReadInBackground(F read);
  // Caches `job`, as a store read begun with `ticket` returned it, if its
  // changes are sure to be announced (see Get).
  void Remember(const StatusCache::Ticket& ticket, const Job& job);
  void ScheduleHousekeeping();
  void AddHousekeepingTasks();
  // The scheduler task (ScheduleRunner): starts from the store's states
  // (read off the engine thread), then fires each tick when it comes and
  // says when the next one is due.
  UnixMillis RunScheduler(UnixMillis now);
  void OnScheduleStates(Result<std::vector<ScheduleState>> states);
  void ApplyScheduleStep(const ScheduleRunner::Step& step);
  void FireTick(const ScheduleRunner::Fire& fire);
  QueueState* FindQueueState(std::string_view name);
  const QueueState* FindQueueState(std::string_view name) const;

  // Queues a store write; `done` gets its result on the engine thread.
  // `order`: the lock it takes (GroupCommitter::Enqueue), see LockOf.
  template <typename T, typename F>
  void Write(F op, Callback<T> done, std::string order = {});

  EngineOptions options_;
  UnixMillis started_at_ = 0;  // set by Start()
  std::unique_ptr<JobStore> store_;
  const Clock& clock_;
  std::vector<std::unique_ptr<QueueState>> queues_;
  std::mutex idempotency_mu_;
  std::set<std::string> idempotency_in_flight_;  // "tenant\0queue\0key", guarded by the mutex
  std::vector<Observer> observers_;
  std::vector<ChangeObserver> change_observers_;
  // Reports `change` to change_observers_ (engine thread).
  void ReportChange(const JobChange& change);
  EngineMetrics metrics_;
  JobWatchers watchers_;
  std::unique_ptr<CallbackSender> callback_sender_;

  const bool reads_inline_;
  // Other processes may write the store (see Get): a store on a database
  // server, a watch poll, or a change feed. The status cache is then trusted
  // only while the feed is live, and holds only jobs the feed announces.
  std::atomic<bool> other_writers_;
  StatusCache status_cache_;
  // Read threads: EngineOptions::read_threads for a remote store, one for an
  // embedded store (background reads only).
  std::optional<boost::asio::thread_pool> readers_;
  // Status reads of a remote store waiting for a read thread, coalesced like
  // group commit: whichever read thread gets to them takes them all into one
  // GetMany, without waiting for more (concurrent polls and long-polls share
  // one round trip and one statement instead of one each).
  struct PendingGet {
    JobId id;
    StatusCache::Ticket ticket;
    Callback<Job> done;
  };
  std::mutex gets_mu_;
  std::vector<PendingGet> gets_;  // guarded by gets_mu_
  // A ReadPendingGets is posted to readers_ and has not started (guarded by
  // gets_mu_): while gets_ is not empty, one is.
  bool gets_posted_ = false;
  std::unique_ptr<ChangeSubscription> subscription_;
  std::atomic<bool> feed_live_{false};  // set on the engine thread once started
  bool feed_down_logged_ = false;       // engine thread: the warning was logged

  boost::asio::io_context ctx_;
  std::unique_ptr<GroupCommitter> committer_;
  std::optional<boost::asio::thread_pool> workers_;
  std::thread thread_;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};

  // Engine-thread state.
  std::unordered_map<JobId, std::shared_ptr<RunningJob>, JobIdHash> running_;
  // What each batch claimed (GroupCommitter::current_batch()), started or
  // handed out once that batch is reported: with pipelined commits the next
  // batch claims before the previous one is durable.
  struct BatchClaims {
    std::vector<Job> claimed;                                          // for this node's handlers
    std::vector<std::pair<std::shared_ptr<LeaseWaiter>, Job>> leased;  // for waiting leases
  };
  std::unordered_map<int64_t, BatchClaims> batch_claims_;
  int callbacks_in_flight_ = 0;
  bool callback_claim_pending_ = false;
  bool callback_rerun_ = false;  // a dispatch was asked for while a claim was pending
  // The watch poll: one in flight at a time; what each watched job looked
  // like at the last look (state, attempts, updated_at, cancel flag).
  bool watch_poll_pending_ = false;
  bool counts_pending_ = false;  // the promoter's read of the queue counts
  struct JobVersion {
    JobState state;
    int attempts;
    UnixMillis updated_at;
    bool cancel_requested;
    bool operator==(const JobVersion&) const = default;
  };
  std::unordered_map<JobId, JobVersion, JobIdHash> watch_seen_;
  std::vector<ScheduleConfig> schedules_;
  std::optional<ScheduleRunner> schedule_runner_;  // engine thread, once started
  bool schedule_states_pending_ = false;           // engine thread: the read is under way
  std::atomic<bool> schedules_started_{false};
  PeriodicExecutor housekeeping_;
  std::optional<boost::asio::steady_timer> housekeeping_timer_;
};

}  // namespace acceptd
